"""relative_to="smoothing": per-series exponential smoothing learned with the network (ES-RNN, Smyl 2020).

The recursion is held to a plain loop over one series written from the formulas; chunks with the state carried equal
one pass; gradients reach every per-series parameter and stay finite over missing values; the forecaster saves,
loads, updates and forecasts new series with it.
"""
import math

import numpy as np
import pandas as pd
import pytest
import torch

import rnr
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.smoothing import Smoothing

from conftest import FAST


def reference(y, alpha, gammas, seasons0):
    """Holt-Winters with a level and multiplicative seasons, one series, one value at a time; NaN = unobserved.

    Returns the level after each step and the seasonal factor S_t used at each step."""
    hist = [list(s) for s in seasons0]
    level, levels, factors = None, [], []
    for v in y:
        current = [h[-len(s0)] for h, s0 in zip(hist, seasons0)]
        S = math.prod(current)
        factors.append(S)
        if np.isnan(v):
            for h, c in zip(hist, current):
                h.append(c)
            levels.append(level)
            continue
        prev = v / S if level is None else level
        level = alpha * v / S + (1 - alpha) * prev
        for h, g, c in zip(hist, gammas, current):
            h.append(g * v / (level * S / c) + (1 - g) * c)
        levels.append(level)
    return levels, factors


def smoothing_with(alpha, gammas, seasons0):
    periods = [len(s) for s in seasons0]
    sm = Smoothing(1, 1, periods).double()
    with torch.no_grad():
        sm.alpha[:] = math.log(alpha / (1 - alpha))
        for p, g in enumerate(gammas):
            sm.gamma[0, p] = math.log(g / (1 - g))
        for p, s0 in enumerate(seasons0):
            sm.seasons0[p][0, :, 0] = torch.log(torch.tensor(s0, dtype=torch.float64))
    return sm


@pytest.mark.parametrize("missing", [False, True])
def test_recursion_equals_the_formulas_written_as_a_plain_loop(missing):
    rng = np.random.default_rng(0)
    t = np.arange(60)
    y = 50 * (1 + 0.3 * np.sin(2 * np.pi * t / 6)) * (1 + 0.1 * np.sin(2 * np.pi * t / 15)) * rng.uniform(0.9, 1.1, 60)
    if missing:
        y[[0, 1, 17, 18, 40]] = np.nan
    seasons0 = [list(rng.uniform(0.7, 1.3, 6)), list(rng.uniform(0.8, 1.2, 15))]
    levels, factors = reference(y, 0.3, [0.2, 0.1], seasons0)
    sm = smoothing_with(0.3, [0.2, 0.1], seasons0)
    yt = torch.from_numpy(np.nan_to_num(y))[None, :, None]
    with torch.no_grad():
        inputs, lv, seasons, started, *_ = sm(yt, torch.tensor([0]), None)
    got_factor = (seasons[0][0, :60, 0] * seasons[1][0, :60, 0]).numpy()
    np.testing.assert_allclose(got_factor, factors, rtol=1e-12)
    ok = np.array([v is not None for v in levels])
    np.testing.assert_array_equal(started[0, :, 0].numpy(), ok)
    np.testing.assert_allclose(lv[0, ok, 0].numpy(), np.array(levels)[ok].astype(float), rtol=1e-12)
    assert torch.isfinite(inputs).all()
    assert (inputs[0, np.isnan(y)] == 0).all()  # an unobserved step reads as no news


def test_chunks_with_the_state_carried_equal_one_pass():
    torch.manual_seed(0)
    sm = Smoothing(3, 2, [4, 12]).double()
    with torch.no_grad():
        for p in sm.parameters():
            p.normal_(0, 0.3)
    y = torch.rand(3, 50, 2, dtype=torch.float64) + 0.5
    y[1, :5] = 0  # a series whose first values are missing
    rows = torch.tensor([2, 0, 1])
    whole = sm(y, rows, None)
    first = sm(y[:, :23], rows, None)
    second = sm(y[:, 23:], rows, first[-1])
    torch.testing.assert_close(torch.cat([first[0], second[0]], 1), whole[0])
    torch.testing.assert_close(torch.cat([first[1], second[1]], 1), whole[1])
    torch.testing.assert_close(second[-1], whole[-1])
    # the factors of the last step's targets equal what the final state says of the steps ahead
    _, ahead = sm.ahead(whole[-1], 20)
    torch.testing.assert_close(sm.log_factors(whole[2], 20)[:, -1].exp(), ahead)


