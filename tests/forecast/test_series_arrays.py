"""SeriesArrays scales the rows of each batch from the panel's own arrays: the same numbers as the scaled copies of
the whole panel it replaces (``ScaledCopy``, the old path, kept here as the reference)."""
import numpy as np
import pandas as pd
import pytest
import torch

from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.net import SeriesArrays, base_back, season_features
from rnr.forecast.panel import Panel, time_index
from rnr.forecast.scaling import CovariateScaler, Scaler

from conftest import FAST


class ScaledCopy(SeriesArrays):
    """The reference: scaled copies of the whole panel (``Scaler.transform``, ``CovariateScaler.transform``), an
    observed mask of every row, the time index of every row, and batches gathered series by series in Python (a
    subclass only so that training takes it for a panel's arrays; it shares no code)."""

    def __init__(self, panel, scaler, cov_scaler):
        sidx = np.repeat(np.arange(len(panel)), panel.lengths())
        self.y = np.nan_to_num(scaler.transform(panel.y, sidx)).astype(np.float32)
        self.past, self.future = cov_scaler.transform(panel.past, panel.future)
        self.observed = panel.observed if panel.observed is not None else np.ones_like(panel.y, dtype=bool)
        self.tix = time_index(panel)
        n_cat = len(panel.static_categories)
        self.static_num = panel.static[:, : panel.static.shape[1] - n_cat].astype(np.float32)
        self.static_cat = panel.static[:, panel.static.shape[1] - n_cat :].astype(np.int64)
        self.offsets = panel.offsets

    @property
    def y_rows(self):
        return self.y

    def lengths(self):
        return np.diff(self.offsets)

    def tindex(self, rows):
        return self.tix[rows]

    def scaled_past(self, rows):
        return self.past[rows]

    def batch(self, series, J, season, back=None, phases=False):
        lens = self.lengths()[series]
        B, T = len(series), int(lens.max())
        K, P, F = self.y.shape[1], self.past.shape[1], self.future.shape[1]
        y = np.zeros((B, T + J, K), np.float32)
        obs = np.zeros((B, T + J, K), bool)
        past = np.zeros((B, T, P), np.float32)
        fut = np.zeros((B, T + J, F), np.float32)
        tix = np.zeros((B, T + J), np.int64)
        for b, s in enumerate(series):
            lo, hi = self.offsets[s], self.offsets[s + 1]
            n = hi - lo
            y[b, :n], obs[b, :n], past[b, :n], fut[b, :n] = self.y[lo:hi], self.observed[lo:hi], self.past[lo:hi], \
                self.future[lo:hi]
            step = self.tix[hi - 1] - self.tix[hi - 2] if n > 1 else 1
            tix[b, :n] = self.tix[lo:hi]
            tix[b, n:] = self.tix[hi - 1] + step * np.arange(1, T + J - n + 1)
        y, obs, fut, tix = map(torch.from_numpy, (y, obs, fut, tix))
        seas = season_features(tix, season)
        x = torch.cat([y[:, :T] * obs[:, :T], torch.from_numpy(past), fut[:, :T], seas[:, :T]], dim=-1)
        ahead = fut[:, 1:] if phases else torch.cat([fut, seas], dim=-1)[:, 1:]  # phases: seasons by table
        known = ahead.unfold(1, J, 1)[:, :T].transpose(2, 3).reshape(B, T, -1)
        target = y[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3)
        mask = obs[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3)
        lengths = torch.from_numpy(lens.astype(np.int64))
        inside = torch.arange(T)[None, :, None] + torch.arange(1, J + 1)[None, None, :] < lengths[:, None, None]
        mask = mask & inside[..., None]
        static_num = torch.from_numpy(self.static_num[series])
        static_cat = torch.from_numpy(self.static_cat[series])
        if back is None:
            base = torch.zeros_like(target)
        else:
            idx = (np.arange(T)[:, None] + np.arange(1, J + 1)[None] - back[None]).clip(0)
            base = y[:, torch.from_numpy(idx)]
        if phases:
            return x, static_num, static_cat, lengths, known, target, mask, base, tix[:, :T]
        return x, static_num, static_cat, lengths, known, target, mask, base


