"""rnr.metrics against hand-computed values and plain reference loops; every input error pinned by its message."""
import math

import numpy as np
import pytest

from rnr.metrics import coverage, evaluate_panel, mae, mase, owa, pinball, rmse, smape


def smape_loop(y, f):
    """The M4 formula, one step at a time (0/0 counted as 0)."""
    terms = [0.0 if abs(a) + abs(b) == 0 else 200 * abs(a - b) / (abs(a) + abs(b)) for a, b in zip(y, f)]
    return sum(terms) / len(terms)


def test_point_errors_by_hand():
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    assert isinstance(mae([1.0], [1.0]), float)


def test_smape_by_hand_and_zero_over_zero():
    assert smape([100.0, 0.0], [110.0, 0.0]) == pytest.approx(200 * 10 / 210 / 2)
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert smape([1.0], [-1.0]) == pytest.approx(200.0)  # the maximum
    rng = np.random.default_rng(0)
    y, f = rng.normal(size=50), rng.normal(size=50)
    assert smape(y, f) == pytest.approx(smape_loop(y, f), rel=1e-12)


def test_mase_by_hand():
    # mae = 1; seasonal differences of [1, 2, 4, 7]: m=1 -> 1, 2, 3 (mean 2); m=2 -> 3, 5 (mean 4)
    assert mase([3, 5], [4, 4], [1, 2, 4, 7], m=1) == pytest.approx(0.5)
    assert mase([3, 5], [4, 4], [1, 2, 4, 7], m=2) == pytest.approx(0.25)


def test_owa_coverage_pinball_by_hand():
    assert owa(10.0, 1.0, 20.0, 2.0) == pytest.approx(0.5)
    assert owa(18.383, 2.395, 18.383, 2.395) == pytest.approx(1.0)
    # inside: 1 in [0, 2], 2 in [2, 2] (bounds count); 3 not in [4, 5], 4 not in [0, 3]
    assert coverage([1, 2, 3, 4], [0, 2, 4, 0], [2, 2, 5, 3]) == pytest.approx(0.5)
    # e = 1 -> 0.9 * 1; e = -1 -> (0.9 - 1) * -1 = 0.1
    assert pinball([1, 1], [0, 2], 0.9) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    y, f = rng.normal(size=20), rng.normal(size=20)
    assert pinball(y, f, 0.5) == pytest.approx(mae(y, f) / 2)


def test_evaluate_panel_is_the_mean_of_per_series_scores():
    rng = np.random.default_rng(2)
    ins = [rng.uniform(1, 10, size=n) for n in (30, 41, 25)]
    act = [rng.uniform(1, 10, size=6) for _ in ins]
    fc = [a + rng.normal(size=6) for a in act]
    got = evaluate_panel(act, fc, ins, m=4)
    assert set(got) == {"smape", "mase", "mae", "rmse"}
    assert got["smape"] == pytest.approx(np.mean([smape_loop(a, f) for a, f in zip(act, fc)]))
    assert got["mase"] == pytest.approx(np.mean([mase(a, f, x, 4) for a, f, x in zip(act, fc, ins)]))
    assert got["mae"] == pytest.approx(np.mean([mae(a, f) for a, f in zip(act, fc)]))
    assert got["rmse"] == pytest.approx(np.mean([rmse(a, f) for a, f in zip(act, fc)]))
    # a 2-D array of equal-length series works too
    assert evaluate_panel(np.stack(act), np.stack(fc), ins, m=4) == got
    # each series weighs the same whatever its horizon: the mean of means, not the pooled mean (which is 3.0)
    short = evaluate_panel([[1.0], [0.0, 0.0, 0.0]], [[0.0], [4.0, 4.0, 4.0]], [[0.0, 1.0]] * 2, m=1)
    assert short["mae"] == pytest.approx((1.0 + 4.0) / 2)


def test_evaluate_panel_by_hand():
    assert evaluate_panel([[2.0, 2.0]], [[1.0, 3.0]], [[0.0, 1.0, 2.0]], m=1) == pytest.approx(
        {"smape": 200 * (1 / 3 + 1 / 5) / 2, "mase": 1.0, "mae": 1.0, "rmse": 1.0})


@pytest.mark.parametrize("call, exc, match", [
    (lambda: mae([1, 2], [1, 2, 3]), ValueError, r"f must have the shape of y, got \(3,\) and \(2,\)"),
    (lambda: mae([1, np.nan], [1, 2]), ValueError, r"y must be finite, got nan at index 1"),
    (lambda: mae([[1, 2]], [[1, 2]]), ValueError, r"y must be 1-dimensional .* evaluate_panel"),
    (lambda: mae([], []), ValueError, r"y must hold at least one value"),
    (lambda: mae(["a"], [1]), TypeError, r"y must be a numeric array"),
    (lambda: mase([1], [1], [1, 2], m=2), ValueError, r"insample must have at least m \+ 1 = 3 values .* got 2"),
    (lambda: mase([1], [1], [5, 5, 5], m=1), ValueError, r"insample has mean absolute seasonal difference 0"),
    (lambda: mase([1], [1], [1, 2, 3], m=0), ValueError, r"m must be >= 1"),
    (lambda: mase([1], [1], [1, 2, 3], m=1.0), TypeError, r"m must be an int"),
    (lambda: owa(1.0, 1.0, 0.0, 1.0), ValueError, r"naive2_smape must be > 0"),
    (lambda: owa(-1.0, 1.0, 1.0, 1.0), ValueError, r"smape_value must be finite and >= 0, got -1.0"),
    (lambda: owa("1", 1.0, 1.0, 1.0), TypeError, r"smape_value must be a number"),
    (lambda: coverage([1, 2], [0, 3], [1, 2]), ValueError, r"lo must be <= hi .* lo=3.0 > hi=2.0 at index 1"),
    (lambda: coverage([1, 2], [0, 1], [1]), ValueError, r"hi must have the shape of y"),
    (lambda: pinball([1], [1], 1.0), ValueError, r"q must be in \(0, 1\)"),
    (lambda: pinball([1], [1], "0.5"), TypeError, r"q must be a float"),
    (lambda: evaluate_panel([[1.0]], [[1.0], [2.0]], [[1.0, 2.0]], 1), ValueError,
     r"forecasts must hold one array per series like actuals \(1\), got 2"),
    (lambda: evaluate_panel([[1.0], [1.0]], [[1.0], [1.0, 2.0]], [[1.0, 2.0]] * 2, 1), ValueError,
     r"forecasts\[1\] must have the shape of actuals\[1\]"),
    (lambda: evaluate_panel([[1.0]], [[1.0]], [[1.0]], 1), ValueError, r"insamples\[0\] must have at least m \+ 1"),
    (lambda: evaluate_panel([], [], [], 1), ValueError, r"actuals must hold at least one series"),
    (lambda: evaluate_panel("abc", "abc", "abc", 1), TypeError, r"actuals must be a list of arrays"),
])
def test_errors_name_the_argument_and_the_rule(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
