"""``rnr fit transcribe``, its ``predict`` and ``evaluate``, and ``plot transcribe``: speech to text with
``rnr.Transcriber`` (CTC; Graves et al. 2006).

Utterances come as one of: a folder of WAV files, each transcript read from the file's name by a regular expression
with a group named ``text`` (``data.name_pattern``; the default reads FSDD's ``3_george_12.wav`` as "3"); a CSV with
a column of WAV paths (relative to the CSV's folder, or absolute) and a column of transcripts (``data.path_column``,
``data.text_column``); or, to predict, a single WAV file.
"""
import re
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from rnr.cli.common import UsageError, load_task_model, writable
from rnr.cli.config import TRANSCRIBE_DATA
from rnr.data.audio import Features, read_wav, resample
from rnr.sequences.transcriber import BLANK, Transcriber

CSV_SUFFIXES = (".csv", ".tsv")


# reading utterances -----------------------------------------------------------------------------------------------
class Utterances(NamedTuple):
    files: list[str]  # WAV paths to read
    texts: list[str] | None  # their transcripts (None: not asked for)
    names: list[str]  # each path as the user wrote it (a CSV's own, relative to its folder)
    seconds: float  # of audio in all


def read_utterances(data: dict, path, flag: str, need_text: bool = True, fitting: bool = True) -> Utterances:
    """The utterances of ``path`` (a folder, a CSV, or to predict a single WAV file) laid out as ``data`` (the
    [data] table) says; ``flag`` names where ``path`` came from in every message, ``fitting`` whether ``data`` is
    the user's to change (rnr fit) or the model's. Every file is read once here, so a bad one is named before any
    work."""
    path = Path(path)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
        if not paths:
            raise UsageError(f"{flag} {str(path)!r} holds no WAV files (*.wav); pass a folder of WAV files, or a CSV "
                             f"with columns {data['path_column']},{data['text_column']}")
        texts = _texts_from_names(paths, data["name_pattern"], flag, path, fitting) if need_text else None
        files = names = [str(p) for p in paths]
    elif path.is_file() and path.suffix.lower() in CSV_SUFFIXES:
        files, texts, names = _read_csv(data, path, flag, need_text)
    elif path.is_file() and path.suffix.lower() == ".wav" and not need_text:
        files, texts, names = [str(path)], None, [str(path)]
    elif path.is_file():
        what = "a folder of WAV files or a CSV (.csv, .tsv)" + ("" if need_text else ", or a single WAV file")
        raise UsageError(f"{flag} {str(path)!r} is neither a folder nor a CSV; pass {what}")
    else:
        raise UsageError(f"{flag} {str(path)!r} does not exist; pass a folder of WAV files or a CSV with columns "
                         f"{data['path_column']},{data['text_column']}")
    seconds = 0.0
    for f in files:
        samples, rate = _read(f, flag)
        seconds += len(samples) / rate
    return Utterances(files, texts, names, seconds)


def _read(file: str, flag: str) -> tuple[np.ndarray, int]:
    try:
        return read_wav(file)
    except FileNotFoundError:
        raise UsageError(f"{flag}: the WAV file {file!r} does not exist; fix its path or drop it") from None
    except ValueError as e:
        raise UsageError(f"{flag}: {e}; or drop the file") from None


def name_rule(pattern: str) -> re.Pattern:
    """``data.name_pattern`` compiled, with a group named ``text``."""
    try:
        rule = re.compile(pattern)
    except re.error as e:
        raise UsageError(f"data.name_pattern {pattern!r} is not a regular expression ({e}); pass e.g. --set "
                         f"data.name_pattern='(?P<text>[^_]+)_'") from None
    if "text" not in rule.groupindex:
        raise UsageError(f"data.name_pattern {pattern!r} has no group named text, the part of a file name that is "
                         f"its transcript; write it as (?P<text>...), e.g. --set data.name_pattern='(?P<text>[^_]+)_'")
    return rule


def _texts_from_names(paths: list[Path], pattern: str, flag: str, folder: Path, fitting: bool) -> list[str]:
    rule = name_rule(pattern)
    found = [rule.search(p.name) for p in paths]
    bad = [p.name for p, m in zip(paths, found) if m is None]
    if bad:
        some = f"{len(bad)} of the {len(paths)} WAV files in {flag} {str(folder)!r} " + \
            ("has a name that" if len(bad) == 1 else "have names that")
        rule_is = "data.name_pattern" if fitting else "the model's data.name_pattern (set when it was fitted)"
        fix = ("pass a pattern that fits every name (--set data.name_pattern='...'), move those files out"
               if fitting else "rename those files, move them out")
        raise UsageError(f"{some} {rule_is} {pattern!r} does not match, e.g. {bad[:5]}; the pattern is searched for "
                         f"in each file name and its group text is the transcript: {fix}, or pass a CSV with columns "
                         f"path,text")
    return [m["text"] for m in found]