@pytest.mark.parametrize("J", [3, 4, 5, 20])
def test_log_factors_take_the_latest_index_of_each_targets_phase(J):
    sm = Smoothing(2, 1, [4, 12]).double()
    T = 30
    seasons = [torch.rand(2, m + T, 1, dtype=torch.float64) + 0.5 for m in (4, 12)]
    got = sm.log_factors(seasons, J).exp()
    for t in range(T):
        for j in range(1, J + 1):  # the index computed at the latest step t' <= t with t' + m in t + j's phase
            want = math.prod(s[:, m + t - (m * math.ceil(j / m) - j)] for s, m in zip(seasons, (4, 12)))
            torch.testing.assert_close(got[:, t, j - 1], want)


def test_the_compiled_recursion_equals_the_reference_loop_forward_and_backward():
    def run(impl):
        torch.manual_seed(0)
        sm = Smoothing(5, 2, [3, 7], impl=impl).double()
        with torch.no_grad():
            for p in sm.parameters():
                p.normal_(0, 0.3)
        y = torch.rand(3, 40, 2, dtype=torch.float64) + 0.5
        y[0, :4] = 0  # starts late
        y[1, 10:13, 1] = 0  # a gap
        y[2, :, 0] = 0  # never observed
        out = sm(y, torch.tensor([4, 0, 2]), None, torch.tensor([40, 35, 38]))
        inputs, levels, seasons, started, wiggle, count, state = out
        weights = torch.linspace(0, 1, inputs.numel(), dtype=torch.float64).view_as(inputs)
        loss = ((inputs * weights).sum() + (levels * started).sum() + sm.log_factors(seasons, 9).sum()
                + wiggle / count + state.sum())
        loss.backward()
        return [inputs, levels, *seasons, state], {n: p.grad for n, p in sm.named_parameters()}

    ref, ref_grads = run("reference")
    got, got_grads = run("compiled")
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    for name in ref_grads:
        torch.testing.assert_close(got_grads[name], ref_grads[name], rtol=1e-10, atol=1e-12)


def test_gradients_reach_every_per_series_parameter_and_stay_finite_over_missing_values():
    torch.manual_seed(0)
    sm = Smoothing(4, 1, [3, 7]).double()
    y = torch.rand(2, 30, 1, dtype=torch.float64) + 0.5
    y[0, :4] = 0
    y[1, 10:13] = 0
    inputs, levels, seasons, started, wiggle, count, _ = sm(y, torch.tensor([1, 3]), None)
    loss = inputs.pow(2).sum() + (levels * started).sum() + sm.log_factors(seasons, 5).sum() + wiggle / count
    loss.backward()
    for name, p in sm.named_parameters():
        assert torch.isfinite(p.grad).all(), name
        assert p.grad[[1, 3]].abs().sum() > 0, name  # the batch's series learn
        assert (p.grad[[0, 2]] == 0).all(), name  # the others are untouched

    params = [p.detach().clone().requires_grad_() for p in sm.parameters()]
    assert torch.autograd.gradcheck(lambda *ps: _functional(y, *ps), params, eps=1e-6, atol=1e-5)


def _functional(y, alpha, gamma, s0, s1):
    """Smoothing's outputs as a function of its parameters (for gradcheck)."""
    sm = Smoothing(4, 1, [3, 7]).double()
    del sm.alpha, sm.gamma, sm.seasons0
    sm.alpha, sm.gamma, sm.seasons0 = alpha, gamma, [s0, s1]
    inputs, levels, seasons, started, wiggle, _, state = sm(y, torch.tensor([1, 3]), None)
    return inputs, torch.where(started, levels, 0.0), seasons[0], seasons[1], wiggle, state


