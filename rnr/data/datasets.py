"""Real data sets kept outside the repository: where they live and how to load them as lists of series.

The data folder is the env var ``RNR_DATA`` when set, else ``../shared/data`` next to the repository (or next to
the current directory). ``load_m4`` reads the wide M4 CSVs (first column the id, rows right-padded with empty
cells) into one float64 array per series.

Reference: Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time series and 61
forecasting methods", International Journal of Forecasting 36(1):54-74; files from github.com/Mcompetitions/M4-methods.
"""
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["data_dir", "load_m4", "load_sst2", "load_ts", "load_uea", "M4_SUBSETS"]

# subset -> (horizon, seasonal period m) as M4 defines them
M4_SUBSETS = {
    "Yearly": (6, 1),
    "Quarterly": (8, 4),
    "Monthly": (18, 12),
    "Weekly": (13, 1),
    "Daily": (14, 1),
    "Hourly": (48, 24),
}


def data_dir() -> Path | None:
    """The shared data folder, or None when there is none.

    Looked up in order: ``$RNR_DATA`` (used as given; None if it is set but not a folder), then ``../shared/data``
    relative to the repository root, then relative to the current directory.
    """
    env = os.environ.get("RNR_DATA")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    repo = Path(__file__).resolve().parents[2]  # rnr/data/datasets.py -> the repository root
    for base in (repo, Path.cwd()):
        p = (base / ".." / "shared" / "data").resolve()
        if p.is_dir():
            return p
    return None


def _read_wide(path: Path) -> tuple[list[np.ndarray], list[str]]:
    df = pd.read_csv(path, index_col=0, dtype={0: str})  # (S, T_max) float64, NaN on the right padding
    values = df.to_numpy(np.float64)
    counts = np.isfinite(values).sum(axis=1)
    return [values[i, : counts[i]].copy() for i in range(len(values))], [str(i) for i in df.index]


def load_m4(subset: str = "Hourly", folder=None):
    """The M4 training and test series of one frequency.

    Parameters
    ----------
    subset : str
        One of ``M4_SUBSETS`` (``"Hourly"``: 414 series, horizon 48, m = 24).
    folder : str or Path, optional
        The folder holding ``{subset}-train.csv`` and ``{subset}-test.csv``; default ``data_dir() / "m4"``.

    Returns
    -------
    (train, test, ids) or None
        ``train[i]`` of shape ``(n_i,)``, ``test[i]`` of shape ``(horizon,)``, ``ids[i]`` like ``"H1"``, in file
        order; None when ``folder`` is not given and no data folder exists (so scripts can skip cleanly).

    Raises
    ------
    FileNotFoundError
        When the folder exists but lacks the files.
    """
    if subset not in M4_SUBSETS:
        raise ValueError(f"subset must be one of {list(M4_SUBSETS)}, got {subset!r}")
    if folder is None:
        root = data_dir()
        if root is None:
            return None
        folder = root / "m4"
    folder = Path(folder)
    paths = [folder / f"{subset}-{part}.csv" for part in ("train", "test")]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(
                f"M4 file {p} not found; place the M4-methods CSVs ({subset}-train.csv, {subset}-test.csv) there "
                f"or set RNR_DATA to the folder that holds m4/"
            )
    train, ids = _read_wide(paths[0])
    test, test_ids = _read_wide(paths[1])
    if ids != test_ids:
        raise ValueError(f"{paths[1]} must list the same series ids as {paths[0]} in the same order")
    return train, test, ids