def _read_csv(data: dict, path: Path, flag: str, need_text: bool) -> tuple[list[str], list[str] | None, list[str]]:
    try:
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {str(path)!r} is not UTF-8 text; save it as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UsageError(f"{flag} {str(path)!r} is not a readable CSV ({e}); check its separator and quoting") \
            from None
    keys = [("path_column", data["path_column"])] + ([("text_column", data["text_column"])] if need_text else [])
    missing = [(key, column) for key, column in keys if column not in df.columns]
    if missing:
        key, column = missing[0]
        what = "WAV paths" if key == "path_column" else "transcripts"
        raise UsageError(f"{flag} {str(path)!r} has no column {column!r} (data.{key}, the {what}); its columns are "
                         f"{list(df.columns)}; rename that column, or name it with --set data.{key}=NAME (rnr fit "
                         f"transcribe; predict and evaluate read the model's)")
    if df.empty:
        raise UsageError(f"{flag} {str(path)!r} has no rows; give one row per WAV file")
    empty = np.flatnonzero(df[data["path_column"]].str.strip() == "")
    if len(empty):
        raise UsageError(f"{flag} {str(path)!r} has rows without a WAV path in column {data['path_column']!r}, e.g. "
                         f"row {int(empty[0]) + 2} of the file; fill or drop them")
    names = df[data["path_column"]].str.strip().tolist()
    files = [p if Path(p).is_absolute() else str(path.parent / p) for p in names]
    return files, (df[data["text_column"]].tolist() if need_text else None), names


def _in_file_terms(message: str, found: Utterances | None, names: tuple[str, str]) -> str:
    """A Transcriber message about ``X[3]`` and ``y[3]`` (or ``X_val``, ``y_val``) said of the file it is about."""
    if found is None:
        return message
    x, y = names
    message = re.sub(rf"its transcript {y}\[(\d+)\]", lambda m: f"its transcript {found.texts[int(m[1])]!r}",
                     message)
    message = re.sub(rf"\b{y}\[(\d+)\]", lambda m: f"the transcript of {found.names[int(m[1])]}", message)
    return re.sub(rf"\b{x}\[(\d+)\]", lambda m: found.names[int(m[1])], message)


# rnr fit transcribe -----------------------------------------------------------------------------------------------
def fit(run_config: dict, options: dict):
    data = run_config["data"]
    train = read_utterances(data, data["path"], "--data")
    val = read_utterances(data, data["val_path"], "--val") if data["val_path"] else None
    model = Transcriber(**run_config["model"], **options)
    try:
        model.fit(train.files, train.texts, val and val.files, val and val.texts)
    except ValueError as e:  # about X[i] or y_val[i]: said of the file
        message = _in_file_terms(str(e), train, ("X", "y"))
        raise type(e)(_in_file_terms(message, val, ("X_val", "y_val"))) from None
    n, seconds = len(train.files), train.seconds
    return model, {"utterances": n, "audio_seconds": round(seconds, 2), "tokens": model.tokens_,
                   "trained_on": f"{n} utterances, {seconds:.1f} s of audio, {len(model.tokens_)} tokens",
                   "chosen": model.chosen_}


# rnr predict, rnr evaluate ----------------------------------------------------------------------------------------
def _beam(args) -> int | None:
    beam = getattr(args, "beam", None)
    if beam is not None and beam < 1:
        raise UsageError(f"--beam must be >= 1 (1 decodes greedily, more runs a CTC prefix beam search), got {beam}")
    return beam


def _data(info_dict: dict) -> dict:
    """The model's [data] table (for a model file without one, the defaults)."""
    return {**{k: v[1] for k, v in TRANSCRIBE_DATA.items()}, **info_dict.get("data", {})}


