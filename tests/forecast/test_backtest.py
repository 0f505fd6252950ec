"""Backtests with series that break a metric, and the lagged baseline kept within a sane range."""
import numpy as np
import pandas as pd
import pytest

from rnr.forecast.backtest import backtest
from rnr.forecast.forecaster import RNNForecaster


def test_a_series_without_a_mase_scale_is_named_before_fitting_and_left_out_of_mase():
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"unique_id": "moving", "ds": np.arange(40), "y": 10 + rng.normal(size=40).cumsum()}),
              pd.DataFrame({"unique_id": "flat", "ds": np.arange(40), "y": 5.0})]
    df = pd.concat(frames, ignore_index=True)
    forecaster = RNNForecaster(horizon=3, hidden_size=4, epochs=1, progress=False)
    with pytest.warns(UserWarning, match=r"MASE is undefined for 1 series .*: flat; their MASE is left out"):
        result = backtest(forecaster, df, n_windows=2, m=1, lags=(2,))
    assert np.isfinite(result.scores["mase"]).all() and np.isfinite(result.scores["smape"]).all()
    moving = backtest(forecaster, df[df.unique_id == "moving"], n_windows=2, m=1, lags=(2,))
    rnr_rows = result.scores[result.scores.model == "naive"]
    assert np.allclose(rnr_rows["mase"], moving.scores[moving.scores.model == "naive"]["mase"])  # moving alone


def test_the_lagged_ridge_stays_within_a_sane_range_and_picks_its_penalty():
    from rnr.forecast.baselines import LaggedRidge

    y = np.r_[np.zeros(30), 100.0, np.zeros(9)] + np.arange(40) * 0.01  # a spike: least squares explodes
    ridge = LaggedRidge(lags=(3, 6), alpha=(0.0, 1.0, 100.0), clip=True).fit([y], val_horizon=5)
    assert ridge.chosen_alpha_ in (0.0, 1.0, 100.0) and ridge.chosen_lags_ in (3, 6)
    lo, hi = ridge.bounds_[0]
    assert lo == 0 and hi == y.max() + (y.max() - y.min())
    f = ridge.predict(50)[0]
    assert f.min() >= lo and f.max() <= hi
    free = LaggedRidge(lags=6, alpha=0.0, clip=False).fit([y]).predict(50)[0]
    assert free.max() > hi or free.min() < lo or np.allclose(f, free)  # the clip acts only where needed
