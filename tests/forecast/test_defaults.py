"""What the forecaster chooses from the data (rnr.forecast.defaults): seasons from the frequency, the seasonal
naive base, training length in updates; every choice visible, and explicit arguments always win."""
import json

import numpy as np
import pandas as pd
import pytest

import rnr
from rnr.__main__ import main
from rnr.forecast import defaults
from rnr.forecast.defaults import choose, describe, epochs_for, seasonal_periods
from rnr.forecast.forecaster import RNNForecaster

from conftest import FAST, seasonal_panel


@pytest.mark.parametrize("freq, periods", [
    ("h", (24, 168)), ("2h", (12, 84)), ("30min", (48, 336)), ("D", (7,)), ("B", (5,)), ("W-SUN", (52,)),
    ("MS", (12,)), ("ME", (12,)), ("QS", (4,)), ("QE-DEC", (4,)), ("YS", ()), ("YE", ()), (1, ()), (None, ()),
])
def test_seasonal_periods_follow_the_frequency(freq, periods):
    assert seasonal_periods(freq) == periods


AUTO = dict(season="auto", extra_seasons=(), relative_to="auto")


def test_a_period_is_kept_only_where_the_series_show_it_twice():
    assert choose(AUTO, "h", np.array([900, 700])) == {"freq": "h", "season": 24, "extra_seasons": (168,),
                                                       "relative_to": "seasonal_naive"}
    assert choose(AUTO, "h", np.array([100, 200])) == {"freq": "h", "season": 24, "extra_seasons": (),
                                                       "relative_to": "seasonal_naive"}
    assert choose(AUTO, "h", np.array([40])) == {"freq": "h", "season": None, "extra_seasons": (),
                                                 "relative_to": None}
    assert choose(AUTO, 1, np.array([500])) == {"freq": 1, "season": None, "extra_seasons": (), "relative_to": None}


def test_explicit_arguments_win():
    assert choose({**AUTO, "season": None}, "h", np.array([900])) == {"freq": "h", "relative_to": None}
    assert choose({**AUTO, "season": 12}, "h", np.array([900])) == {"freq": "h", "relative_to": "seasonal_naive"}
    assert choose({**AUTO, "extra_seasons": (10,)}, "h", np.array([900])) == {"freq": "h", "season": 24,
                                                                              "relative_to": "seasonal_naive"}
    assert choose({**AUTO, "relative_to": "last"}, "h", np.array([900])) == {"freq": "h", "season": 24,
                                                                             "extra_seasons": (168,)}


def test_positive_seasonal_data_gets_two_networks_relative_to_smoothing_and_to_the_seasonal_naive():
    both = {"freq": "D", "season": 7, "extra_seasons": (), "relative_to": "smoothing",
            "bases": ("smoothing", "seasonal_naive"), "scaler": "meanabs"}
    auto = {**AUTO, "scaler": "auto", "strategy": "direct", "base_input": False}
    assert choose(auto, "D", np.array([100]), positive=True) == both
    naive = {"freq": "D", "season": 7, "extra_seasons": (), "relative_to": "seasonal_naive", "scaler": "standard"}
    assert choose(auto, "D", np.array([100]), positive=False) == naive  # smoothing is multiplicative
    assert choose({**auto, "strategy": "recursive"}, "D", np.array([100]), positive=True) == naive
    assert choose({**auto, "scaler": "standard"}, "D", np.array([100]), positive=True) == {
        k: v for k, v in naive.items() if k != "scaler"}  # an explicit scaler that centres the values wins
    assert choose(auto, "D", np.array([10]), positive=True) == {"freq": "D", "season": None, "extra_seasons": (),
                                                                 "relative_to": None, "scaler": "standard"}


def test_training_length_counts_updates_with_a_minimum_a_short_series_also_gets():
    assert epochs_for(1) == defaults.MIN_UPDATES  # one update a pass: as many passes as the minimum of updates
    assert epochs_for(10_000) == defaults.MIN_EPOCHS
    one = seasonal_panel(n=1, length=60, ragged=False)
    f = RNNForecaster(horizon=7, hidden_size=4, head_size=4).fit(one)
    assert f.chosen_["epochs"] == defaults.MIN_UPDATES == len(f.history_) and f.chosen_["updates"] == len(f.history_)
    assert "epochs" not in RNNForecaster(horizon=7, **FAST).fit(one).chosen_  # explicit epochs win


