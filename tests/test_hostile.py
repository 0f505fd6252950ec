"""Hostile and broken input: one table of bad inputs across the Python API, the rnr command, TOML configs and model
files. Each case names the exception (or exit code) it must give and a pattern its message must match: the
argument, the rule, the value and the fix. After every case, every file saved before it (models, folders, data) is
byte-identical: a bad input never loses or overwrites what was already there.

A case is ``Case(id, kind, run, expect, match)``, made with ``A`` (api), ``C`` (cli), ``T`` (config) or ``M`` (model):
    api:    ``run(env, tmp)`` calls rnr, which must raise ``expect``;
    model:  ``run(env, tmp)`` writes a damaged copy of a real model file and returns it; ``rnr.load`` must raise;
    cli, config: ``run(env, tmp)`` gives the argv of ``rnr`` (configs: the text of ``--config run.toml``), run
        in-process by ``rnr.__main__.main``; it must exit with ``expect`` and print ``rnr <command>: error: ...``.

Also here: loading never runs code (no unpickler in rnr, ``torch.load`` only with ``weights_only=True``); metadata
is checked against a schema, and declared sizes against the file, before anything is allocated."""
import ast
import functools
import hashlib
import json
import math
import os
import pickle
import re
import shutil
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import rnr
from rnr import weights as _safefile
from rnr.__main__ import main
from rnr.data import tasks
from rnr.data.datasets import load_ts
from rnr.io import FORMAT_VERSION

TEXT = "the quick brown fox jumps over the lazy dog. " * 10
TS = "@problemName toy\n@univariate true\n@classLabel true a b\n@data\n1,2,3:a\n2,3,4,5:b\n1,1,1:a\n3,2,1,0:b\n"
TINY = dict(hidden_size=4, head_size=4, epochs=1, batch_size=4)
TINY_LM = dict(hidden_size=4, embedding_dim=4, epochs=1, batch_size=2, seq_len=8, progress=False)
FAST = ["--set", "model.epochs=1", "--set", "model.hidden_size=4", "--quiet"]
F, DAMAGED = rnr.RNNForecaster, _safefile.DamagedFileError


def _panel(n: int = 20, ids=("a", "b"), start: int = 0) -> pd.DataFrame:
    """Long panel with integer times: unique_id, ds, y, price (a future covariate)."""
    t = np.arange(start, start + n)
    return pd.concat([pd.DataFrame({"unique_id": i, "ds": t, "y": np.sin(t) + k, "price": (t % 3).astype(float)})
                      for k, i in enumerate(ids)], ignore_index=True)


def _sequences():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(t, 2)).astype(np.float32) for t in (3, 5, 4, 6)], np.array([0, 1, 0, 1])


def _digests(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Fitted models in memory; model files, model folders (rnr fit) and data on disk. ``saved``: the digest of
    every file, checked after each case."""
    root = tmp_path_factory.mktemp("hostile")
    e = SimpleNamespace(root=root, df=_panel(), fm=root / "fm", lmf=root / "lm", clff=root / "clf")
    e.fc = F(horizon=3, **TINY).fit(e.df)
    e.fcf = F(horizon=3, **TINY).fit(e.df, future=["price"])
    e.clf = rnr.RNNClassifier(hidden_size=4, epochs=1, batch_size=4).fit(*_sequences())
    e.lm = rnr.CharLM(**TINY_LM).fit(TEXT)
    e.m2o = rnr.save(rnr.ManyToOne(3, 2, hidden_size=4, cell="gru"), root / "files" / "m2o.safetensors")
    e.fc_file, e.clf_file, e.lm_file = (rnr.save(m, root / "files" / f"{n}.safetensors")
                                        for m, n in ((e.fc, "fc"), (e.clf, "clf"), (e.lm, "lm")))
    data = root / "data"
    data.mkdir()
    e.sales, e.text, e.ts, e.blocker = data / "sales.csv", data / "text.txt", data / "toy.ts", data / "a_file"
    sales = tasks.ice_cream(n_shops=2, days=30)
    sales.to_csv(e.sales, index=False)
    e.text.write_text(TEXT, encoding="utf-8")
    e.ts.write_text(TS, encoding="utf-8")
    e.blocker.write_text("a plain file where a folder is expected", encoding="utf-8")
    for argv in (["fit", "forecast", "--data", e.sales, "--horizon", "3", "--set", "data.future=['temperature']",
                  "--set", "model.head_size=4", *FAST, "--out", e.fm],
                 ["fit", "text", "--data", e.text, "--set", "model.batch_size=2", "--set", "model.seq_len=8",
                  "--set", "model.embedding_dim=4", *FAST, "--out", e.lmf],
                 ["fit", "classify", "--data", e.ts, *FAST, "--out", e.clff]):
        assert main([str(a) for a in argv]) == 0, argv
    last = sales.groupby("unique_id")["ds"].max()
    e.short_future = data / "short_future.csv"  # 2 of the 3 steps the horizon needs
    pd.DataFrame([(u, last[u] + pd.Timedelta(days=k), 10.0) for u in last.index for k in (1, 2)],
                 columns=["unique_id", "ds", "temperature"]).to_csv(e.short_future, index=False)
    e.saved = _digests(root)
    return e


# ---------------------------------------------------------------------------------------------------- helpers
def _write(tmp: Path, name: str, content) -> Path:
    path = tmp / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return path


def _sales(env) -> pd.DataFrame:
    return pd.read_csv(env.sales)


def _with_nan(frame, col="y", row=3, value=np.nan):
    frame = frame.copy()
    frame.loc[row, col] = value
    return frame


def _edit(env_file: Path, tmp: Path, change=None, **meta) -> Path:
    """A copy of a model file with its metadata edited (the digest written again, so only the edit is wrong):
    ``change`` maps the parsed config to a new one; keyword arguments replace (or, as None, drop) header keys."""
    tensors, old = _safefile.read(env_file)
    old = {k: v for k, v in old.items() if k != "sha256"}
    if change is not None:
        old["config"] = json.dumps(change(json.loads(old["config"])))
    for k, v in meta.items():
        old.pop(k, None) if v is None else old.__setitem__(k, v)
    return _safefile.write(tmp / "edited.safetensors", tensors, old)


def _bytes(env_file: Path, tmp: Path, change) -> Path:
    return _write(tmp, "damaged.safetensors", change(env_file.read_bytes()))


def _flip(blob: bytes) -> bytes:
    """One bit flipped in the first tensor's bytes: the file still parses."""
    b = bytearray(blob)
    b[8 + int.from_bytes(blob[:8], "little") + 5] ^= 0x10
    return bytes(b)


def _forged(tmp: Path, **entry) -> Path:
    """A safetensors file of 16 data bytes whose header declares tensor 'w' as ``entry`` says."""
    h = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], **entry}}).encode()
    return _write(tmp, "forged.safetensors", len(h).to_bytes(8, "little") + h + bytes(16))


