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


def _step_label(c: str) -> str:
    """A character as a tick label, the invisible ones as symbols: space, newline, tab."""
    return {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5"}.get(c, c if c.isprintable() else repr(c)[1:-1])


MAX_LABELS = 120  # steps named by their characters up to this many; longer texts get step numbers


def _draw_states(ax, states: np.ndarray, labels=None, title: str = "hidden state h_t"):
    """Units (rows) over steps 1..T (columns) on ``ax``, red positive, blue negative; the image and its scale.

    ``labels`` (one per step, the characters read) name the columns when there are at most ``MAX_LABELS`` of them;
    otherwise the columns carry step numbers."""
    from matplotlib.ticker import MaxNLocator  # heavy: loaded only to draw

    T, H = states.shape
    scale = _scale(states)
    image = ax.imshow(states.T, aspect="auto", cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest",
                      extent=(0.5, T + 0.5, H - 0.5, -0.5))  # column t is step t, row u is unit u
    ax.set_ylabel("hidden unit")
    ax.set_title(title)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if labels is not None and len(labels) <= MAX_LABELS:
        ax.set_xticks(range(1, T + 1), [_step_label(c) for c in labels], fontsize=8, family="monospace")
        ax.tick_params(axis="x", length=0)
        ax.set_xlabel("step t: the character read")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step t")
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="activation")
    return image


def plot_heatmap(states: np.ndarray, path=None, labels=None, ax=None):
    """Units (rows) over steps (columns), red positive, blue negative; ``labels`` name the steps (characters)."""
    if ax is None:
        import matplotlib.pyplot as plt  # heavy: loaded only to draw

        T, H = states.shape
        _, ax = plt.subplots(figsize=(min(16, 2 + T * 0.12), min(10, 1.5 + H * 0.08)))
    _draw_states(ax, states, labels)
    if path is not None:
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    return ax


def _rgb(fig) -> np.ndarray:
    """The figure as drawn by Agg, (height, width, 3) uint8."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def animation_figure(states: np.ndarray, labels=None, title: str | None = None, dpi: int = 80):
    """The picture ``animate`` cuts its frames from: a matplotlib Figure (on an Agg canvas) of every state, steps as
    columns labelled with the characters read (``labels``) or step numbers, hidden units as rows, a title and a
    colour scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: loaded only to draw
    from matplotlib.figure import Figure  # heavy: loaded only to draw

    states = np.asarray(states, dtype=float)
    if states.ndim != 2 or 0 in states.shape:
        raise ValueError(f"states must be (T, units) with T, units >= 1, got shape {states.shape}; pass "
                         f"hidden_states(model, x)")
    T, H = states.shape
    if labels is not None and len(labels) != T:
        raise ValueError(f"labels must name each of the {T} steps, got {len(labels)}; pass list(text) for the text "
                         f"that gave the states, or labels=None for step numbers")
    fig = Figure(figsize=(min(14, max(5.0, 2.4 + T * 0.11)), min(8, max(2.6, 2.2 + H * 0.05))), dpi=dpi)
    FigureCanvasAgg(fig)
    _draw_states(fig.subplots(), states, labels, title or f"hidden state h_t of {H} units, step by step")
    fig.tight_layout()
    return fig


def animate(states: np.ndarray, path, labels=None, ms_per_step: int = 120, max_frames: int = 120, dpi: int = 80,
            title: str | None = None) -> Path:
    """A GIF of the state filling step by step: frame t shows h_1 .. h_t, step t boxed, the steps to come blank.

    Columns are steps, labelled with the character read (``labels``, for text) or the step number, rows are hidden
    units, with a title, axis labels and a colour scale (``animation_figure``). Texts longer than ``max_frames``
    steps advance several steps a frame; the last frame stays two seconds.

    The picture is drawn once by matplotlib with every state and once with none; frame t takes the columns up to
    step t from the first and the rest from the second, all in one 256-colour palette, so consecutive frames differ
    in one column, which Pillow's GIF writer stores alone: a line of text (80 characters, 64 to 1024 units) is
    under 500 kB (one matplotlib figure a frame with a per-frame palette would be several MB).
    """
    from PIL import Image  # heavy: Pillow (through matplotlib) only to write the GIF

    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    fig = animation_figure(states, labels, title, dpi)
    ax = fig.axes[0]
    image = ax.images[0]
    H, T = image.get_array().shape
    full = _rgb(fig)
    image.set_data(np.full((H, T), np.nan))  # the same picture without states: the steps still to come
    blank = _rgb(fig)
    # column edges and the box around a step, in pixels from the top left
    height = full.shape[0]
    edges = np.round(ax.transData.transform(np.c_[np.arange(T + 1) + 0.5, np.zeros(T + 1)])[:, 0]).astype(int)
    box = ax.get_window_extent()
    named = labels is not None and T <= MAX_LABELS  # then the box holds the character too
    ticks = [t.get_window_extent() for t in ax.get_xticklabels()] if named else []
    top = round(height - box.y1)
    bottom = round(height - min([box.y0] + [t.y0 for t in ticks])) + 1
    both = Image.fromarray(np.concatenate([full, blank])).quantize(256, dither=Image.Dither.NONE)
    index = np.asarray(both)  # (2 * height, width): palette entries
    palette = both.getpalette()
    dark = int(np.argmin(np.reshape(palette, (-1, 3)).sum(1)))  # the box's colour: the darkest in the picture
    full, blank = index[:height], index[height:]
    stride = -(-T // max_frames)
    steps = list(range(stride, T, stride)) + [T]
    frames = []
    for t in steps:
        frame = blank.copy()
        frame[:, : edges[t]] = full[:, : edges[t]]
        left, right = edges[t - 1] - 2, edges[t] + 1  # the box sits just outside the column
        frame[top:bottom, [left, left + 1, right - 1, right]] = dark
        frame[[top, top + 1, bottom - 2, bottom - 1], left:right + 1] = dark
        im = Image.fromarray(frame)
        im.putpalette(palette)
        frames.append(im)
    path = Path(path)
    durations = [ms_per_step * stride] * (len(frames) - 1) + [2000]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
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
    paths = {"heatmap": folder / "heatmap.png", "gif": animate(states, folder / "hidden.gif", labels=labels)}
    if isinstance(x, str):
        (folder / "hidden.html").write_text(char_html(x, states, units, k), encoding="utf-8")
        paths["html"] = folder / "hidden.html"
    return paths
