"""Real data sets kept outside the repository: where they live and how to load them as lists of series.

The data folder is the env var ``RNR_DATA`` when set, else ``../shared/data`` next to the repository (or next to
the current directory). ``load_m4`` reads the wide M4 CSVs (first column the id, rows right-padded with empty
cells) into one float64 array per series.

Reference: Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time series and 61
forecasting methods", International Journal of Forecasting 36(1):54-74; files from github.com/Mcompetitions/M4-methods.
"""
import os
from pathlib import Path

import numpy as np

__all__ = ["data_dir", "load_m4", "M4_SUBSETS"]

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
    repo = Path(__file__).resolve().parents[1]
    for base in (repo, Path.cwd()):
        p = (base / ".." / "shared" / "data").resolve()
        if p.is_dir():
            return p
    return None


def _read_wide(path: Path) -> tuple[list[np.ndarray], list[str]]:
    import pandas as pd  # only the loaders need pandas

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
