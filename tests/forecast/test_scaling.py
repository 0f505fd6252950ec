"""Scaler and CovariateScaler: loc/scale by hand per kind, training rows only, masks, identity round trips, state."""
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load, save

from rnr.forecast.panel import Panel
from rnr.forecast.scaling import CovariateScaler, Scaler

NAN = np.nan


def panel(values: dict, missing="error", **cols) -> Panel:
    """A daily panel from {id: list of y}; extra columns as {name: list over all rows}."""
    rows = [(k, t, v) for k, vs in values.items() for t, v in zip(pd.date_range("2020-01-01", periods=len(vs)), vs)]
    df = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
    for k, v in cols.items():
        df[k] = v
    return Panel.from_frame(df, missing=missing, past=[k for k in cols if k.startswith("p")],
                            future=[k for k in cols if k.startswith("f")], freq="D")


A = [1.0, 2.0, 4.0, 8.0, 100.0]
B = [-3.0, 5.0, 6.0]


@pytest.mark.parametrize("kind, loc, scale", [
    ("standard", lambda v: np.mean(v), lambda v: np.std(v)),
    ("robust", lambda v: np.median(v), lambda v: np.subtract(*np.percentile(v, [75, 25])) / 1.349),
    ("meanabs", lambda v: 0.0, lambda v: np.mean(np.abs(v))),
    (None, lambda v: 0.0, lambda v: 1.0),
])
def test_each_kind_against_numpy(kind, loc, scale):
    sc = Scaler(kind).fit(panel({"a": A, "b": B}))
    np.testing.assert_allclose(sc.loc_[:, 0], [loc(A), loc(B)], rtol=1e-12)
    np.testing.assert_allclose(sc.scale_[:, 0], [scale(A), scale(B)], rtol=1e-12)


def test_several_targets_are_scaled_separately():
    df = pd.DataFrame({"unique_id": "a", "ds": [0, 1, 2], "y": [1.0, 2.0, 3.0], "z": [10.0, 30.0, 50.0]})
    sc = Scaler().fit(Panel.from_frame(df, target=["y", "z"]))
    np.testing.assert_allclose(sc.loc_, [[2.0, 30.0]])
    np.testing.assert_allclose(sc.scale_, [[np.std([1, 2, 3]), np.std([10, 30, 50])]])


def test_fit_uses_training_rows_only():
    p = panel({"a": A, "b": B})
    sc = Scaler("robust").fit(p, until="2020-01-02")
    np.testing.assert_allclose(sc.loc_[:, 0], [1.5, 1.0])
    changed = panel({"a": A[:2] + [-50.0, 7.0, 9.0], "b": B[:2] + [1e6]})
    again = Scaler("robust").fit(changed, until=pd.Timestamp("2020-01-02"))
    np.testing.assert_array_equal(again.loc_, sc.loc_)
    np.testing.assert_array_equal(again.scale_, sc.scale_)
    train, _ = p.split_last(1)
    np.testing.assert_allclose(Scaler().fit(train).loc_[:, 0], [np.mean(A[:-1]), np.mean(B[:-1])])


def test_masked_values_are_ignored():
    p = panel({"a": [1.0, NAN, 3.0, NAN], "b": [NAN, 2.0]}, missing="mask")
    assert p.y[:, 0].tolist() == [1, 0, 3, 0, 0, 2]  # stored as 0, which must not count
    sc = Scaler().fit(p)
    np.testing.assert_allclose(sc.loc_[:, 0], [2.0, 2.0])
    np.testing.assert_allclose(sc.scale_[:, 0], [1.0, 2.0])  # b: one observed value -> its level
    scaled = sc.transform_panel(p)
    assert scaled.y[:, 0].tolist() == [-1, 0, 1, 0, 0, 0] and p.y[0, 0] == 1.0  # the original is untouched


def test_constant_series_and_single_points_are_scaled_by_their_level():
    p = panel({"flat": [5.0, 5.0, 5.0], "one": [7.0], "ok": [1.0, 3.0], "tenth": [0.1] * 3, "zero": [0.0] * 2})
    with pytest.warns(UserWarning, match=re.escape("Scaler('standard'): 3 series have no spread in their training "
                                                   "targets ('flat', 'tenth', 'zero'); each is scaled by its level (1 "
                                                   "where the level is 0)")):
        sc = Scaler().fit(p)
    np.testing.assert_allclose(sc.loc_[:, 0], [5.0, 7.0, 2.0, 0.1, 0.0], rtol=1e-7)
    np.testing.assert_allclose(sc.scale_[:, 0], [5.0, 7.0, 1.0, 0.1, 1.0], rtol=1e-7)  # 0.1: its std is exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a single point is not suspicious
        Scaler("meanabs").fit(panel({"one": [7.0], "ok": [1.0, 3.0]}))
    sc = Scaler().fit(p, until="2019-12-31")  # no training rows at all
    assert sc.loc_.tolist() == [[0.0]] * 5 and sc.scale_.tolist() == [[1.0]] * 5


