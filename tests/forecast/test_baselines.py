"""rnr.baselines and rnr.datasets: exact forecasts on constructed series, reference loops for the Naive2 pieces,
AR recovery for LaggedRidge, one conformance check for every baseline, and the official M4 Hourly scores.

The M4 test needs ../shared/data/m4 (or $RNR_DATA/m4) and skips with the reason where it is absent.
"""
import numpy as np
import pandas as pd
import pytest

from rnr.data.datasets import data_dir, load_m4
from rnr.forecast.baselines import LaggedRidge, Naive, Naive2, SeasonalNaive, seasonal_indices, seasonality_test
from rnr.metrics import evaluate_panel, mae

# every baseline, built for a short season; a new baseline adds one line here
CONFORMANCE = [Naive(), SeasonalNaive(3), Naive2(3), LaggedRidge(lags=3), LaggedRidge(lags=[2, 3], m=3),
               LaggedRidge(lags=3, horizon_strategy="direct")]


def ar2(n, a1, a2, rng, sd=1.0, burn=200):
    """A zero-mean AR(2) path y_t = a1 y_{t-1} + a2 y_{t-2} + sd e_t, after a burn-in."""
    y = np.zeros(n + burn)
    e = sd * rng.standard_normal(n + burn)
    for t in range(2, n + burn):
        y[t] = a1 * y[t - 1] + a2 * y[t - 2] + e[t]
    return y[burn:]


@pytest.mark.parametrize("model", CONFORMANCE, ids=repr)
def test_conformance(model):
    rng = np.random.default_rng(0)
    hist = [rng.uniform(5, 10, size=n) for n in (12, 20, 15)]
    copies = [h.copy() for h in hist]
    with pytest.raises(ValueError, match=r"not fitted; call fit\(histories\) before predict\(h\)"):
        type(model)(**model.get_params()).predict(4)
    kw = {"horizon": 4} if getattr(model, "horizon_strategy", "") == "direct" else {}
    assert model.fit(hist, **kw) is model
    out = model.predict(4)
    assert isinstance(out, list) and len(out) == 3 and all(o.shape == (4,) and np.isfinite(o).all() for o in out)
    assert all(np.array_equal(h, c) for h, c in zip(hist, copies)), "fit must not change its input"
    assert type(model)(**model.get_params()).get_params() == model.get_params()  # __init__ only stores
    assert not any(k.endswith("_") for k in vars(type(model)(**model.get_params())))
    with pytest.raises(ValueError, match=r"h must be >= 1, got 0"):
        model.predict(0)
    with pytest.raises(ValueError, match=r"histories\[1\] must be finite, got nan at index 2"):
        model.fit([hist[0], np.r_[1.0, 2.0, np.nan, 4.0]], **kw)
    with pytest.raises(TypeError, match=r"histories must be a list of 1-D arrays .* wrap a single series as \[y\]"):
        model.fit(hist[0], **kw)


def test_repr_shows_only_non_defaults():
    assert repr(Naive()) == "Naive()"
    assert repr(SeasonalNaive(24)) == "SeasonalNaive(m=24)"
    assert repr(LaggedRidge(alpha=2.0)) == "LaggedRidge(alpha=2.0)"


def test_naive_and_seasonal_naive_exact():
    y = np.array([1.0, 5.0, 2.0, 3.0, 4.0, 6.0, 7.0])
    assert np.array_equal(Naive().fit([y]).predict(3)[0], [7.0, 7.0, 7.0])
    # last season (m=3) is [4, 6, 7]; seven steps tile it from its start
    assert np.array_equal(SeasonalNaive(3).fit([y]).predict(7)[0], [4, 6, 7, 4, 6, 7, 4])
    with pytest.raises(ValueError, match=r"histories\[0\] must have at least m=8 values .* use Naive"):
        SeasonalNaive(8).fit([y])


def seasonality_reference(y, m):
    """The M4 rule written out: |r_m| > 1.645 sqrt((1 + 2 sum_{k=1}^{m-1} r_k^2) / n), only when n >= 3m."""
    if m == 1 or len(y) < 3 * m:
        return False
    d = y - y.mean()
    r = [np.sum(d[k:] * d[: len(d) - k]) / np.sum(d * d) for k in range(m + 1)]  # r[0] = 1
    return abs(r[m]) > 1.645 * np.sqrt((1 + 2 * sum(r[k] ** 2 for k in range(1, m))) / len(y))