def predict(args, model, info_dict) -> dict:
    beam = _beam(args)
    if not args.data:
        raise UsageError("rnr predict with a transcribe model needs --data: a WAV file, a folder of WAV files or a "
                         "CSV with a column of WAV paths")
    if args.out:
        writable(args.out, "--out", reads={"the model": args.model, "--data": args.data})
    data = _data(info_dict)
    found = read_utterances(data, args.data, "--data", need_text=False)
    try:
        texts = model.predict(found.files, beam_width=beam)
    except ValueError as e:  # a file shorter than one frame: said of the file
        raise type(e)(_in_file_terms(str(e), found, ("X", "y"))) from None
    frame = pd.DataFrame({data["path_column"]: found.names, data["text_column"]: texts})
    if args.out:
        frame.to_csv(args.out, index=False)
        text = f"wrote {len(frame)} transcripts to {args.out}"
    else:
        text = frame.to_csv(index=False).rstrip("\n")
    result = {"rows": len(frame), "out": args.out, "beam_width": beam or model.beam_width, "_text": text}
    if args.json and not args.out:
        result["transcripts"] = frame.to_dict(orient="records")
    return result


def evaluate(args, model, info_dict) -> dict:
    beam = _beam(args)
    found = read_utterances(_data(info_dict), args.data, "--data", fitting=False)
    try:
        scores = model.evaluate(found.files, found.texts, beam_width=beam)
    except ValueError as e:
        raise type(e)(_in_file_terms(str(e), found, ("X", "y"))) from None
    width = beam or model.beam_width
    lines = [f"{scores['utterances']} utterances of {args.data} ({'greedy' if width == 1 else f'beam {width}'})"]
    lines += [f"  {key}: {scores[key]:.4f}" for key in ("token_error_rate", "char_error_rate", "exact_match")]
    return {**scores, "beam_width": width, "_text": "\n".join(lines)}


# rnr plot transcribe ----------------------------------------------------------------------------------------------
def plot(args) -> dict:
    """``rnr plot transcribe``: one picture of the model hearing a WAV file (see ``draw``)."""
    model, _ = load_task_model(args.model, "plot transcribe", (Transcriber,))
    if model.input_kind_ != "audio":
        raise UsageError(f"{args.model!r} was fitted on feature arrays, not audio; rnr plot transcribe draws a model "
                         f"that reads WAV files (rnr fit transcribe)")
    if not args.audio:
        raise UsageError("rnr plot transcribe needs --audio, the WAV file to transcribe")
    samples, rate = _read(args.audio, "--audio")
    out = writable(args.out, "--out", reads={"the model": args.model, "--audio": args.audio})
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--out must name a .png, .pdf or .svg file, got {str(out)!r}")
    try:
        transcript, emitted = draw(model, samples, rate, out, title=Path(args.audio).name)
    except ValueError as e:
        raise type(e)(f"--audio {args.audio!r}: " + re.sub(r"\bX\[0\]", "the file", str(e))) from None
    return {"out": str(out), "transcript": transcript, "emitted": emitted,
            "_text": f"wrote {out}: {Path(args.audio).name} heard as {transcript!r}"}


def alignment(log_probs) -> list[tuple[int, int]]:
    """Greedy CTC decoding with where it writes: (frame, class) for each token, at the first frame of each run of
    the best class that is not the blank (``rnr.nn.ctc.ctc_greedy`` gives the same classes)."""
    best = log_probs.argmax(-1).tolist()  # (T',)
    return [(j, c) for j, c in enumerate(best) if c != BLANK and (j == 0 or best[j - 1] != c)]