def frame(freq="D", n=7, seed=0, nan=True):
    """n series of ragged lengths (1 to 60 steps), two targets on very different levels, a past and two future
    covariates, a numeric and a categorical static; some target values missing."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n):
        m = 1 if s == 3 else int(rng.integers(2, 60))
        t = (pd.date_range("2021-01-31", periods=m, freq=freq) if freq != 3 else np.arange(5, 5 + 3 * m, 3))
        parts.append(pd.DataFrame({
            "unique_id": f"s{s}", "ds": t, "y": (10.0 ** s) * (1 + rng.random(m)), "z": rng.normal(-5, 2, m),
            "visits": rng.normal(100, 30, m), "price": rng.random(m), "holiday": (rng.random(m) < 0.2) * 1.0,
            "size": float(s), "kind": "ab"[s % 2]}))
    df = pd.concat(parts, ignore_index=True)
    if nan:
        df.loc[rng.random(len(df)) < 0.1, "y"] = np.nan
    return df


def panel_of(df, freq=None):
    return Panel.from_frame(df, target=["y", "z"], past=["visits"], future=["price", "holiday"],
                            static=["size", "kind"], missing="mask", freq=freq)


@pytest.mark.parametrize("freq", ["D", "MS", 3])  # 3: integer times, 3 apart
@pytest.mark.parametrize("kind", ["standard", "robust", "meanabs", None])
def test_batches_scaled_in_place_equal_the_batches_of_scaled_copies(freq, kind):
    panel = panel_of(frame(freq), freq=freq if freq == 3 else None)
    f = RNNForecaster(horizon=3)
    f.scaler_, f.cov_scaler_ = Scaler(kind).fit(panel), CovariateScaler().fit(panel)
    new, old = f._arrays(panel), ScaledCopy(panel, f.scaler_, f.cov_scaler_)
    assert new.y is panel.y and new.past is panel.past and new.future is panel.future  # no copies
    for series in (np.arange(len(panel)), np.array([3]), np.array([5, 0, 3, 1])):
        for J, season, back in ((3, (7,), base_back(3, 7, "seasonal_naive")), (1, (), None), (4, (2, 5), None),
                                (3, (4,), base_back(3, 4, "last")), (5, (2,), base_back(5, 2, "seasonal_naive"))):
            for phases in (False, True):
                mine, ref = new.batch(series, J, season, back, phases), old.batch(series, J, season, back, phases)
                assert len(mine) == len(ref) == 8 + phases
                for a, b in zip(mine, ref):
                    assert a.dtype == b.dtype and a.shape == b.shape
                    assert torch.equal(a, b)
    rows = np.array([0, 5, len(panel.y) - 1, 17])
    assert np.array_equal(new.scaled_past(rows), old.scaled_past(rows))
    assert np.array_equal(new.tindex(rows), old.tindex(rows))
    assert np.array_equal(new.y_rows[rows], old.y_rows[rows])
    for s in range(len(panel)):
        lo, hi = panel.offsets[s], panel.offsets[s + 1]
        assert np.array_equal(new.y_rows[lo:hi], old.y_rows[lo:hi])


def test_fits_from_scaled_batches_equal_fits_from_scaled_copies(monkeypatch):
    df = frame(nan=False)
    df["y"] = df["y"].abs() + 1  # positive: "auto" trains smoothing and seasonal naive networks
    df = df[df.groupby("unique_id").ds.transform("size") > 20]
    args = dict(target=["y"], past=["visits"], future=["price", "holiday"], static=["size", "kind"])
    rng = np.random.default_rng(1)
    ends = df.groupby("unique_id").ds.max()
    ahead = pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(end, periods=21, freq="D")[1:],
                                     "y": 1 + rng.random(20), "visits": rng.normal(100, 30, 20),
                                     "price": rng.random(20), "holiday": 0.0}) for uid, end in ends.items()])
    new_rows = ahead.groupby("unique_id").head(3)
    some = df[df.unique_id.isin(["s0", "s5"])]

    def run():
        f = RNNForecaster(horizon=7, season=7, quantiles=(0.1, 0.9), snapshots=2, **{**FAST, "epochs": 2})
        f.fit(df, **args)
        first = f.predict(future_df=ahead)
        f.update(new_rows)
        return first, f.predict(future_df=ahead), f.predict(df=some, future_df=ahead)

    new = run()

    def old_arrays(self, panel, scaler=None, rows=None, static=None):
        scaler = scaler or self.scaler_
        if rows is not None:
            scaler = Scaler.from_state({**scaler.to_state(), "loc": scaler.loc_[rows], "scale": scaler.scale_[rows]})
        out = ScaledCopy(panel, scaler, self.cov_scaler_)
        if static is not None:
            out.static_num, out.static_cat = static
        return out

    monkeypatch.setattr(RNNForecaster, "_arrays", old_arrays)
    old = run()
    for a, b in zip(new, old):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_value_scaled_beyond_float32_is_refused_at_fit_as_by_transform():
    y = np.array([1.0, 1.0, 1.0, 1.0, 1.0001, 1e36], np.float32)
    panel = Panel.from_frame(pd.DataFrame({"unique_id": "a", "ds": np.arange(len(y)), "y": y}), freq=1)
    sc = Scaler("robust").fit(panel)
    with pytest.raises(ValueError) as by_transform:
        sc.transform(panel.y, panel.series_index())
    with pytest.raises(ValueError) as by_range:
        sc.check_range(panel)
    assert str(by_range.value) == str(by_transform.value)
    with pytest.raises(ValueError, match=r"puts values of series \[0\] .* scales from their centre, beyond float32"):
        RNNForecaster(horizon=1, scaler="robust", season=None, **FAST).fit(
            pd.DataFrame({"unique_id": "a", "ds": np.arange(len(y)), "y": y}), freq=1)
