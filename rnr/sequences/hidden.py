"""The hidden state at work: a heatmap of units over steps, a GIF of the state filling step by step, and for
character models an HTML page that colours each character by a unit's activation.

The most interpretable units are found as in Karpathy's "The Unreasonable Effectiveness of Recurrent Neural
Networks" (2015), by how closely a unit follows a simple property of the text: the position in the line, being
inside quotes or brackets, spaces, capitals, vowels.
"""
import html
from pathlib import Path

import numpy as np
import torch

from rnr.core.rnn import RNN
from rnr.sequences.charlm import CharLM


@torch.no_grad()
def hidden_states(model, x) -> np.ndarray:
    """The top layer's h_t for every step of one sequence, (T, units).

    model: an ``rnr.RNN`` with x (T, I) or (1, T, I), or a fitted ``CharLM`` with x a string.
    """
    if isinstance(model, CharLM):
        model._check_fitted()
        if not isinstance(x, str) or not x:
            raise ValueError(f"x must be a non-empty string for a CharLM, got {type(x).__name__} {x!r:.40}")
        ids = model._encode(x, "x")[None].to(model._device)
        out, _ = model.net_.rnn(model.net_.embedding(ids))
        return out[0].cpu().numpy()
    if isinstance(model, RNN):
        x = torch.as_tensor(x, dtype=next(model.parameters()).dtype)
        if x.dim() == 2:
            x = x[None]
        if x.dim() != 3 or x.shape[0] != 1:
            raise ValueError(f"x must be one sequence, (T, I) or (1, T, I), got shape {tuple(x.shape)}")
        out, _ = model.eval()(x)
        return out[0].cpu().numpy()
    raise TypeError(f"model must be an rnr.RNN or a fitted rnr.CharLM, got {type(model).__name__}")


def _colours(values: np.ndarray, scale: float) -> np.ndarray:
    """Values to RGB (..., 3) uint8 on a blue-white-red scale, +-scale at the ends."""
    v = np.clip(values / scale, -1, 1)[..., None]
    white, red, blue = np.array([255, 255, 255]), np.array([202, 0, 32]), np.array([5, 113, 176])
    rgb = np.where(v > 0, white + v * (red - white), white - v * (blue - white))
    return rgb.astype(np.uint8)


def _scale(states: np.ndarray) -> float:
    top = float(np.nanmax(np.abs(states))) if states.size else 0.0
    return top if top > 0 else 1.0


def plot_heatmap(states: np.ndarray, path=None, labels=None, ax=None):
    """Units (rows) over steps (columns), red positive, blue negative; ``labels`` name the steps (characters)."""
    if ax is None:
        import matplotlib.pyplot as plt  # heavy: loaded only to draw

        T, H = states.shape
        _, ax = plt.subplots(figsize=(min(16, 2 + T * 0.12), min(10, 1.5 + H * 0.08)))
    scale = _scale(states)
    image = ax.imshow(states.T, aspect="auto", cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
    ax.set_xlabel("step t")
    ax.set_ylabel("unit")
    ax.set_title("hidden state h_t")
    if labels is not None and len(labels) <= 120:
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([repr(c)[1:-1] for c in labels], fontsize=7, family="monospace")
    ax.figure.colorbar(image, ax=ax, fraction=0.03)
    if path is not None:
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    return ax


def animate(states: np.ndarray, path, cell: int = 8, ms_per_step: int = 80) -> Path:
    """A GIF of the state filling step by step: frame t shows h_0 .. h_t, the columns still to come blank."""
    from PIL import Image  # heavy: Pillow (through matplotlib) only to write the GIF

    T, H = states.shape
    rgb = _colours(states.T, _scale(states))  # (H, T, 3)
    frames = []
    for t in range(T):
        frame = np.full_like(rgb, 240)
        frame[:, : t + 1] = rgb[:, : t + 1]
        frame = frame.repeat(cell, axis=0).repeat(cell, axis=1)
        frames.append(Image.fromarray(frame))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_step, loop=0)
    return path