def multiplicative_panel(n=4, days=30, seed=0):
    """Hourly series whose daily swing grows with their level (multiplicative), at levels 10 to 10^4."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        T = 24 * days - 24 * i
        t = np.arange(T)
        y = 10 ** (1 + i) * (1 + 0.002 * t) * (1 + 0.5 * np.sin(2 * np.pi * t / 24)) * rng.uniform(0.95, 1.05, T)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": pd.date_range("2024-01-01", periods=T, freq="h"),
                                    "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data():
    df = multiplicative_panel()
    last = df.groupby("unique_id")["ds"].transform("max")
    train, test = df[df["ds"] <= last - pd.Timedelta(hours=24)], df[df["ds"] > last - pd.Timedelta(hours=24)]
    return train, test


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    settings = {**FAST, "epochs": 30, "chunk": 128}
    return RNNForecaster(horizon=24, relative_to="smoothing", random_state=0, **settings).fit(train)


def test_the_hybrid_fits_and_forecasts_multiplicative_series_better_than_the_seasonal_naive(data, fitted):
    train, test = data
    assert fitted.chosen_["scaler"] == "meanabs" and fitted.chosen_["season"] == 24
    assert "relative_to='smoothing'" in repr(fitted)
    both = fitted.predict().merge(test, on=["unique_id", "ds"])
    assert len(both) == 4 * 24 and np.isfinite(both["y_hat"]).all()
    snaive = test.assign(y_hat=train.groupby("unique_id").tail(24)["y"].to_numpy())  # the same hour yesterday
    err = lambda f, col: (f.groupby("unique_id").apply(lambda g: np.abs(g["y"] - g[col]).mean() / g["y"].mean(),
                                                         include_groups=False)).mean()
    assert err(both, "y_hat") < err(snaive, "y_hat")


def test_the_smoothing_is_saved_and_loaded_with_the_model(fitted, tmp_path):
    rnr.save(fitted, tmp_path / "m")
    back = rnr.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(), fitted.predict())
    torch.testing.assert_close(back.net_.smoothing.alpha, fitted.net_.smoothing.alpha)


def test_update_carries_the_smoothing_forward_like_reading_the_whole_history(data, fitted):
    train, _ = data
    cut = train.groupby("unique_id")["ds"].transform("max") - pd.Timedelta(hours=10)
    early = train[train["ds"] <= cut]
    model = RNNForecaster(horizon=24, relative_to="smoothing", random_state=0, **{**FAST, "epochs": 1}).fit(early)
    whole = model.predict(df=train)  # the same network and smoothing, reading the whole history at once
    model.update(train[train["ds"] > cut])
    pd.testing.assert_frame_equal(model.predict(), whole, rtol=1e-5, atol=1e-5)
    assert model.embed().shape == (4, FAST["hidden_size"])


def test_new_series_get_the_median_smoothing_and_their_own_seasonal_start(data, fitted):
    train, _ = data
    other = train.assign(unique_id=train["unique_id"] + "-new", y=train["y"] * 3)
    new = fitted.predict(df=other)
    old = fitted.predict()
    assert np.isfinite(new["y_hat"]).all()
    ratio = new["y_hat"].to_numpy() / old["y_hat"].to_numpy()
    assert 2.0 < np.median(ratio) < 4.5  # three times the values, forecast at about three times the level


def test_smoothing_is_refused_where_it_cannot_apply(data):
    train, _ = data
    bad = train.copy()
    bad.loc[bad.index[5], "y"] = 0.0
    with pytest.raises(ValueError, match=r"every observed target must be > 0, but series 's0' has 0 at 2024-01-01 05"):
        RNNForecaster(horizon=24, relative_to="smoothing", **FAST).fit(bad)
    cases = [(dict(scaler="standard"), "scaler='standard' centres them; use scaler='auto'"),
             (dict(strategy="recursive"), "needs strategy='direct'"),
             (dict(season=None), "it needs season='auto' or a period"),
             (dict(base_input=True), "base_input=True does not apply")]
    for extra, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            RNNForecaster(horizon=24, relative_to="smoothing", **FAST, **extra).fit(train)


def test_fit_parquet_refuses_smoothing_with_a_way_out(data, tmp_path):
    train, _ = data
    train.to_parquet(tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="call fit\\(df\\), or pass relative_to='auto'"):
        RNNForecaster(horizon=24, relative_to="smoothing", **FAST).fit_parquet(tmp_path / "p.parquet")