def load_ts(path) -> tuple[list[np.ndarray], np.ndarray]:
    """Read a UEA/UCR ``.ts`` file: (X, y) with X a list of (T_i, channels) float32 arrays and y the labels (str).

    The format: ``#`` comments, ``@`` header lines, then after ``@data`` one case per line, its channels separated
    by ``:`` (values by ``,``) and the class label last. Missing values (``?``) become NaN.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return _read_ts(f, path)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); a .ts file is UTF-8: convert it, "
                         f"e.g. with iconv -t utf-8") from None


def _read_ts(f, path) -> tuple[list[np.ndarray], np.ndarray]:
    X, y = [], []
    in_data = False
    for n, line in enumerate(f, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        *channels, label = line.split(":")
        if not channels or not label.strip():
            raise ValueError(f"{path}: line {n} is not a .ts case: it needs channels of numbers and a class label, "
                             f"':'-separated (e.g. 1.0,2.0,3.0:label), got {line[:40]!r}")
        try:
            rows = [np.array([np.nan if v == "?" else float(v) for v in c.split(",")]) for c in channels]
        except ValueError as e:
            raise ValueError(f"{path}: line {n} is not a .ts case (channels of numbers, ':'-separated, the label "
                             f"last): {e}") from None
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"{path}: line {n} has channels of different lengths {[len(r) for r in rows]}; every "
                             f"channel of a case needs one value per step")
        X.append(np.stack(rows, axis=1).astype(np.float32))  # (T_i, channels)
        y.append(label.strip())
    if not in_data or not X:
        raise ValueError(f"{path} holds no cases: a .ts file needs an '@data' line followed by one case per line")
    return X, np.array(y)


def load_uea(name: str):
    """(X_train, y_train, X_test, y_test) of a UEA archive data set under the data folder (e.g. "JapaneseVowels",
    in ``japanese_vowels/``), or None when it is absent."""
    root = data_dir()
    folder = "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
    if root is None or not (root / folder / f"{name}_TRAIN.ts").is_file():
        return None
    return (*load_ts(root / folder / f"{name}_TRAIN.ts"), *load_ts(root / folder / f"{name}_TEST.ts"))


def load_sst2():
    """SST-2 sentences: {"train": (texts, labels), "dev": ..., "test": ...} from ``sst2/stsa.binary.*`` (each
    line a 0/1 label, a space, the tokenised sentence), or None when absent."""
    root = data_dir()
    if root is None or not (root / "sst2" / "stsa.binary.train").is_file():
        return None
    out = {}
    for split in ("train", "dev", "test"):
        lines = (root / "sst2" / f"stsa.binary.{split}").read_text().splitlines()
        pairs = [line.split(" ", 1) for line in lines if line.strip()]
        out[split] = ([text for _, text in pairs], np.array([int(label) for label, _ in pairs]))
    return out


def load_tinyshakespeare(val_fraction: float = 0.1):
    """(train, val) texts of tiny Shakespeare, ``tinyshakespeare/input.txt``, the last ``val_fraction`` of the
    characters held out (nanoGPT's split); None when absent."""
    root = data_dir()
    if root is None or not (root / "tinyshakespeare" / "input.txt").is_file():
        return None
    text = (root / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def load_multi30k(source: str = "de", target: str = "en", tokenised: bool = True):
    """Multi30k task 1 (``multi30k/``): {"train": (sources, targets), "val": ..., "test": ...} as lists of str, or
    None when absent. ``tokenised=True`` reads the lower-cased tokenised files (``tok/``), else the original
    text (``raw/``, gzip'd); test is test_2016_flickr."""
    root = data_dir()
    if root is None or not (root / "multi30k" / "tok").is_dir():
        return None
    out = {}
    for split, stem in (("train", "train"), ("val", "val"), ("test", "test_2016_flickr")):
        pair = []
        for lang in (source, target):
            if tokenised:
                path = root / "multi30k" / "tok" / f"{stem}.lc.norm.tok.{lang}"
                text = path.read_text(encoding="utf-8")
            else:
                path = root / "multi30k" / "raw" / f"{stem}.{lang}.gz"
                text = gzip.decompress(path.read_bytes()).decode("utf-8")
            pair.append(text.rstrip("\n").split("\n"))
        if len(pair[0]) != len(pair[1]):
            raise ValueError(f"multi30k {split}: {len(pair[0])} {source} lines but {len(pair[1])} {target} lines")
        out[split] = tuple(pair)
    return out