def _set(key: str, value, inner: str | None = None):
    """A config edit: config[key] = value, or config[inner][key] = value."""
    def change(config):
        (config[inner] if inner else config)[key] = value
        return config

    return change


class _RunsCode:
    """Unpickling this object calls os.mkdir(marker): proof that something unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _pickled(tmp: Path, name: str = "model.safetensors") -> Path:
    return _write(tmp, name, pickle.dumps({"weights": _RunsCode(tmp / "unpickled")}, protocol=4))


def _torch_saved(tmp: Path, name: str = "model.safetensors") -> Path:
    torch.save({"weights": torch.zeros(2), "hook": _RunsCode(tmp / "unpickled")}, tmp / name)
    return tmp / name


def _plain(tmp: Path) -> Path:
    save_file(dict(rnr.ManyToOne(3, 2, hidden_size=4).state_dict()), tmp / "plain.safetensors")
    return tmp / "plain.safetensors"


def _folder_with(folder: Path, tmp: Path, name: str, content: bytes) -> Path:
    """A copy of a model folder with one file replaced."""
    shutil.copytree(folder, tmp / "copy")
    (tmp / "copy" / name).write_bytes(content)
    return tmp / "copy"


def _fit(env, tmp, name, frame=None, content=None):
    """argv of ``rnr fit forecast`` on a bad CSV, replacing (--force) the model already in env.fm."""
    data = _write(tmp, name, frame.to_csv(index=False) if frame is not None else content)
    return ["fit", "forecast", "--data", data, "--horizon", "3", *FAST, "--out", env.fm, "--force"]


def _toml(env, tmp, body: str, task: str = "forecast", head=None):
    """argv of ``rnr fit TASK --config run.toml`` over env.fm; ``[data] path`` is the sales CSV unless ``head``."""
    first = f'[data]\npath = "{env.sales.as_posix()}"\n' if head is None else head
    return ["fit", task, "--config", _write(tmp, "run.toml", first + body), "--quiet", "--out", env.fm, "--force"]


# ------------------------------------------------------------------------------------------------------ cases
Case = namedtuple("Case", "id kind run expect match")


def A(id, run, expect, match):
    return Case(id, "api", run, expect, match)


def C(id, run, match, code=2):
    return Case(id, "cli", run, code, match)


def T(id, body, match, head=None, task="forecast"):
    return Case(id, "config", lambda e, t: _toml(e, t, body, task, head(e) if head else None), 2, match)


def _info_edit(e, t, **changes):
    """A copy of the fitted forecaster's model folder with info.json edited."""
    copy = t / "edited"
    shutil.copytree(e.fm, copy)
    info = json.loads((copy / "info.json").read_text())
    (copy / "info.json").write_text(json.dumps({**info, **changes}))
    return copy


def M(id, run, match, expect=ValueError):
    return Case(id, "model", run, expect, match)