def text_features(text: str) -> dict[str, np.ndarray]:
    """Simple properties of each character that a unit may track: each (len(text),) float."""
    n = len(text)
    feats = {name: np.zeros(n) for name in ("position in line", "inside quotes", "inside brackets", "space",
                                              "capital", "vowel", "end of line near")}
    column, quote, depth = 0, False, 0
    for i, c in enumerate(text):
        feats["position in line"][i] = column
        if c == '"':
            quote = not quote
        depth = depth + 1 if c in "([{" else max(0, depth - 1) if c in ")]}" else depth
        feats["inside quotes"][i] = quote
        feats["inside brackets"][i] = depth > 0
        feats["space"][i] = c.isspace()
        feats["capital"][i] = c.isupper()
        feats["vowel"][i] = c.lower() in "aeiou"
        column = 0 if c == "\n" else column + 1
    nxt = n
    for i in range(n - 1, -1, -1):  # characters until the next newline
        if text[i] == "\n":
            nxt = i
        feats["end of line near"][i] = -(nxt - i)
    return feats


def interpretable_units(text: str, states: np.ndarray, k: int = 4) -> list[tuple[int, str, float]]:
    """The k units that follow a property of the text most closely: (unit, property, correlation)."""
    if len(text) != len(states):
        raise ValueError(f"text and states must have one row per character, got {len(text)} and {len(states)}")
    z = states - states.mean(0)
    z_norm = np.sqrt((z * z).sum(0))
    best = np.zeros(states.shape[1])
    which = [""] * states.shape[1]
    sign = np.ones(states.shape[1])
    for name, f in text_features(text).items():
        fz = f - f.mean()
        norm = np.sqrt((fz * fz).sum())
        if norm == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num((fz @ z) / (norm * z_norm))
        better = np.abs(corr) > best
        best[better] = np.abs(corr[better])
        sign[better] = np.sign(corr[better])
        for u in np.flatnonzero(better):
            which[u] = name
    order = np.argsort(-best)[:k]
    return [(int(u), which[u], float(sign[u] * best[u])) for u in order]


def char_html(text: str, states: np.ndarray, units=None, k: int = 4, title: str = "rnr: hidden units") -> str:
    """An HTML page with the text once per unit, each character's background coloured by the unit's activation
    there (red positive, blue negative). units: a list of ints, or None for the k most interpretable."""
    chosen = interpretable_units(text, states, k) if units is None else [(int(u), "", 0.0) for u in units]
    scale = _scale(states)
    blocks = []
    for unit, name, corr in chosen:
        rgb = _colours(states[:, unit], scale)
        spans = "".join(
            f'<span style="background:rgb({r},{g},{b})" title="{states[i, unit]:+.3f}">'
            f'{"<br>" if c == chr(10) else html.escape(c)}</span>'
            for i, (c, (r, g, b)) in enumerate(zip(text, rgb)))
        about = f" &mdash; follows <b>{html.escape(name)}</b> (correlation {corr:+.2f})" if name else ""
        blocks.append(f'<section><h2>unit {unit}{about}</h2><p class="text">{spans}</p></section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:60em}}"
            ".text{font-family:monospace;white-space:pre-wrap;line-height:1.6}h2{font-size:1em}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><p>Each character's background is the unit's activation after "
            "reading it: red positive, blue negative, white zero.</p>" + "".join(blocks) + "</body></html>\n")


def write_view(model, x, folder, units=None, k: int = 4) -> dict[str, Path]:
    """heatmap.png and hidden.gif for any model; hidden.html too when x is text. Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    states = hidden_states(model, x)
    labels = list(x) if isinstance(x, str) else None
    import matplotlib  # heavy: loaded only to draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: loaded only to draw

    ax = plot_heatmap(states, folder / "heatmap.png", labels=labels)
    plt.close(ax.figure)
    paths = {"heatmap": folder / "heatmap.png", "gif": animate(states, folder / "hidden.gif")}
    if isinstance(x, str):
        (folder / "hidden.html").write_text(char_html(x, states, units, k), encoding="utf-8")
        paths["html"] = folder / "hidden.html"
    return paths