def test_seasonality_test_against_the_formula():
    rng = np.random.default_rng(0)
    t = np.arange(60)
    # weak seasonality and autocorrelated noise, so that the decision goes both ways near the limit
    cases = [10 + a * np.sin(2 * np.pi * t / 6) + np.convolve(rng.standard_normal(62), [1, 0.8, 0.5], "valid")
             for a in np.linspace(0, 1.2, 120)]
    got = [seasonality_test(y, 6) for y in cases]
    assert got == [seasonality_reference(y, 6) for y in cases]
    assert 10 < sum(got) < 110
    assert not seasonality_test(cases[-1][:17], 6)  # shorter than 3m: never seasonal
    assert not seasonality_test(cases[-1], 1)


def test_seasonal_indices_against_a_pandas_reference():
    rng = np.random.default_rng(1)
    for m in (4, 5):  # even: 2 x m moving average; odd: plain m
        t = np.arange(10 * m + 3)
        y = (50 + 0.3 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / m)) + rng.standard_normal(t.size)
        s = pd.Series(y)
        trend = s.rolling(m, center=True).mean() if m % 2 else s.rolling(m).mean().rolling(2).mean().shift(-m // 2)
        ratio = s / trend
        ref = ratio.groupby(t % m).mean().to_numpy()
        np.testing.assert_allclose(seasonal_indices(y, m), ref / ref.mean(), rtol=1e-12)


def test_naive2_recovers_a_pure_multiplicative_pattern():
    m, pattern = 7, np.array([0.5, 0.8, 1.0, 1.2, 1.5, 1.1, 0.9])
    y = 40.0 * np.resize(pattern, 10 * m + 3)  # ends mid-season
    model = Naive2(m).fit([y])
    assert model.seasonal_[0]
    np.testing.assert_allclose(model.indices_[0], pattern / pattern.mean(), rtol=1e-12)
    np.testing.assert_allclose(model.predict(12)[0], 40.0 * np.resize(np.roll(pattern, -3), 12), rtol=1e-12)


def test_naive2_is_naive_without_seasonality_or_history():
    rng = np.random.default_rng(2)
    flat = 100 + rng.standard_normal(300)
    short = 40.0 * np.resize([0.5, 1.5, 1.0, 1.0], 11)  # strongly seasonal but n = 11 < 3m = 12
    model = Naive2(4).fit([flat, short])
    assert not model.seasonal_.any()
    for got, want in zip(model.predict(5), Naive().fit([flat, short]).predict(5)):
        np.testing.assert_array_equal(got, want)
    assert np.array_equal(Naive2(1).fit([short]).predict(3)[0], Naive().fit([short]).predict(3)[0])


def test_lagged_ridge_recovers_ar2_coefficients():
    rng = np.random.default_rng(0)
    ys = [ar2(2000, 0.6, -0.3, rng) for _ in range(20)]
    model = LaggedRidge(lags=5, alpha=1e-6).fit(ys)
    np.testing.assert_allclose(model.coef_[:2], [0.6, -0.3], atol=0.02)
    np.testing.assert_allclose(model.coef_[2:], 0.0, atol=0.02)  # the extra lags are not used
    assert abs(model.intercept_) < 0.02
    assert model.n_dropped_ == 20 * 5 and model.n_rows_ == 20 * (2000 - 5)


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_lagged_ridge_forecasts_noiseless_ar2(strategy):
    # a sinusoid obeys y_t = 2 cos(w) y_{t-1} - y_{t-2} exactly
    w, t = 2 * np.pi / 11, np.arange(260)
    paths = [a * np.sin(w * t + p) for a, p in [(1.0, 0.0), (3.0, 1.0), (0.5, 2.0)]]
    model = LaggedRidge(lags=2, alpha=1e-9, horizon_strategy=strategy).fit([p[:200] for p in paths], horizon=60)
    coef = model.coef_ if strategy == "recursive" else model.coef_[:, 0]
    np.testing.assert_allclose(coef, [2 * np.cos(w), -1.0], atol=1e-6)
    for got, p in zip(model.predict(60), paths):
        np.testing.assert_allclose(got, p[200:], atol=1e-4 * np.abs(p).max())
    if strategy == "direct":
        assert model.coef_.shape == (2, 60)
        with pytest.raises(ValueError, match=r"h must be <= the fitted horizon 60 .* fit with horizon=61"):
            model.predict(61)


def test_lag_selection_picks_the_period():
    rng = np.random.default_rng(0)  # 7 is chosen for each of seeds 0..39; with seed 0 L = 14 scores a bit lower
    # seasonal random walks of period 7: y_t = y_{t-7} + e_t, so 7 lags hold all there is to know
    ys = [np.resize(100 + 10 * rng.standard_normal(7), 406) + rng.standard_normal((58, 7)).cumsum(0).ravel()
          for _ in range(20)]
    model = LaggedRidge(lags=(3, 7, 14)).fit(ys, val_horizon=14)
    assert model.chosen_lags_ == 7
    assert set(model.val_scores_) == {3, 7, 14}
    assert model.val_scores_[3] > 5 * model.val_scores_[7]
    assert model.val_scores_[14] < model.val_scores_[7]  # plain argmin would take 14: the 1-SE rule keeps 7
    assert LaggedRidge(lags=(3, 7, 14)).fit(ys).chosen_lags_ == 3  # without val_horizon: the first candidate


def test_lagged_ridge_is_scale_equivariant():
    rng = np.random.default_rng(3)
    ys = [ar2(300, 0.5, 0.2, rng) + 20 for _ in range(4)]
    scales = [1.0, 10.0, 0.01, 3.0]
    base = LaggedRidge(lags=6).fit(ys)
    scaled = LaggedRidge(lags=6).fit([c * y for c, y in zip(scales, ys)])
    np.testing.assert_allclose(scaled.coef_, base.coef_, rtol=1e-9)
    for c, a, b in zip(scales, base.predict(5), scaled.predict(5)):
        np.testing.assert_allclose(b, c * a, rtol=1e-9)


def test_lagged_ridge_parameters_have_effects():
    rng = np.random.default_rng(4)
    ys = [ar2(400, 0.6, -0.3, rng) + 10 for _ in range(5)]
    weak, strong = LaggedRidge(lags=4, alpha=1e-6).fit(ys), LaggedRidge(lags=4, alpha=1e5).fit(ys)
    assert np.abs(strong.coef_).sum() < 0.1 * np.abs(weak.coef_).sum()
    capped = LaggedRidge(lags=4, max_rows=300).fit(ys)
    assert capped.n_rows_ == 300 and weak.n_rows_ == 5 * (400 - 4)
    same = LaggedRidge(lags=4, max_rows=300).fit(ys)
    other = LaggedRidge(lags=4, max_rows=300, random_state=1).fit(ys)
    assert np.array_equal(capped.coef_, same.coef_) and not np.allclose(capped.coef_, other.coef_)
    # short series fall back: seasonal naive with m, naive without
    short = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    for m, want in [(3, [1.0, 2.0, 3.0, 1.0]), (None, [3.0] * 4)]:
        model = LaggedRidge(lags=10, m=m).fit(ys + [short])
        assert model.fallback_.tolist() == [5]
        np.testing.assert_array_equal(model.predict(4)[5], want)
        assert model.n_dropped_ == 5 * 10 + 6


def test_lagged_ridge_covariates():
    rng = np.random.default_rng(5)
    xs = [rng.integers(0, 2, size=330).astype(float) for _ in range(6)]  # a known 0/1 driver
    ys = [10 + 5 * x + 0.1 * rng.standard_normal(x.size) for x in xs]
    train, past, future = [y[:300] for y in ys], [x[:300] for x in xs], [x[300:] for x in xs]
    with_cov = LaggedRidge(lags=24, covariates=True).fit(train, past=past)
    without = LaggedRidge(lags=24).fit(train)
    err_with = np.mean([mae(y[300:], f) for y, f in zip(ys, with_cov.predict(30, future=future))])
    err_without = np.mean([mae(y[300:], f) for y, f in zip(ys, without.predict(30))])
    assert err_with < 0.2 * err_without
    direct = LaggedRidge(lags=24, covariates=True, horizon_strategy="direct").fit(train, past=past, horizon=30)
    err_direct = np.mean([mae(y[300:], f) for y, f in zip(ys, direct.predict(30, future=future))])
    assert err_direct < 0.2 * err_without
    with pytest.raises(ValueError, match=r"past was given but covariates=False; build LaggedRidge\(covariates=True\)"):
        LaggedRidge(lags=3).fit(train, past=past)
    with pytest.raises(ValueError, match=r"future must be given when covariates=True"):
        with_cov.predict(30)
    with pytest.raises(ValueError, match=r"future\[0\] must have shape \(>= 30, K\), got \(29, 1\)"):
        with_cov.predict(30, future=[f[:29] for f in future])


@pytest.mark.parametrize("kwargs, fit_kw, exc, match", [
    ({"horizon_strategy": "mimo"}, {}, ValueError, r"horizon_strategy must be 'recursive' or 'direct', got 'mimo'"),
    ({"horizon_strategy": "direct"}, {}, ValueError, r"horizon must be given to fit when horizon_strategy='direct'"),
    ({"alpha": -1.0}, {}, ValueError, r"alpha must be >= 0 \(0 is least squares\), got -1.0"),
    ({"lags": []}, {}, ValueError, r"lags must be an int or a non-empty list of ints"),
    ({"lags": [0, 2]}, {}, ValueError, r"lags must be >= 1, got 0"),
    ({"lags": [2, 3]}, {"val_horizon": 50}, ValueError, r"val_horizon=50 leaves no series .* use a smaller val_horizon"),
    ({"covariates": True}, {}, ValueError, r"past must be given when covariates=True"),
    ({"lags": 25}, {}, ValueError, r"lags=25 leaves no training window: every series needs at least L \+ H = 26"),
])
def test_lagged_ridge_errors(kwargs, fit_kw, exc, match):
    with pytest.raises(exc, match=match):
        LaggedRidge(**kwargs).fit([np.arange(1.0, 21.0)], **fit_kw)


def test_load_m4_reads_padded_rows(tmp_path, monkeypatch):
    m4 = tmp_path / "m4"
    m4.mkdir()
    (m4 / "Hourly-train.csv").write_text('"V1","V2","V3","V4"\n"H1","1","2","3"\n"H2","4","5",\n')
    (m4 / "Hourly-test.csv").write_text('"V1","V2","V3"\n"H1","7","8"\n"H2","9","10"\n')
    monkeypatch.setenv("RNR_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    train, test, ids = load_m4("Hourly")
    assert ids == ["H1", "H2"]
    assert [t.tolist() for t in train] == [[1.0, 2.0, 3.0], [4.0, 5.0]]
    assert [t.tolist() for t in test] == [[7.0, 8.0], [9.0, 10.0]]
    with pytest.raises(FileNotFoundError, match=r"Daily-train.csv not found"):
        load_m4("Daily")
    with pytest.raises(ValueError, match=r"subset must be one of"):
        load_m4("Secondly")
    monkeypatch.setenv("RNR_DATA", str(tmp_path / "absent"))
    assert data_dir() is None and load_m4() is None


def _m4_or_skip():
    root = data_dir()
    if root is None or not (root / "m4" / "Hourly-train.csv").is_file():
        pytest.skip("M4 Hourly data absent: set RNR_DATA or place it at ../shared/data/m4 (see its PROVENANCE.md)")
    return load_m4("Hourly")


def test_m4_hourly_official_scores():
    """Seasonal naive and Naive2 reproduce the organisers' Hourly scores to the 3 decimals they published."""
    train, test, ids = _m4_or_skip()
    assert len(train) == 414 and all(t.size == 48 for t in test)
    for model, smape_ref, mase_ref in [(SeasonalNaive(24), 13.912, 1.193), (Naive2(24), 18.383, 2.395),
                                       (Naive(), 43.003, 11.608)]:
        got = evaluate_panel(test, model.fit(train).predict(48), train, m=24)
        assert round(got["smape"], 3) == smape_ref, f"{model}: sMAPE {got['smape']:.4f}"
        assert round(got["mase"], 3) == mase_ref, f"{model}: MASE {got['mase']:.4f}"