V, TE = ValueError, TypeError
CASES = [
    # ---- Python API: forecasting panels
    A("api-nan-target", lambda e, t: F(horizon=3, **TINY).fit(_with_nan(e.df)), V,
      r"target column 'y' has missing values \(NaN\): 'a' at 3; pass missing='mask'"),
    A("api-inf-target", lambda e, t: F(horizon=3, **TINY).fit(_with_nan(e.df, value=np.inf)), V,
      r"target column 'y' must not be inf .*'a' at 3; replace them with NaN or drop the rows"),
    A("api-huge-target", lambda e, t: F(horizon=3, **TINY).fit(e.df.assign(y=1e39)), V,
      r"target column 'y' must not be inf \(or beyond float32's range\): 'a' at 0"),
    A("api-empty-frame", lambda e, t: F(horizon=3).fit(e.df.iloc[:0]), V,
      r"df is empty \(0 rows\); pass a frame with at least one row per series"),
    A("api-single-row", lambda e, t: F(horizon=3).fit(e.df.iloc[:1]), V,
      r"freq cannot be inferred: every series has one step; pass freq="),
    A("api-single-row-with-freq", lambda e, t: F(horizon=3, **TINY).fit(e.df.iloc[:1], freq=1), V,
      r"df must hold at least one series of 2 or more steps to learn from .* got 1 series of 1 step"),
    A("api-duplicate-timestamps", lambda e, t: F(horizon=3).fit(pd.concat([e.df, e.df.iloc[[3]]]).sort_index()), V,
      r"timestamps in 'ds' are duplicated within an id: 'a' at 3; drop them with df.drop_duplicates"),
    A("api-unsorted-timestamps", lambda e, t: F(horizon=3).fit(e.df.iloc[::-1]), V,
      r"timestamps in 'ds' are not increasing within each id: 'b' at 18.*; pass sort=True"),
    A("api-string-target", lambda e, t: F(horizon=3).fit(e.df.assign(y="lots")), TE,
      r"target column 'y' must be numeric, got dtype .*; convert it with pd.to_numeric"),
    A("api-string-time", lambda e, t: F(horizon=3).fit(e.df.assign(ds=e.df.ds.astype(str))), TE,
      r"time column 'ds' must hold datetimes or integers, got dtype .*pd.to_datetime"),
    A("api-lr-nan", lambda e, t: F(horizon=3, lr=math.nan).fit(e.df), V, r"lr must be a finite number > 0, got float nan; the default is lr=0.003"),
    A("api-unknown-id-at-update", lambda e, t: e.fc.update(_panel(2, ids=("zz",), start=20)), V,
      r"new_rows holds ids the model was not trained on: \['zz'\] \(1 in all\); fit a model that includes them"),
    A("api-update-with-old-rows", lambda e, t: e.fc.update(e.df.iloc[:3]), V,
      r"new_rows must follow the end of each series: 'a' ends at 19 but new_rows start at 0"),
    A("api-future-short-of-horizon", lambda e, t: e.fcf.predict(future_df=_panel(2, start=20)), V,
      r"future_df must cover the next 3 steps of every series for \['price'\]; series 'a' lacks some of 20, 21, 22; "
      r"add those rows, or forecast fewer steps with h="),
    A("api-future-nan", lambda e, t: e.fcf.predict(future_df=_with_nan(_panel(3, start=20), "price", 1)), V,
      r"future_df's covariates \['price'\] must be finite, got NaN or inf; fill them"),
    A("api-future-missing-column", lambda e, t: e.fcf.predict(future_df=_panel(3, start=20).drop(columns="price")),
      V, r"future_df must have the columns \['price'\]; it has \['unique_id', 'ds', 'y'\]"),
    A("api-future-not-a-frame", lambda e, t: e.fcf.predict(future_df=[[20, 1.0]]), TE,
      r"future_df must be a pandas DataFrame with columns \['unique_id', 'ds', 'price'\], got list"),
    A("api-future-absent", lambda e, t: e.fcf.predict(), V,
      r"future_df must give the future covariates \['price'\] for the next 3 steps .*predict\(future_df=...\)"),
    A("api-predict-unfitted", lambda e, t: F(horizon=3).predict(), V,
      r"this RNNForecaster is not fitted yet; call fit\(df\) first"),
    A("api-h-beyond-horizon", lambda e, t: e.fc.predict(h=10), V,
      r"h must be <= horizon=3 with strategy='direct', got h=10; .*strategy='recursive'"),
    # ---- Python API: classifiers, ragged sequences, topologies
    A("api-ragged-wrong-feature-count", lambda e, t: rnr.RNNClassifier(hidden_size=4, epochs=1).fit(
        [np.zeros((3, 2)), np.zeros((5, 2)), np.zeros((4, 3)), np.zeros((2, 2))], [0, 1, 0, 1]), V,
      r"X\[2\] has 3 features, but the first sequence has 2; every sequence needs the same features"),
    A("api-predict-wrong-feature-count", lambda e, t: e.clf.predict([np.zeros((4, 2)), np.zeros((2, 3))]), V,
      r"X\[1\] has 3 features, but the model was fitted on 2"),
    A("api-classifier-nan", lambda e, t: e.clf.predict([np.array([[0.0, np.nan]])]), V,
      r"X\[0\] holds NaN or inf; fill or drop missing values first"),
    A("api-classifier-strings-for-numbers", lambda e, t: e.clf.predict(["hello"]), TE,
      r"X\[0\] must be a \(T, F\) array of numbers, got str \(.*\); a model fitted on numeric sequences"),
    A("api-classifier-missing-label", lambda e, t: rnr.RNNClassifier(hidden_size=4, epochs=1).fit(
        _sequences()[0], [0.0, np.nan, 1.0, 0.0]), V,
      r"y must hold a label for every sequence, got None or NaN at positions \[1\] \(1 in all\)"),
    A("api-fit-ragged-wrong-feature-count", lambda e, t: rnr.fit(rnr.ManyToOne(2, 1, hidden_size=4), (
        [torch.zeros(3, 2), torch.zeros(4, 3)], torch.zeros(2, 1)), epochs=1, progress=False), V,
      r"X\[1\] has shape \(4, 3\) but X\[0\] has \(3, 2\); examples may differ in length .* only"),
    A("api-fit-nan-target", lambda e, t: rnr.fit(rnr.ManyToOne(2, 1, hidden_size=4), (
        [torch.zeros(3, 2), torch.zeros(4, 2)], [torch.zeros(1), torch.full((1,), math.nan)]), epochs=1), V,
      r"Y\[1\] holds NaN or inf; fill or drop missing values first"),
    A("api-integer-dtype", lambda e, t: rnr.ManyToOne(2, 1, hidden_size=4)(torch.zeros(1, 3, 2).long()), TE,
      r"x must hold floating-point values, got dtype torch.int64; convert it with x.float\(\)"),
    A("api-nan-input", lambda e, t: rnr.ManyToOne(2, 1, hidden_size=4)(torch.full((1, 3, 2), math.nan)), V,
      r"x must be finite, got NaN or inf \(first at index \(0, 0, 0\)\)"),
    A("api-huge-hidden-size", lambda e, t: rnr.ManyToOne(2, 1, hidden_size=10**12), V,
      r"hidden_size=1000000000000 \(input_size=2, .*\) needs 1e\+24 weights .*more than the limit .*lower hidden_size"),
    # ---- Python API: text, .ts files
    A("api-unseen-character", lambda e, t: e.lm.evaluate("the Zebra"), V,
      r"text holds 'Z' \(U\+005A\) at position 4, a character the training text never had; .*unknown='map'"),
    A("api-unseen-prime", lambda e, t: e.lm.sample(5, prime="Q"), V, r"prime holds 'Q' \(U\+0051\) at position 0"),
    A("api-text-not-utf8", lambda e, t: rnr.CharLM(**TINY_LM).fit(_write(t, "l1.txt", b"caf\xe9 " * 20)), V,
      r"text: '.*l1.txt' is not UTF-8 text \(byte 3: invalid continuation byte\); convert it"),
    A("api-text-as-bytes", lambda e, t: rnr.CharLM(**TINY_LM).fit(TEXT.encode()), TE,
      r"text must be a str or a pathlib.Path to a UTF-8 file, got bytes"),
    A("api-ts-not-a-number", lambda e, t: load_ts(_write(t, "x.ts", "@data\n1,2,x:a\n")), V,
      r"x.ts: line 2 is not a .ts case \(channels of numbers.*could not convert string to float: 'x'"),
    A("api-ts-no-data-section", lambda e, t: load_ts(_write(t, "x.ts", "@problemName x\n1,2:a\n")), V,
      r"x.ts holds no cases: a .ts file needs an '@data' line"),
    A("api-ts-ragged-channels", lambda e, t: load_ts(_write(t, "x.ts", "@data\n1,2,3:4,5:a\n")), V,
      r"x.ts: line 2 has channels of different lengths \[3, 2\]"),
    A("api-ts-no-label", lambda e, t: load_ts(_write(t, "x.ts", "@data\n1,2,3\n")), V,
      r"x.ts: line 2 is not a .ts case: it needs channels of numbers and a class label, ':'-separated"),
    A("api-ts-not-utf8", lambda e, t: load_ts(_write(t, "x.ts", b"@data\n1,2:caf\xe9\n")), V,
      r"x.ts is not UTF-8 text \(byte \d+: invalid continuation byte\); .*iconv"),
    # ---- Python API: saving and loading paths
    A("api-save-unfitted-over-a-model", lambda e, t: rnr.save(F(horizon=3), e.fc_file), V,
      r"RNNForecaster is not fitted; call fit\(df\) before rnr.save"),
    A("api-save-code-over-a-model", lambda e, t: rnr.save(rnr.ManyToOne(3, 2, nonlinearity=lambda z: z), e.m2o), V,
      r"cannot save ManyToOne with nonlinearity='<lambda>': a custom function is code"),
    A("api-save-to-a-folder", lambda e, t: rnr.save(rnr.ManyToOne(3, 2), e.fm), IsADirectoryError,
      r"cannot write '.*fm': it is a folder; pass a file path inside it"),
    A("api-save-under-a-file", lambda e, t: rnr.save(rnr.ManyToOne(3, 2), e.blocker / "m.safetensors"),
      NotADirectoryError, r"cannot write .*: '.*a_file' is a file, not a folder"),
    A("api-load-missing-file", lambda e, t: rnr.load(t / "nope.safetensors"), FileNotFoundError,
      r"no such file: '.*nope.safetensors'"),
    A("api-load-a-folder-without-a-model", lambda e, t: rnr.load(t), FileNotFoundError,
      r"path '.*' is a folder without model.safetensors; pass a file written by rnr.save, or a model folder"),

    # ---- the rnr command: every input error exits 2 with "rnr <command>: error: ..."
    C("cli-fit-nan-over-a-model", lambda e, t: _fit(e, t, "nan.csv", _with_nan(_sales(e), row=5)),
      r"target column 'y' has missing values \(NaN\): 'shop_00' at 2023-\d\d-\d\d; pass --set data.missing=mask to "
      r"skip them in the loss, --set data.missing=ffill or interpolate to fill them"),
    C("cli-fit-header-only", lambda e, t: _fit(e, t, "h.csv", content="unique_id,ds,y\n"), r"df is empty \(0 rows\)"),
    C("cli-fit-empty-file", lambda e, t: _fit(e, t, "empty.csv", content=""),
      r"data file '.*empty.csv' is not a readable CSV \(No columns to parse from file\)"),
    C("cli-fit-duplicate-timestamps", lambda e, t: _fit(e, t, "d.csv", _sales(e).pipe(
        lambda d: pd.concat([d, d[3:4]]).sort_index(kind="stable"))),
      r"timestamps in 'ds' are duplicated within an id: 'shop_00' at"),
    C("cli-fit-unsorted-timestamps", lambda e, t: _fit(e, t, "u.csv", _sales(e).iloc[::-1]),
      r"timestamps in 'ds' are not increasing within each id"),
    C("cli-fit-single-row", lambda e, t: _fit(e, t, "one.csv", _sales(e).iloc[:1]),
      r"freq cannot be inferred: every series has one timestamp; pass freq="),
    C("cli-fit-not-utf8", lambda e, t: _fit(e, t, "l1.csv", content=b"unique_id,ds,y\ncaf\xe9,1,2\n"),
      r"data file '.*l1.csv' is not UTF-8 text; save it as UTF-8 CSV"),
    C("cli-fit-huge-values", lambda e, t: _fit(e, t, "big.csv", _sales(e).assign(y=1e39)),
      r"target column 'y' must not be inf \(or beyond float32's range\)"),
    C("cli-fit-bad-time-column", lambda e, t: _fit(e, t, "bt.csv", _sales(e).assign(ds="soon")),
      r"time column 'ds' of '.*bt.csv' holds neither integers nor dates .*pass the right column with --time"),
    C("cli-fit-missing-data-file", lambda e, t: ["fit", "forecast", "--data", t / "no.csv", "--horizon", "3",
                                                 "--out", t / "m"], r"data file '.*no.csv' does not exist; .*--data"),
    C("cli-fit-out-under-a-file", lambda e, t: ["fit", "forecast", "--data", e.sales, "--horizon", "3", "--out",
                                                e.blocker / "m"],
      r"--out '.*a_file/m' cannot be written: '.*a_file' is a file, not a folder"),
    C("cli-fit-out-is-a-file", lambda e, t: ["fit", "forecast", "--data", e.sales, "--horizon", "3", "--out",
                                             e.blocker],
      r"--out '.*a_file' is a file, but --out names the folder to write to"),
    C("cli-fit-over-a-model-without-force", lambda e, t: ["fit", "forecast", "--data", e.sales, "--horizon", "3",
                                                          "--out", e.fm],
      r"--out '.*fm' already holds a model; pass --force to replace it"),
    C("cli-predict-future-short-of-horizon", lambda e, t: ["predict", e.fm, "--future", e.short_future],
      r"future_df must cover the next 3 steps of every series for \['temperature'\]; series 'shop_00' lacks some of "
      r"2023-\d\d-\d\d"),
    C("cli-predict-future-missing", lambda e, t: ["predict", e.fm, "--future", t / "no.csv"],
      r"data file '.*no.csv' does not exist; pass the CSV of the future covariates with --future"),
    C("cli-predict-out-is-a-folder", lambda e, t: ["predict", e.fm, "--future", e.short_future, "--out", t],
      r"--out '.*' is a folder; pass a file path, e.g. '.*out.csv'"),
    C("cli-predict-h-zero", lambda e, t: ["predict", e.fm, "--h", "0"], r"h must be >= 1, got 0"),
    C("cli-predict-no-such-model", lambda e, t: ["predict", t / "nothing"],
      r"'.*nothing' does not exist; pass the --out folder of rnr fit"),
    C("cli-info-damaged-info-json", lambda e, t: ["info", _folder_with(e.fm, t, "info.json", b"{oops")],
      r"info.json' is damaged \(.*\); fit the model again"),
    C("cli-info-truncated-model", lambda e, t: ["info", _folder_with(e.fm, t, "model.safetensors",
                                                                    (e.fm / "model.safetensors").read_bytes()[:-9])],
      r"model.safetensors' is not a readable safetensors file \(\d+ bytes; tensor .* declares shape"),
    C("cli-info-pickle-model", lambda e, t: ["info", _pickled(t)],
      r"looks like a pickle or torch.save file; rnr never unpickles"),
    C("cli-fit-text-not-utf8", lambda e, t: ["fit", "text", "--data", _write(t, "l1.txt", b"caf\xe9 " * 40), "--out",
                                             e.lmf, "--force"], r"text: '.*l1.txt' is not UTF-8 text \(byte 3"),
    C("cli-evaluate-unseen-character", lambda e, t: ["evaluate", e.lmf, "--data", _write(t, "z.txt", "Zzz")],
      r"text holds 'Z' \(U\+005A\) at position 0, a character the training text never had"),
    C("cli-generate-unseen-prime", lambda e, t: ["generate", e.lmf, "--prime", "QED", "--length", "3"],
      r"prime holds 'Q' \(U\+0051\) at position 0"),
    C("cli-fit-duplicate-column", lambda e, t: ["fit", "forecast", "--data", _write(t, "dup.csv", "unique_id,ds,y,y\n"
                                                 "a,2020-01-01,1,2\n"), "--horizon", "1", "--out", t / "o"],
      r"names the column\(s\) \['y'\] more than once in its header"),
    C("cli-fit-mixed-date-formats", lambda e, t: ["fit", "forecast", "--data", _write(
        t, "mixed.csv", "unique_id,ds,y\na,2021-01-01,1\na,2021-01-02,2\na,01/03/2021,3\n"), "--horizon", "1", "--out",
        t / "o"], r"row 4 holds '01/03/2021', not in the format of the first rows \('2021-01-01', '2021-01-02', read as "
                  r"%Y-%m-%d\); write every date of the column in one format"),
    C("cli-fit-huge-horizon", lambda e, t: ["fit", "forecast", "--data", e.sales, "--horizon", "1000000000", "--out",
                                            t / "o"], r"horizon=1000000000 with head_size=128 needs 1.28e\+11 weights"),
    C("cli-info-json-data-null", lambda e, t: ["predict", _info_edit(e, t, data=None), "--out", t / "p.csv"],
      r"info.json' must hold an object under 'data' \(the run's data settings\), got None"),
    C("cli-info-json-wrong-task", lambda e, t: ["predict", _info_edit(e, t, task="classify"), "--out", t / "p.csv"],
      r"info.json' says the task is 'classify', but model.safetensors holds a RNNForecaster \('forecast'\)"),
    C("cli-generate-seed-past-64-bits", lambda e, t: ["generate", e.lmf, "--length", "3", "--seed",
                                                      "99999999999999999999999"],
      r"--seed must be a whole number from 0 to 2\*\*63 - 1, got 99999999999999999999999"),
    C("cli-generate-negative-seed", lambda e, t: ["generate", e.lmf, "--length", "3", "--seed=-1"],
      r"--seed must be a whole number from 0 to 2\*\*63 - 1, got -1"),
    A("api-sample-seed-not-an-int", lambda e, t: e.lm.sample(3, seed=2.5), TE,
      r"CharLM.sample: seed must be an int in \[0, 2\*\*63\) or None, got float 2.5"),
    C("cli-fit-dst-gap-names-the-flag", lambda e, t: ["fit", "forecast", "--data", _write(
        t, "gap.csv", "unique_id,ds,y\na,2021-03-28 00:00,1\na,2021-03-28 01:00,2\na,2021-03-28 03:00,3\n"
                      "a,2021-03-28 04:00,4\n"), "--horizon", "1", "--out", t / "o"],
      r"'a' jumps from 2021-03-28 01:00:00 to 2021-03-28 03:00:00 \(1 missing\); pass --set data.fill_gaps=true to "
      r"insert the missing steps as NaN \(with --set data.missing=mask, ffill or interpolate\), or pass the right "
      r"--set data.freq="),
    C("cli-generate-huge-length", lambda e, t: ["generate", e.lmf, "--length", "1000000000"],
      r"--length must be between 1 and 1,000,000 characters, got 1,000,000,000; for a longer text, generate it in "
      r"parts"),
    C("cli-fit-malformed-ts", lambda e, t: ["fit", "classify", "--data", _write(t, "b.ts", "@data\n1,x:a\n"), "--out",
                                            t / "c"], r"b.ts: line 2 is not a .ts case"),
    C("cli-fit-ts-not-utf8", lambda e, t: ["fit", "classify", "--data", _write(t, "l1.ts", b"@data\n1,2:caf\xe9\n"),
                                           "--out", e.clff, "--force"], r"l1.ts is not UTF-8 text \(byte"),
    C("cli-predict-wrong-feature-count", lambda e, t: ["predict", e.clff, "--data", _write(t, "two.ts",
                                                                                         "@data\n1,2,3:4,5,6:a\n")],
      r"X\[0\] has 2 features, but the model was fitted on 1"),
    C("cli-evaluate-unseen-label", lambda e, t: ["evaluate", e.clff, "--data", _write(t, "c.ts", "@data\n1,2,3:c\n")],
      r"has labels the model never saw: \['c'\]; it knows \['a', 'b'\]"),
    C("cli-backtest-series-too-short", lambda e, t: ["backtest", "forecast", "--data", e.sales, "--horizon", "20",
                                                     "--windows", "3", *FAST],
      r"n_windows=3 windows of horizon 20 \(step 20\) with m=7 need a series of at least 81 steps, but the longest "
      r"in df has \d+; use fewer windows"),

    # ---- TOML config files (--config): the body follows a [data] table naming the sales CSV
    Case("config-missing-file", "config", lambda e, t: ["fit", "forecast", "--config", t / "no.toml", "--out", e.fm],
         2, r"config file '.*no.toml' does not exist; pass the path of a TOML file"),
    T("config-not-toml", "[model\nhorizon = 3\n", r"config file '.*run.toml' is not valid TOML: .*line 3.*; fix the "
                                                  r"line it names"),
    Case("config-not-utf8", "config", lambda e, t: ["fit", "forecast", "--config", _write(t, "l1.toml", b"x = '\xe9'"),
                                                     "--out", e.fm], 2, r"config file '.*l1.toml' is not UTF-8 text"),
    T("config-unknown-table", "[modle]\nhorizon = 3\n",
      r"unknown table 'modle' \(.*run.toml:3\), did you mean 'model'\? The tables are \['data', 'model'\]"),
    T("config-unknown-key", "[model]\nhorizon = 3\nhiden_size = 4\n",
      r"unknown key 'model.hiden_size' \(.*run.toml:5\), did you mean 'model.hidden_size'\? The keys of \[model\] "
      r"are \[.*'hidden_size'"),
    T("config-string-for-int", '[model]\nhorizon = 3\nhidden_size = "big"\n',
      r"model.hidden_size \(.*run.toml:5\) must be an integer, got 'big'; write e.g. 28"),
    T("config-bool-for-int", "[model]\nhorizon = 3\nepochs = true\n", r"model.epochs \(.*run.toml:5\) must be an "
                                                                      r"integer, got True"),
    T("config-value-for-table", "", r"model \(.*run.toml:1\) must be a table \(\[model\]\), got 3",
      head=lambda e: "model = 3\n"),
    T("config-scalar-for-list", "[model]\nhorizon = 3\nquantiles = 0.5\n",
      r"model.quantiles \(.*run.toml:5\) must be a list, got 0.5; write e.g. \[0.1, 0.9\]"),
    T("config-string-for-list", "future = \"temperature\"\n[model]\nhorizon = 3\n",
      r"data.future \(.*run.toml:3\) must be a list, got 'temperature'"),
    T("config-quantile-out-of-range", "[model]\nhorizon = 3\nquantiles = [1.5]\n",
      r"quantiles must lie strictly between 0 and 1, got 1.5"),
    T("config-no-data-path", "[model]\nhorizon = 3\n", r"does not set data.path, the file to learn from; pass --data",
      head=lambda e: ""),
    T("config-lr-nan", "[model]\nhorizon = 3\nlr = nan\n", r"lr must be a finite number > 0, got float nan"),
    T("config-clip-negative", "[model]\nhorizon = 3\nclip_grad_norm = -1.0\n",
      r"clip_grad_norm must be a finite number > 0 or None, got float -1.0"),
    T("config-threads-zero", "[model]\nhorizon = 3\nthreads = 0\n", r"threads must be an int >= 1 or None, got int 0"),
    T("config-head-size-zero", "[model]\nhorizon = 3\nhead_size = 0\n", r"head_size must be an int >= 1, got int 0"),
    T("config-dropout-inf", "[model]\nhorizon = 3\nnum_layers = 2\ndropout = inf\n",
      r"dropout must be a finite number >= 0 and < 1, got float inf"),
    T("config-huge-hidden-size", "[model]\nhorizon = 3\nhidden_size = 1000000000000\n",
      r"hidden_size=1000000000000 with head_size=128 needs 1.28e\+14 weights .*lower hidden_size"),
    T("config-unknown-missing-policy", 'missing = "drop"\n[model]\nhorizon = 3\n',
      r"missing must be one of \['error', 'mask', 'ffill', 'interpolate'\], got 'drop'"),
    T("config-key-of-another-task", "[model]\nhorizon = 3\n",
      r"unknown key 'model.horizon' \(.*run.toml:4\), a key of rnr fit forecast. The keys of \[model\] are "
      r"\[.*'seq_len'",
      head=lambda e: f'[data]\npath = "{e.text.as_posix()}"\n', task="text"),

    # ---- model files: damaged copies of real ones, read with rnr.load
    M("model-empty-file", lambda e, t: _bytes(e.m2o, t, lambda b: b""),
      r"is not a readable safetensors file \(0 bytes; shorter than the 8-byte header length\)", DAMAGED),
    M("model-truncated-in-header", lambda e, t: _bytes(e.m2o, t, lambda b: b[:20]),
      r"\(20 bytes; it declares a header of \d+ bytes, more than the file holds\)", DAMAGED),
    M("model-truncated-in-data", lambda e, t: _bytes(e.m2o, t, lambda b: b[:-40]),
      r"tensor '.*' declares shape \[.*\] of F32 \(\d+ bytes\) at bytes \d+\.\.\d+, but the file holds \d+ bytes of "
      r"tensor data", DAMAGED),
    M("model-flipped-bit-in-data", lambda e, t: _bytes(e.m2o, t, _flip),
      r"is damaged: its tensors do not match the sha256 written with them", DAMAGED),
    M("model-flipped-byte-in-header", lambda e, t: _bytes(e.m2o, t, lambda b: b[:8] + b"[" + b[9:]),
      r"its header is not JSON", DAMAGED),
    M("model-pickle-renamed", lambda e, t: _pickled(t),
      r"looks like a pickle or torch.save file; rnr never unpickles \(it can run arbitrary code\)", DAMAGED),
    M("model-torch-save-renamed", lambda e, t: _torch_saved(t), r"looks like a pickle or torch.save file", DAMAGED),
    M("model-plain-safetensors", lambda e, t: _plain(t),
      r"is a safetensors file but not an rnr model file \(no 'format': 'rnr' in its metadata\)"),
    M("model-huge-header-length", lambda e, t: _bytes(e.m2o, t, lambda b: (2**62).to_bytes(8, "little") + b[8:]),
      r"it declares a header of 4611686018427387904 bytes, more than the file holds", DAMAGED),
    M("model-huge-tensor-shape", lambda e, t: _forged(t, shape=[10**9, 10**9]),
      r"tensor 'w' declares shape \[1000000000, 1000000000\] of F32 \(4000000000000000000 bytes\) at bytes 0\.\.16, "
      r"but the file holds 16 bytes", DAMAGED),
    M("model-unknown-dtype", lambda e, t: _forged(t, dtype="PICKLE"), r"tensor 'w' has a malformed entry", DAMAGED),
    M("model-newer-format-version", lambda e, t: _edit(e.m2o, t, format_version=str(FORMAT_VERSION + 1),
                                                       rnr_version="9.0.0"),
      rf"has format_version {FORMAT_VERSION + 1}, newer than this rnr reads \({FORMAT_VERSION}; written by rnr "
      rf"9.0.0\); upgrade rnr"),
    M("model-format-version-not-a-number", lambda e, t: _edit(e.m2o, t, format_version="one"),
      r"format_version must be a whole number such as '1', got 'one'"),
    M("model-unknown-metadata-key", lambda e, t: _edit(e.m2o, t, evil="import os"),
      r"has damaged rnr metadata: unknown keys \['evil'\], missing keys \[\]"),
    M("model-missing-config", lambda e, t: _edit(e.m2o, t, **{"config": None}),
      r"unknown keys \[\], missing keys \['config'\]"),
    M("model-string-for-int", lambda e, t: _edit(e.m2o, t, _set("hidden_size", "big")),
      r"configures ManyToOne with hidden_size=\"big\", but hidden_size must be an integer"),
    M("model-nan-for-float", lambda e, t: _edit(e.m2o, t, _set("dropout", math.nan)),
      r"configures ManyToOne with dropout=NaN, but dropout must be a finite number"),
    M("model-list-for-object", lambda e, t: _edit(e.m2o, t, lambda c: [c]),
      r"config must be a JSON object of constructor arguments, got a JSON array"),
    M("model-huge-hidden-size", lambda e, t: _edit(e.m2o, t, _set("hidden_size", 50_000)),
      r"holds a ManyToOne that cannot be rebuilt \(ValueError: hidden_size=50000 .* needs 7.5e\+09 weights "
      r"\(27.9 GiB of float32\), more than the limit"),
    M("model-unknown-class", lambda e, t: _edit(e.m2o, t, **{"class": "Transformer"}),
      r"holds a model of class 'Transformer', which this rnr does not know"),
    M("model-forecaster-list-for-params", lambda e, t: _edit(e.fc_file, t, _set("params", [])),
      r"config\['params'\] must be a JSON object of RNNForecaster arguments, got a JSON array"),
    M("model-forecaster-missing-entry", lambda e, t: _edit(e.fc_file, t, lambda c: {k: c[k] for k in c if k != "net"}),
      r"configures RNNForecaster with no \['net'\]; the file is damaged or was edited"),
    M("model-forecaster-wrong-param-type", lambda e, t: _edit(e.fc_file, t, _set("horizon", [3], "params")),
      r"gives RNNForecaster horizon=\[3\], but horizon must be an integer"),
    M("model-classifier-bad-dtype", lambda e, t: _edit(e.clf_file, t, _set("classes_dtype", "|O; import os")),
      r"config\['classes_dtype'\] must name a numpy dtype such as 'int64' or '<U8', got '\|O; import os'"),
    M("model-charlm-wrong-vocab", lambda e, t: _edit(e.lm_file, t, _set("vocab", [1, 2])),
      r"config\['vocab'\] must be a list of strings, got array \[1, 2\]"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(env, tmp_path, capsys, case):
    if case.kind in ("api", "model"):
        with pytest.raises(case.expect, match=case.match):
            out = case.run(env, tmp_path)
            if case.kind == "model":
                rnr.load(out)
    else:
        argv = [str(a) for a in case.run(env, tmp_path)]
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == case.expect, f"exit {code}, stderr: {err}"
        assert err.startswith(f"rnr {argv[0]}: error: ") and "Traceback" not in err, err
        assert re.search(case.match, err), err
    assert not (tmp_path / "unpickled").exists(), "something unpickled a file"
    now = _digests(env.root)
    lost = [str(p.relative_to(env.root)) for p, h in env.saved.items() if now.get(p) != h]
    assert not lost, f"{case.id} changed or removed files saved before it: {lost}"


def test_the_table_covers_every_kind_of_input():
    kinds = {k: sum(c.kind == k for c in CASES) for k in ("api", "cli", "config", "model")}
    assert len(CASES) >= 45 and min(kinds.values()) >= 10, kinds
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be distinct"


# ------------------------------------------------------------------------------------------ loading runs no code
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def test_rnr_never_imports_an_unpickler_and_torch_load_only_with_weights_only():
    loads = []
    for path in sorted(Path(rnr.__file__).parent.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source, filename=str(path))):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.split(".")[0] in UNPICKLERS], where
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in UNPICKLERS, where
                assert not (node.module == "torch" and any(a.name == "load" for a in node.names)), where
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr == "load" and getattr(f.value, "id", None) == "torch":
                    loads.append(where)
                    flag = [k.value for k in node.keywords if k.arg == "weights_only"]
                    assert flag and isinstance(flag[0], ast.Constant) and flag[0].value is True, \
                        f"{where} calls torch.load without weights_only=True"
                allow = [k.value for k in node.keywords if k.arg == "allow_pickle"]
                assert not allow or getattr(allow[0], "value", True) is False, f"{where} passes allow_pickle"
        for n, line in enumerate(source.splitlines(), 1):  # the text too, for calls the parse above cannot see
            if "torch.load(" in line and not line.lstrip().startswith("#"):
                assert "weights_only=True" in line, f"{path.name}:{n}: {line.strip()}"
    assert loads == []  # rnr reads models with safetensors only; a torch.load added later must pass the checks above


