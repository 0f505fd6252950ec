"""``rnr fit classify``, ``rnr fit text``, their ``predict`` and ``evaluate``, ``generate``, ``plot hidden`` and
``export``.

Classification data is one of: a CSV (or ``.tsv``) with a text column and a label column (``--text``); a long CSV
with one row per step, a sequence column (``--id``), an optional order column (``--time``), numeric feature columns
and a label constant within each sequence; or a UEA/UCR ``.ts`` file.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from rnr.cli.common import UsageError, load_task_model, removed_on_failure, show_progress, writable
from rnr.cli.config import CLASSIFY_DATA
from rnr.data.datasets import load_ts
from rnr.export import export_onnx
from rnr.sequences.charlm import CharLM
from rnr.sequences.classifier import RNNClassifier
from rnr.sequences.hidden import write_view


# classification ---------------------------------------------------------------------------------------------------
def read_labelled(data: dict, path=None, need_label: bool = True):
    """(X, y or None, ids) from the file ``path`` (default ``data["path"]``) laid out as ``data`` says."""
    path = Path(path or data["path"])
    if not path.is_file():
        raise UsageError(f"data file {str(path)!r} does not exist; pass the file with --data")
    if path.suffix.lower() == ".ts":
        try:
            X, y = load_ts(path)
        except UnicodeDecodeError:
            raise UsageError(f"data file {str(path)!r} is not UTF-8 text") from None
        return X, y, np.arange(len(X))
    try:
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except UnicodeDecodeError:
        raise UsageError(f"data file {str(path)!r} is not UTF-8 text; save it as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UsageError(f"data file {str(path)!r} is not a readable CSV ({e}); check its separator and quoting") \
            from None
    label, text, id_col, time_col = data["label"], data["text"], data["id"], data["time"]
    if not text and not id_col:
        raise UsageError(f"say how {str(path)!r} holds its examples: --text COLUMN (one text per row) or --id COLUMN "
                         f"(one row per step of each sequence); or pass a .ts file")
    wanted = [c for c in (text, id_col, time_col, *data["features"]) if c] + ([label] if need_label else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise UsageError(f"columns {missing} are not in {str(path)!r}; its columns are {list(df.columns)}")
    has_label = label in df.columns
    if text:
        return df[text].fillna("").astype(str).tolist(), (df[label].to_numpy() if has_label else None), \
            np.arange(len(df))
    features = data["features"] or [c for c in df.columns if c not in (label, id_col, time_col)
                                    and pd.api.types.is_numeric_dtype(df[c])]
    bad = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
    if bad or not features:
        raise UsageError(f"feature columns must be numeric, got {bad or 'none'} in {str(path)!r}; name them with "
                         f"--set data.features=['a','b']")
    if time_col:
        df = df.sort_values([id_col, time_col], kind="stable")
    groups = df.groupby(id_col, sort=False)
    ids = np.array(list(groups.groups))
    X = [g[features].to_numpy(np.float32) for _, g in groups]
    y = None
    if has_label:
        varying = groups[label].nunique()
        if (varying > 1).any():
            raise UsageError(f"label column {label!r} must be constant within each sequence; it changes within "
                             f"{list(varying.index[varying > 1][:5])}")
        y = groups[label].first().to_numpy()
    return X, y, ids


def fit_classify(run_config: dict, options: dict):
    data = run_config["data"]
    X, y, _ = read_labelled(data)
    val = read_labelled(data, data["val_path"]) if data["val_path"] else (None, None, None)
    clf = RNNClassifier(**run_config["model"], **options).fit(X, y, val[0], val[1])
    kind = "texts" if clf.tokenizer_ is not None else "sequences"
    return clf, {"examples": len(X), "classes": clf.classes_.tolist(), "trained_on": f"{len(X)} {kind}",
                 "chosen": clf.chosen_}


def predict(args, clf, info_dict) -> dict:
    if not isinstance(clf, RNNClassifier):
        raise UsageError(f"rnr predict labels with classify models (and forecasts with forecast models, transcribes "
                         f"with transcribe models); {args.model!r} holds a {type(clf).__name__} (use rnr generate for "
                         f"text models)")
    if not args.data:
        raise UsageError("rnr predict with a classify model needs --data, the sequences or texts to label")
    if args.out:
        writable(args.out, "--out", reads={"the model": args.model, "--data": args.data})
    data = info_dict.get("data", _default_data())
    X, _, ids = read_labelled(data, args.data, need_label=False)
    proba = clf.predict_proba(X)
    id_name, label_name = data.get("id") or "id", data.get("label") or "label"  # the user's own column names
    if id_name == label_name:
        id_name = "id"
    frame = pd.DataFrame({id_name: ids, label_name: clf.classes_[proba.argmax(1)]})
    for k, c in enumerate(clf.classes_):
        frame[f"p_{c}"] = proba[:, k]
    if args.out:
        frame.to_csv(args.out, index=False)
        text = f"wrote {len(frame)} labels to {args.out}"
    else:
        text = frame.to_csv(index=False).rstrip("\n")
    result = {"rows": len(frame), "out": args.out, "_text": text}
    if args.json and not args.out:
        result["labels"] = frame.to_dict(orient="records")
    return result


def evaluate(args, model, info_dict) -> dict:
    if isinstance(model, CharLM):
        path = Path(args.data)
        if not path.is_file():
            raise UsageError(f"--data {args.data!r} does not exist; pass a UTF-8 text file")
        scores = model.evaluate(path)
        return {**scores, "_text": f"{scores['chars']} characters of {args.data}: {scores['bits']:.4f} bits per "
                                   f"character ({scores['nats']:.4f} nats)"}
    X, y, _ = read_labelled(info_dict.get("data", _default_data()), args.data)
    proba = model.predict_proba(X)
    known = {c: k for k, c in enumerate(model.classes_)}
    unseen = sorted({str(v) for v in y if v not in known})
    if unseen:
        raise UsageError(f"--data {args.data!r} has labels the model never saw: {unseen[:5]}; it knows "
                         f"{model.classes_.tolist()}")
    codes = np.array([known[v] for v in y])
    accuracy = float((proba.argmax(1) == codes).mean())
    log_loss = float(-np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-12, None)).mean())
    return {"accuracy": accuracy, "log_loss": log_loss, "examples": len(codes),
            "_text": f"{len(codes)} examples of {args.data}\n  accuracy: {accuracy:.4f}\n  log_loss: {log_loss:.4f}"}


def _default_data() -> dict:
    return {k: v[1] for k, v in CLASSIFY_DATA.items()}


# text -------------------------------------------------------------------------------------------------------------
def fit_text(run_config: dict, options: dict):
    data = run_config["data"]
    for key in ("path", "val_path"):
        if data[key] and not Path(data[key]).is_file():
            raise UsageError(f"data.{key} {data[key]!r} does not exist; pass a UTF-8 text file")
    val = Path(data["val_path"]) if data["val_path"] else None
    lm = CharLM(**run_config["model"], **options).fit(Path(data["path"]), val)
    n = Path(data["path"]).stat().st_size
    return lm, {"characters": n, "vocabulary": len(lm.vocab_), "trained_on": f"{n} bytes of text"}


def _charlm(path, command: str):
    return load_task_model(path, command, (CharLM,))[0]


MAX_GENERATE = 1_000_000  # characters per rnr generate: about a minute on a laptop with the default model


def generate(args) -> dict:
    model = _charlm(args.model, "generate")
    if args.length < 1:
        raise UsageError(f"--length must be >= 1, got {args.length}")
    if args.length > MAX_GENERATE:
        raise UsageError(f"--length must be between 1 and {MAX_GENERATE:,} characters, got {args.length:,}; for a "
                         f"longer text, generate it in parts, each primed (--prime) with the end of the last")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be a whole number from 0 to 2**63 - 1, got {args.seed}")
    if args.out:
        writable(args.out, "--out", reads={"the model": args.model})
    text = model.sample(length=args.length, prime=args.prime, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed, progress=show_progress(args))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return {"text": text, "length": len(text), "out": args.out,
            "_text": f"wrote {len(text)} characters to {args.out}" if args.out else text}


def plot_hidden(args) -> dict:
    model = _charlm(args.model, "plot hidden")
    if bool(args.text) == bool(args.text_file):
        raise UsageError("rnr plot hidden reads one of --text TEXT or --text-file FILE")
    if args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--text-file {args.text_file!r} does not exist") from None
        except UnicodeDecodeError:
            raise UsageError(f"--text-file {args.text_file!r} is not UTF-8 text; save it as UTF-8") from None
    else:
        text = args.text
    units = None
    if args.units:
        try:
            units = [int(u) for u in args.units.split(",")]
        except ValueError:
            raise UsageError(f"--units must be comma-separated integers, got {args.units!r}; e.g. --units 3,17") \
                from None
        bad = [u for u in units if not 0 <= u < model.hidden_size]
        if bad:
            raise UsageError(f"--units must lie in [0, {model.hidden_size}) (the model's hidden units), got {bad}")
    writable(args.out, "--out", folder=True, reads={"the model": args.model, "--text-file": args.text_file})
    with removed_on_failure(args.out):  # a failed view leaves no empty folder behind
        paths = write_view(model, text, args.out, units=units, k=args.k)
    text_out = "wrote " + ", ".join(str(p) for p in paths.values())
    return {"files": {k: str(v) for k, v in paths.items()}, "characters": len(text), "_text": text_out}


def export(args) -> dict:
    model = _charlm(args.model, "export")
    source = Path(args.model)
    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / "model.onnx"
    path = export_onnx(model, writable(out, "--out", reads={"the model": args.model}))
    return {"out": str(path), "bytes": path.stat().st_size,
            "_text": f"wrote {path} ({path.stat().st_size} bytes): one step per call, inputs ids, h"
                     f"{', c' if model.cell == 'lstm' else ''}; outputs logits, h_out"
                     f"{', c_out' if model.cell == 'lstm' else ''}"}