@st.composite
def panels(draw):
    n = draw(st.lists(st.integers(1, 12), min_size=1, max_size=6))
    level = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    values = {f"s{i}": [draw(level) for _ in range(k)] for i, k in enumerate(n)}
    return panel(values), draw(st.sampled_from(["standard", "robust", "meanabs", None]))


@settings(max_examples=25, deadline=None)
@given(panels())
def test_scaling_then_unscaling_is_the_identity(case):
    p, kind = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant series warn
        sc = Scaler(kind).fit(p)
    sid = p.series_index()
    z = sc.transform(p.y, sid)
    assert z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(sc.inverse(z, sid), p.y, rtol=1e-5, atol=1e-5 * np.abs(p.y).max() + 1e-6)


def test_transform_broadcasts_over_quantile_axes():
    sc = Scaler().fit(panel({"a": A, "b": B}))
    z = np.zeros((2, 3, 1))  # (N, Q, K)
    np.testing.assert_allclose(sc.inverse(z, np.array([1, 0]))[:, :, 0], [[np.mean(B)] * 3, [np.mean(A)] * 3],
                               rtol=1e-6)


def test_argument_errors():
    sc = Scaler()
    with pytest.raises(ValueError, match=re.escape("Scaler() is not fitted; call fit(panel) first")):
        sc.transform(np.zeros((1, 1)), np.zeros(1, int))
    with pytest.raises(ValueError, match=re.escape("kind must be one of ['standard', 'robust', 'meanabs', None], "
                                                   "got 'minmax'")):
        Scaler("minmax").fit(panel({"a": A}))
    with pytest.raises(TypeError, match=re.escape("panel must be an rnr.forecast.panel.Panel, got DataFrame")):
        sc.fit(pd.DataFrame())
    sc.fit(panel({"a": A, "b": B}))
    with pytest.raises(ValueError, match=re.escape("y must have shape (N, ..., K) with K=1 targets in its last axis, "
                                                   "got (3,); reshape a single target to (N, 1)")):
        sc.transform(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match=re.escape("series_index must lie in [0, 2) (the fitted series), got values "
                                                   "from 0 to 2")):
        sc.transform(np.zeros((2, 1)), np.array([0, 2]))
    with pytest.raises(ValueError, match=re.escape("series_index must be (N,) ints with N=2")):
        sc.transform(np.zeros((2, 1)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match=re.escape("until must be an int like the panel's integer times, got str")):
        sc.fit(Panel.from_frame(pd.DataFrame({"unique_id": 1, "ds": [0, 1], "y": [1.0, 2.0]})), until="2020")


def test_state_round_trip_through_safetensors_and_json():
    sc = Scaler("robust").fit(panel({"a": A, "b": B}))
    state = sc.to_state()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    back = Scaler.from_state({**load(save(arrays)), **meta})
    assert back.kind == "robust"
    np.testing.assert_array_equal(back.loc_, sc.loc_)
    np.testing.assert_array_equal(back.scale_, sc.scale_)
    assert Scaler.from_state(Scaler(None).fit(panel({"a": A})).to_state()).kind is None
    with pytest.raises(ValueError, match=re.escape("state must hold ['kind', 'loc', 'scale'], but lacks ['scale']")):
        Scaler.from_state({"kind": "standard", "loc": np.zeros((1, 1))})


def test_covariate_scaler_is_global_and_fitted_on_training_rows():
    p = panel({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0]}, p_temp=[1.0, 2, 3, 4, 100], f_price=[2.0, 2, 2, 2, 2])
    cs = CovariateScaler().fit(p, until="2020-01-02")  # the first two rows of each series
    train = np.array([1.0, 2, 4, 100])
    np.testing.assert_allclose(cs.past_loc_, [train.mean()])
    np.testing.assert_allclose(cs.past_scale_, [train.std()])
    assert cs.future_loc_.tolist() == [2.0] and cs.future_scale_.tolist() == [1.0]  # constant: scale 1
    past, fut = cs.transform(p.past, p.future)
    np.testing.assert_allclose(past[:, 0], (p.past[:, 0] - train.mean()) / train.std(), rtol=1e-6)
    assert fut.dtype == np.float32 and fut[:, 0].tolist() == [0.0] * 5
    back_past, _ = cs.inverse(past, fut)
    np.testing.assert_allclose(back_past, p.past, atol=1e-5)
    again = CovariateScaler.from_state(cs.to_state())
    np.testing.assert_array_equal(again.transform(p.past, p.future)[0], past)
    with pytest.raises(ValueError, match=re.escape("future must have its 1 covariates in the last axis, got shape "
                                                   "(5, 2)")):
        cs.transform(p.past, np.zeros((5, 2)))


def test_a_spread_below_float32_resolution_counts_as_none():
    """Quartiles 1e-38 apart would scale the value 5 past float32's range; such a series gets scale 1 and a warning."""
    p = panel({"a": [-1e-38, 0.0, 0.0, 1e-38, 5.0], "b": [1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.warns(UserWarning, match=r"1 series have no spread .*'a'"):
        sc = Scaler("robust").fit(p)
    z = sc.transform(p.y, p.series_index())
    assert np.isfinite(z).all() and sc.scale_[0, 0] == 1.0 and sc.scale_[1, 0] != 1.0