@pytest.mark.parametrize("writer", [_pickled, _torch_saved], ids=["pickle", "torch.save"])
def test_loading_a_pickle_never_runs_its_code(tmp_path, monkeypatch, writer):
    path = writer(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("rnr.load must never unpickle")

    for target in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load"):
        monkeypatch.setattr(target, refuse)
    with pytest.raises(DAMAGED, match="rnr never unpickles"):
        rnr.load(path)
    assert not (tmp_path / "unpickled").exists()


# ------------------------------------------------------------------------------------------ metadata schema
SCHEMA_EDITS = [  # (model file, edit of _edit, message): extra keys and wrong types at every level
    ("m2o", dict(rnr_version="1", note="hello"), r"unknown keys \['note'\]"),
    ("m2o", dict(change=_set("wormholes", 3)), r"configures ManyToOne with arguments \['wormholes'\] that this rnr "
                                               r"does not take"),
    ("fc_file", dict(change=_set("extra", {})), r"configures RNNForecaster with arguments \['extra'\]"),
    ("fc_file", dict(change=_set("wormholes", 3, "params")),
     r"config\['params'\] gives RNNForecaster arguments \['wormholes'\] that this rnr does not take"),
    ("fc_file", dict(change=_set("hidden_size", "4", "net")),
     r"config\['net'\] gives ForecastNet hidden_size=\"4\", but hidden_size must be an integer"),
    ("fc_file", dict(change=_set("targets", "y", "columns")),
     r"config\['columns'\] gives PanelColumns targets=\"y\", but targets must be a list"),
    ("clf_file", dict(change=_set("n_features_in", 2.5)), r"config\['n_features_in'\] must be an integer, got number "
                                                          r"2.5"),
    ("clf_file", dict(change=_set("bidirectional", "yes", "params")),
     r"gives RNNClassifier bidirectional=\"yes\", but bidirectional must be true or false"),
    ("lm_file", dict(change=_set("history", {"epoch": 1})), r"config\['history'\] must be a list of objects, got "
                                                            r"object"),
]


@pytest.mark.parametrize("source,edit,match", SCHEMA_EDITS, ids=[m[:40] for _, _, m in SCHEMA_EDITS])
def test_load_refuses_unknown_keys_and_wrong_types_in_metadata(env, tmp_path, source, edit, match):
    with pytest.raises(ValueError, match=match):
        rnr.load(_edit(getattr(env, source), tmp_path, **edit))


def test_sizes_are_checked_against_the_file_before_allocation(env, tmp_path, monkeypatch):
    """A forged hidden_size is built on the meta device first: the real model is never allocated."""
    path = _edit(env.m2o, tmp_path, _set("hidden_size", 5_000))  # 300 MB of weights if allocated, under the limit
    made, real = [], rnr.ManyToOne.__init__

    @functools.wraps(real)
    def spy(self, *args, **kwargs):
        made.append(torch.empty(0).device.type)  # the default device while the model is built
        real(self, *args, **kwargs)

    monkeypatch.setattr(rnr.ManyToOne, "__init__", spy)
    with pytest.raises(ValueError, match="does not fit its ManyToOne"):
        rnr.load(path)
    assert made == ["meta"]  # built once, on the meta device, and refused there


def test_huge_values_give_finite_standardisation(env):
    """Values near 1e30 are finite in float32 but their squares are not: statistics are taken in float64."""
    X, y = _sequences()
    clf = rnr.RNNClassifier(hidden_size=4, epochs=1, batch_size=4).fit([x * 1e30 for x in X], y)
    assert np.isfinite(clf.scale_).all() and (clf.scale_ > 1e29).all()
    assert np.isfinite(clf.predict_proba([x * 1e30 for x in X])).all()
    fc = F(horizon=3, **TINY).fit(env.df.assign(y=env.df.y * 1e30))
    assert np.isfinite(fc.predict()["y_hat"]).all()