def test_the_choices_are_visible_and_saved(tmp_path):
    panel = seasonal_panel(n=3, length=60)
    panel["y"] -= 12  # values below zero: no smoothing, one network
    f = RNNForecaster(horizon=7, **FAST).fit(panel)
    assert f.chosen_ == {"freq": "D", "season": 7, "extra_seasons": (), "relative_to": "seasonal_naive",
                         "scaler": "standard", "updates": f.chosen_["updates"]}
    assert f.get_params()["season"] == "auto"  # the argument stays as given: clone and refit choose again
    assert repr(f).endswith("; chose freq='D', season=7, extra_seasons=(), relative_to='seasonal_naive', "
                            "scaler='standard')")
    assert describe(f.chosen_) == "freq 'D'; seasons 7; relative to seasonal_naive; scaler standard"
    g = RNNForecaster(horizon=7, **FAST).fit(seasonal_panel(n=3, length=60))  # positive: two networks
    assert g.chosen_["bases"] == ("smoothing", "seasonal_naive") and g.chosen_["relative_to"] == "smoothing"
    assert [m.config.relative_to for m in g.members_] == ["seasonal_naive"]
    assert describe(g.chosen_) == ("freq 'D'; seasons 7; relative to smoothing; averaged with a network relative to "
                                   "seasonal_naive; scaler meanabs")
    averaged = (g._predict_one(None, None)["y_hat"] + g.members_[0].predict()["y_hat"]) / 2
    np.testing.assert_allclose(g.predict()["y_hat"], averaged, rtol=1e-6)
    back = rnr.load(rnr.save(g, tmp_path / "g.safetensors"))
    assert back.chosen_ == g.chosen_
    pd.testing.assert_frame_equal(back.predict(), g.predict())
    loaded = rnr.load(rnr.save(f, tmp_path / "f.safetensors"))
    assert loaded.chosen_ == f.chosen_ and repr(loaded) == repr(f)
    pd.testing.assert_frame_equal(loaded.predict(), f.predict())
    off = RNNForecaster(horizon=7, season=None, **FAST).fit(panel)
    assert off.chosen_["relative_to"] is None and "season" not in off.chosen_ and off.net_.n_season == 0


def test_rnr_fit_forecast_prints_and_records_what_it_chose(tmp_path, capsys):
    seasonal_panel(n=2, length=60).to_csv(tmp_path / "s.csv", index=False)
    assert main(["fit", "forecast", "--data", str(tmp_path / "s.csv"), "--horizon", "7", "--set", "model.epochs=1",
                 "--set", "model.hidden_size=4", "--out", str(tmp_path / "m")]) == 0
    line = capsys.readouterr().out
    assert "chose freq='D', season=7, extra_seasons=(), relative_to='smoothing', bases=('smoothing', " in line
    info = json.loads((tmp_path / "m" / "info.json").read_text())
    assert info["chosen"]["season"] == 7 and info["chosen"]["bases"] == ["smoothing", "seasonal_naive"]
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "chosen: {'freq': 'D', 'season': 7" in capsys.readouterr().out
    assert main(["fit", "forecast", "--data", str(tmp_path / "s.csv"), "--horizon", "7", "--set", "model.epochs=1",
                 "--set", "model.hidden_size=4", "--set", "model.season=5", "--out", str(tmp_path / "m5")]) == 0
    assert "season=5" in capsys.readouterr().out


@pytest.mark.parametrize("season, match", [
    ("weekly", r"season must be 'auto' \(from the data's frequency\), None \(no season\) or a whole number of "
               r"steps >= 2 \(e.g. 24 for the daily cycle of hourly data\), got 'weekly'"),
    (1, r"or a whole number of steps >= 2 .*got 1"),
])
def test_a_bad_season_is_refused(season, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RNNForecaster(horizon=3, season=season).fit(seasonal_panel(n=1, length=30))


@pytest.mark.parametrize("shift, base", [(0.0, "smoothing"), (-20.0, "seasonal_naive")])
def test_the_defaults_cope_with_short_series_gaps_masked_values_and_covariates(shift, base):
    """Series shorter than the season and than the horizon, a masked value and a covariate, all with the defaults,
    positive (smoothing and the seasonal naive) or not (the seasonal naive alone)."""
    panel = seasonal_panel(n=4, length=60)
    short = pd.DataFrame({"unique_id": "tiny", "ds": pd.date_range("2024-01-01", periods=5, freq="D"),
                          "y": [3.0, 4.0, np.nan, 5.0, 4.5]})  # 5 steps: shorter than a week and than the horizon
    df = pd.concat([panel, short], ignore_index=True)
    df["y"] += shift
    df["price"] = np.sin(np.arange(len(df)))  # a covariate known only up to now
    f = RNNForecaster(horizon=10, hidden_size=4, head_size=4, epochs=2).fit(df, past=["price"], missing="mask")
    assert f.chosen_["season"] == 7 and f.chosen_["relative_to"] == base
    out = f.predict()
    assert len(out) == 5 * 10 and np.isfinite(out["y_hat"]).all()
    assert out[out["unique_id"] == "tiny"]["ds"].min() == pd.Timestamp("2024-01-06")