def draw(model: Transcriber, samples: np.ndarray, rate: int, out, title: str = "") -> tuple[str, list]:
    """A picture of ``model`` transcribing ``samples`` (at ``rate``), saved to ``out``: the log-mel spectrogram; the
    probability of each token per frame (the blank faint grey); the greedy alignment, each token written at the frame
    that emits it. Returns the transcript and [(seconds, token), ...]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: loaded only to draw
    from matplotlib.figure import Figure  # heavy: loaded only to draw

    feats = model.features_
    logmel = Features(**{**feats.to_dict(), "kind": "logmel"})(samples, rate).numpy()  # (T, n_mels)
    wave = samples if rate == feats.sample_rate else resample(samples, rate, feats.sample_rate)
    probs = model.log_probs([wave])[0].exp().numpy()  # (T', C): the blank, then each token
    step = feats.hop_length * model.stride / feats.sample_rate  # seconds per frame of log_probs
    hop = feats.hop_length / feats.sample_rate
    T = len(probs)
    end = max(len(logmel) * hop, T * step)
    emitted = [(j * step, model.tokens_[c - 1]) for j, c in alignment(probs)]
    transcript = model.separator_.join(tok for _, tok in emitted)
    best = probs.argmax(-1)
    colours = _colours(len(model.tokens_))

    width = float(np.clip(3.0 + 8.0 * end, 8.0, 20.0))  # inches: about 8 per second of audio, within 8 and 20
    fig = Figure(figsize=(width, 7.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 2, height_ratios=[3.0, 2.2, 1.0], width_ratios=[60, 1])
    spec = fig.add_subplot(grid[0, 0])
    prob = fig.add_subplot(grid[1, 0], sharex=spec)
    line = fig.add_subplot(grid[2, 0], sharex=spec)
    key = fig.add_subplot(grid[1, 1])  # the legend of the probabilities
    key.axis("off")
    fig.add_subplot(grid[2, 1]).axis("off")

    image = spec.imshow(logmel.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                        extent=(0, len(logmel) * hop, 0, logmel.shape[1]))
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label="log energy")
    spec.set_ylabel("mel channel")
    spec.set_title("log-mel spectrogram", loc="left", fontsize=10)

    t = np.arange(T + 1) * step  # frame j drawn over the span it covers, [t[j], t[j + 1])
    prob.fill_between(t, np.append(probs[:, BLANK], probs[-1, BLANK]), step="post", color="0.85", label="blank", lw=0)
    shown = [i for i in range(1, probs.shape[1]) if probs[:, i].max() >= 0.05]  # tokens the model ever considers
    for i in shown:
        prob.step(t, np.append(probs[:, i], probs[-1, i]), where="post", color=colours[i - 1], lw=1.6,
                  label=model.tokens_[i - 1])
    prob.set_ylim(0, 1.02)
    prob.set_ylabel("probability")
    prob.set_title(f"token probabilities per frame (a frame: {step * 1000:g} ms, {model.stride} feature frames "
                   f"stacked)", loc="left", fontsize=10)
    key.legend(*prob.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0, 1.0), frameon=False,
               fontsize=9, ncol=1 + len(shown) // 12, handlelength=1.2, borderaxespad=0)

    for j, c in enumerate(best):  # the best class per frame: the spans each token holds
        if c != BLANK:
            line.axvspan(j * step, (j + 1) * step, color=colours[c - 1], alpha=0.25, lw=0)
    levels = _levels([s for s, _ in emitted], [tok for _, tok in emitted], width * 0.85 / end)
    for (s, tok), level in zip(emitted, levels):
        colour = colours[model.tokens_.index(tok)]
        for ax in (spec, prob):
            ax.axvline(s, color="white" if ax is spec else colour, lw=0.8, ls=":", alpha=0.8)
        line.axvline(s, ymax=0.15, color=colour, lw=1.5)
        line.text(s, 0.75 - 0.3 * level, tok, color=colour, fontsize=13, fontweight="bold", ha="left",
                  va="center", transform=line.get_xaxis_transform())
    line.set_yticks([])
    line.set_ylim(0, 1)
    line.set_xlim(0, end)
    line.set_xlabel("time (s)")
    line.set_title("greedy alignment: each token where it is written", loc="left", fontsize=10)
    for ax in (spec, prob):
        ax.tick_params(labelbottom=False)
    heard = f"\u201c{transcript}\u201d" if transcript else "nothing written"
    fig.suptitle(textwrap.shorten(f"{title + ': ' if title else ''}{heard}", 160), fontsize=13)
    fig.savefig(out)
    return transcript, [[round(s, 4), tok] for s, tok in emitted]


def _colours(n: int) -> list:
    """A colour per token, none of them grey (grey is the blank's): tab10's nine, else tab20's dark ones first."""
    from matplotlib import colormaps  # heavy: loaded only to draw

    if n <= 9:
        palette = [colormaps["tab10"](i) for i in range(10) if i != 7]
    else:
        palette = [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)] if i not in (14, 15)]
    return [palette[i % len(palette)] for i in range(n)]


def _levels(starts: list[float], labels: list[str], inches_per_second: float) -> list[int]:
    """A row (0, 1 or 2) for each label, so that labels closer than their own width go on different rows."""
    levels, last_end = [], [-np.inf] * 3
    for s, label in zip(starts, labels):
        x = s * inches_per_second
        level = next((k for k in range(3) if last_end[k] <= x), int(np.argmin(last_end)))
        last_end[level] = x + 0.13 * len(label) + 0.05  # about 0.13 inch per character at 13 points
        levels.append(level)
    return levels
