"""RNNForecaster, backtest and plots on small generated panels (no files from ../shared needed)."""
import numpy as np
import pandas as pd
import pytest
import torch

import rnr
from rnr.data import tasks
from rnr.forecast.backtest import backtest
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.panel import Panel

from conftest import FAST, seasonal_panel


@pytest.fixture(scope="module")
def panel():
    return seasonal_panel()


@pytest.fixture(scope="module")
def fitted(panel):
    return RNNForecaster(horizon=7, season=7, quantiles=(0.1, 0.9), **FAST).fit(panel)


def test_predict_returns_long_frame_continuing_each_series(panel, fitted):
    pred = fitted.predict()
    assert list(pred.columns) == ["unique_id", "ds", "y_hat", "y_hat_q10", "y_hat_q90"]
    assert len(pred) == 6 * 7 and np.isfinite(pred[["y_hat", "y_hat_q10", "y_hat_q90"]].to_numpy()).all()
    last = panel.groupby("unique_id")["ds"].max()
    for uid, g in pred.groupby("unique_id"):
        expected = pd.date_range(last[uid] + pd.Timedelta(days=1), periods=7, freq="D")
        assert (g["ds"].to_numpy() == expected.to_numpy()).all()
    assert len(fitted.predict(h=3)) == 6 * 3


def test_direct_strategy_cannot_forecast_past_its_horizon(fitted):
    with pytest.raises(ValueError, match=r"h must be <= horizon=7 with strategy='direct', got h=8; refit"):
        fitted.predict(h=8)


def test_recursive_strategy_rolls_out_any_length(panel):
    f = RNNForecaster(horizon=7, strategy="recursive", season=7, **FAST).fit(panel)
    assert len(f.predict(h=20)) == 6 * 20


def test_forecaster_learns_a_weekly_pattern_better_than_the_mean():
    df = seasonal_panel(n=8, length=150, ragged=False)
    test = df.groupby("unique_id").tail(7)
    train = df.drop(test.index)
    f = RNNForecaster(horizon=7, season=7, hidden_size=16, epochs=15, lr=1e-2, batch_size=8, chunk=64).fit(train)
    pred = f.predict().merge(test, on=["unique_id", "ds"])
    mae = (pred.y - pred.y_hat).abs().mean()
    level = train.groupby("unique_id").y.mean().rename("m")
    mean_mae = (pred.merge(level, left_on="unique_id", right_index=True).eval("y - m")).abs().mean()
    assert mae < 0.5 * mean_mae, (mae, mean_mae)
    assert f.history_[-1]["train_loss"] < f.history_[0]["train_loss"]


def test_per_series_scaling_makes_forecasts_scale_equivariant(panel):
    a = RNNForecaster(horizon=7, season=7, **FAST).fit(panel).predict()
    b = RNNForecaster(horizon=7, season=7, **FAST).fit(panel.assign(y=panel.y * 1000)).predict()
    np.testing.assert_allclose(b.y_hat, a.y_hat * 1000, rtol=1e-4)


@pytest.mark.parametrize("scaler", ["standard", "robust", "meanabs", None])
def test_every_scaler_fits_and_changes_the_forecast(panel, scaler):
    pred = RNNForecaster(horizon=7, scaler=scaler, **FAST).fit(panel).predict()
    assert np.isfinite(pred.y_hat).all()
    if scaler is not None:
        other = RNNForecaster(horizon=7, scaler=None, **FAST).fit(panel).predict()
        assert not np.allclose(pred.y_hat, other.y_hat)


def test_same_seed_same_forecast_other_seed_another(panel):
    a = RNNForecaster(horizon=7, random_state=3, **FAST).fit(panel).predict()
    b = RNNForecaster(horizon=7, random_state=3, **FAST).fit(panel).predict()
    c = RNNForecaster(horizon=7, random_state=4, **FAST).fit(panel).predict()
    assert a.y_hat.equals(b.y_hat) and not np.allclose(a.y_hat, c.y_hat)


def test_device_auto_trains_where_it_can_and_bad_devices_are_named(panel):
    want = "cuda" if torch.cuda.is_available() else "cpu"
    auto = RNNForecaster(horizon=7, random_state=3, device="auto", **FAST).fit(panel)
    assert next(auto.net_.parameters()).device.type == "cpu"  # forecasts run on the CPU wherever it trained
    if want == "cpu":
        cpu = RNNForecaster(horizon=7, random_state=3, **FAST).fit(panel).predict()
        assert auto.predict().y_hat.equals(cpu.y_hat)
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu0'"):
        RNNForecaster(horizon=7, device="gpu0", **FAST).fit(panel)


def test_threads_sets_the_runs_threads(panel, caplog):
    with caplog.at_level("INFO", logger="rnr.training"):
        RNNForecaster(horizon=7, threads=2, **FAST).fit(panel)
        assert "threads: 2 (threads=2, the estimator's setting)" in caplog.text
        caplog.clear()
        torch.set_num_threads(1)
        RNNForecaster(horizon=7, **FAST).fit(panel)
        assert "threads: 1 (" in caplog.text and "threads: 2" not in caplog.text


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru", "mingru", "minlstm"])
@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_update_carries_the_state_as_if_the_history_had_been_read_whole(panel, cell, strategy):
    new = panel.groupby("unique_id").tail(5)
    old = panel.drop(new.index)
    f = RNNForecaster(horizon=7, cell=cell, strategy=strategy, season=7, **FAST).fit(old)
    before = f.predict()
    f.update(new)
    after = f.predict()
    # the same network reading the whole history at once
    full = Panel.from_frame(panel)
    whole, _ = f._encode_all(f._arrays(full))
    # 1e-5: the scan of minGRU/minLSTM adds in blocks, and the compiled kernels multiply blocks of rows by BLAS,
    # whose order of sums depends on the block (an update reads a few rows, the whole history all of them)
    atol = 1e-5
    for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (f.state_, whole))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=atol)
    assert (after.ds.to_numpy() > before.ds.to_numpy()).all()
    assert not np.allclose(after.y_hat, before.y_hat)


def test_update_rejects_unknown_ids(fitted):
    new = pd.DataFrame({"unique_id": ["zz"], "ds": [pd.Timestamp("2030-01-01")], "y": [1.0]})
    with pytest.raises(ValueError, match=r"new_rows holds ids the model was not trained on: \['zz'\]"):
        fitted.update(new)


def test_embed_gives_one_row_per_series(panel, fitted):
    emb = fitted.embed()
    assert emb.shape == (6, 12) and list(emb.index) == sorted(panel.unique_id.unique())
    assert emb.to_numpy().std(0).max() > 0  # series differ


def test_future_and_static_covariates_are_read_and_required():
    df = tasks.ice_cream(n_shops=5, days=120, seed=1)
    fut = df.groupby("unique_id").tail(7)
    train = df.drop(fut.index)
    f = RNNForecaster(horizon=7, season=7, **FAST).fit(train, future=["temperature"], static=["size"])
    pred = f.predict(future_df=fut)
    hot = f.predict(future_df=fut.assign(temperature=fut.temperature + 15))
    assert not np.allclose(pred.y_hat, hot.y_hat)  # the temperature reaches the forecast
    with pytest.raises(ValueError, match=r"future_df must give the future covariates \['temperature'\]"):
        f.predict()
    with pytest.raises(ValueError, match=r"future_df must cover the next 7 steps"):
        f.predict(future_df=fut.groupby("unique_id").head(3))


def test_series_shorter_than_the_horizon_and_integer_time_are_used_as_they_are():
    df = seasonal_panel(n=3, length=40, ints=True)
    short = pd.DataFrame({"unique_id": "tiny", "ds": [1000, 1001, 1002], "y": [5.0, 6.0, 7.0]})
    df = pd.concat([df, short], ignore_index=True)
    pred = RNNForecaster(horizon=10, **FAST).fit(df).predict()
    tiny = pred[pred.unique_id == "tiny"]
    assert tiny.ds.tolist() == list(range(1003, 1013)) and np.isfinite(tiny.y_hat).all()


def test_missing_targets_raise_by_default_and_are_masked_on_request(panel):
    df = panel.copy()
    df.loc[5, "y"] = np.nan
    with pytest.raises(ValueError, match=r"s0"):
        RNNForecaster(horizon=7, **FAST).fit(df)
    f = RNNForecaster(horizon=7, **FAST).fit(df, missing="mask")
    assert np.isfinite([h["train_loss"] for h in f.history_]).all()
    assert np.isfinite(f.predict().y_hat).all()


def test_quantile_interval_covers_held_out_values():
    df = seasonal_panel(n=8, length=150, ragged=False)
    test = df.groupby("unique_id").tail(7)
    f = RNNForecaster(horizon=7, season=7, quantiles=(0.1, 0.9), hidden_size=16, epochs=15, lr=1e-2,
                      batch_size=8, chunk=64).fit(df.drop(test.index))
    pred = f.predict().merge(test, on=["unique_id", "ds"])
    inside = ((pred.y >= pred.y_hat_q10) & (pred.y <= pred.y_hat_q90)).mean()
    assert 0.5 <= inside <= 1.0 and (pred.y_hat_q90 - pred.y_hat_q10).mean() > 0
    assert rnr.metrics.coverage(pred.y, pred.y_hat_q10, pred.y_hat_q90) == pytest.approx(inside)


def test_quantiles_must_increase(panel):
    with pytest.raises(ValueError, match=r"quantiles must be distinct and increasing, got \(0.9, 0.1\)"):
        RNNForecaster(horizon=7, quantiles=(0.9, 0.1)).fit(panel)


@pytest.mark.parametrize("kwargs, match", [
    (dict(strategy="both"), r"strategy must be one of 'direct', 'recursive', got str 'both'"),
    (dict(quantiles=(0.5, 1.5)), r"quantiles must lie strictly between 0 and 1, got 1.5"),
    (dict(loss="huber"), r"loss must be one of 'mae', 'mse', got str 'huber'"),
    (dict(season=1), r"season"),
])
def test_bad_settings_are_clear_errors(panel, kwargs, match):
    with pytest.raises(ValueError, match=match):
        RNNForecaster(horizon=7, **kwargs).fit(panel)


def test_unknown_option_lists_the_known_ones():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['hiden_size'\]; known: .*'hidden_size'"):
        RNNForecaster(horizon=7, hiden_size=3)


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_save_and_load_keep_scalers_roles_and_state(tmp_path, strategy):
    df = tasks.ice_cream(n_shops=4, days=100, seed=2)
    fut = df.groupby("unique_id").tail(7)
    train = df.drop(fut.index)
    f = RNNForecaster(horizon=7, strategy=strategy, season=7, quantiles=(0.2, 0.8), scaler="robust", **FAST)
    f.fit(train, future=["temperature"], static=["size"])
    path = rnr.save(f, tmp_path / "f.safetensors")
    g = rnr.load(path)
    pd.testing.assert_frame_equal(f.predict(future_df=fut), g.predict(future_df=fut))
    pd.testing.assert_frame_equal(f.embed(), g.embed())
    assert g.get_params() == f.get_params()
    assert open(path, "rb").read(8) != b"\x80\x02"  # never a pickle


def test_saving_an_unfitted_forecaster_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"RNNForecaster is not fitted; call fit\(df\) before rnr.save"):
        rnr.save(RNNForecaster(horizon=3), tmp_path / "f.safetensors")


# ------------------------------------------------------------------------------------------------ backtest


def test_backtest_scores_every_model_on_the_same_windows(tmp_path):
    df = tasks.ice_cream(n_shops=4, days=150, seed=3)
    f = RNNForecaster(horizon=7, season=7, quantiles=(0.1, 0.9), **FAST)
    result = backtest(f, df, n_windows=2, step=7, refit=False, m=7, lags=(7, 14), future=["temperature"],
                      static=["size"])
    table = result.table()
    assert set(table.index) == {"rnr", "naive", "seasonal_naive", "naive2", "lagged_ridge"}
    assert table.loc["naive2", "owa"] == pytest.approx(1.0)
    assert 0 <= table.loc["rnr", "coverage"] <= 1 and np.isfinite(table[["mae", "smape", "mase"]]).all().all()
    counts = result.forecasts.groupby(["model", "window"]).size()
    assert counts.nunique() == 1 and len(counts) == 5 * 2  # the same windows and steps for every model
    errors = result.error_by_horizon()
    assert list(errors.index) == list(range(1, 8)) and "rnr" in errors.columns
    # the windows differ: the second is 7 steps later
    last = df.groupby("unique_id").ds.max().min()
    assert result.last_test.ds.max() == last


def test_backtest_refit_changes_the_rnn_and_not_the_baselines():
    df = seasonal_panel(n=4, length=80)
    f = RNNForecaster(horizon=7, **FAST)
    a = backtest(f, df, n_windows=2, refit=True, m=7, lags=(7,)).scores
    b = backtest(f, df, n_windows=2, refit=False, m=7, lags=(7,)).scores
    rnn = lambda s: s[(s.model == "rnr") & (s.window == 1)].smape.item()  # noqa: E731
    base = lambda s: s[s.model == "lagged_ridge"].smape.tolist()  # noqa: E731
    assert rnn(a) != rnn(b) and base(a) == base(b)


def test_backtest_rejects_missing_columns_and_other_models(panel):
    with pytest.raises(ValueError, match=r"df must have the column 'price'"):
        backtest(RNNForecaster(horizon=7), panel, future=["price"])
    with pytest.raises(TypeError, match=r"forecaster must be an RNNForecaster, got LaggedRidge"):
        backtest(rnr.forecast.baselines.LaggedRidge(), panel)


def test_plots_are_written_as_png(tmp_path, panel, fitted):
    pytest.importorskip("matplotlib")
    from rnr.forecast.plots import plot_error_by_horizon, plot_forecast, save_forecast_plots

    pred = fitted.predict()
    ax = plot_forecast(panel, pred, "s0", last=30)
    assert ax.get_title() == "s0" and len(ax.collections) == 1  # the interval band
    path = tmp_path / "f.png"
    save_forecast_plots(path, panel, pred, ["s0", "s1"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    errors = pd.DataFrame({"rnr": [1.0, 2.0], "naive": [2.0, 3.0]}, index=[1, 2])
    assert len(plot_error_by_horizon(errors).lines) == 2
    with pytest.raises(ValueError, match=r"uid 'nope' is in neither history nor forecast"):
        plot_forecast(panel, pred, "nope")


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
@pytest.mark.parametrize("relative_to, base_input", [("last", False), ("seasonal_naive", False),
                                                     ("seasonal_naive", True)])
def test_relative_forecasts_start_from_their_base_and_update_consistently(panel, strategy, relative_to, base_input):
    """With the network's output layer zeroed, the forecast is its base: naive or seasonal naive."""
    new = panel.groupby("unique_id").tail(3)
    f = RNNForecaster(horizon=7, strategy=strategy, season=7, relative_to=relative_to, base_input=base_input,
                      **FAST)
    f.fit(panel.drop(new.index)).update(new)
    with torch.no_grad():
        last = f.net_.head[-1] if strategy == "direct" else f.net_.head
        last.weight.zero_()
        last.bias.zero_()
    pred = f.predict(h=7 if strategy == "direct" else 10)
    for uid, g in panel.groupby("unique_id"):
        y = g.y.to_numpy()
        want = np.resize(y[-7:], 10)[: len(pred) // 6] if relative_to == "seasonal_naive" else np.full(10, y[-1])
        got = pred[pred.unique_id == uid].y_hat.to_numpy()
        np.testing.assert_allclose(got, want[: len(got)], rtol=1e-4)


def test_seasonal_base_needs_a_season(panel):
    with pytest.raises(ValueError, match=r"relative_to='seasonal_naive' needs the seasonal period: pass season=m"):
        RNNForecaster(horizon=7, season=None, relative_to="seasonal_naive").fit(panel)


def test_extra_seasons_add_phase_inputs_and_survive_a_round_trip(panel, tmp_path):
    f = RNNForecaster(horizon=7, season=7, extra_seasons=(14,), strategy="recursive", **FAST).fit(panel)
    assert f.net_.n_season == 4 and f.net_.rnn.input_size == 1 + 4
    g = rnr.load(rnr.save(f, tmp_path / "f.safetensors"))
    pd.testing.assert_frame_equal(f.predict(h=9), g.predict(h=9))
    with pytest.raises(ValueError, match=r"extra_seasons must be >= 2, got 1"):
        RNNForecaster(horizon=7, extra_seasons=(1,)).fit(panel)


def test_base_input_reaches_the_head_and_needs_a_base(panel, tmp_path):
    f = RNNForecaster(horizon=7, season=7, relative_to="seasonal_naive", base_input=True, **FAST).fit(panel)
    g = RNNForecaster(horizon=7, season=7, relative_to="seasonal_naive", **FAST).fit(panel)
    assert f.net_.head[0].in_features == g.net_.head[0].in_features + 7  # J * K base values
    pd.testing.assert_frame_equal(f.predict(), rnr.load(rnr.save(f, tmp_path / "f.safetensors")).predict())
    with pytest.raises(ValueError, match=r"base_input=True feeds the head the base it corrects, so it needs"):
        RNNForecaster(horizon=7, relative_to=None, base_input=True).fit(panel)


def test_several_targets_are_forecast_together(panel):
    df = panel.assign(y2=panel.y * 2 + 1)
    pred = RNNForecaster(horizon=3, **FAST).fit(df, target=["y", "y2"]).predict()
    assert list(pred.columns) == ["unique_id", "ds", "target", "y_hat"]
    assert sorted(pred.target.unique()) == ["y", "y2"] and len(pred) == 2 * 6 * 3
    means = pred.groupby("target").y_hat.mean()
    assert means["y2"] > means["y"]  # each target back on its own scale


def test_predict_forecasts_series_the_model_never_saw_from_their_history(panel):
    """A global model: fitted on some series, it forecasts others from their own history, nothing refit."""
    seen = panel[panel["unique_id"].isin(["s0", "s1", "s2"])]
    f = RNNForecaster(horizon=7, season=7, **FAST).fit(seen)
    new = panel[panel["unique_id"].isin(["s4", "s5"])]
    out = f.predict(df=new)
    assert sorted(out["unique_id"].unique()) == ["s4", "s5"] and len(out) == 2 * 7
    last = new.groupby("unique_id")["ds"].max()
    assert (out.groupby("unique_id")["ds"].min() == last + pd.Timedelta(days=1)).all()
    assert f.predict()["unique_id"].unique().tolist() == ["s0", "s1", "s2"]  # the fitted model is unchanged
    again = f.predict(df=seen)  # the fitted series read again from their history: the same forecasts
    pd.testing.assert_frame_equal(again.reset_index(drop=True), f.predict().reset_index(drop=True), rtol=1e-5)
    same = rnr.load(rnr.save(f, "/dev/shm/rnr-new-series.safetensors")).predict(df=new)
    pd.testing.assert_frame_equal(same, out)


def test_new_series_with_static_categories_map_to_the_training_categories():
    df = tasks.ice_cream(n_shops=6, days=60)
    f = RNNForecaster(horizon=5, **{**FAST, "epochs": 1}).fit(df[df["unique_id"] != "shop_05"], static=["size"])
    out = f.predict(df=df[df["unique_id"] == "shop_05"][["unique_id", "ds", "y", "size"]])
    assert out["unique_id"].unique().tolist() == ["shop_05"]
    odd = df[df["unique_id"] == "shop_05"].assign(size="huge")
    with pytest.raises(ValueError, match=r"static column 'size' holds \['huge'\], which the training data never "
                                         r"had; known: \['large', 'small'\]"):
        f.predict(df=odd)


def test_an_ensemble_averages_networks_trained_from_consecutive_seeds(panel, tmp_path):
    f = RNNForecaster(horizon=7, season=7, ensemble=2, random_state=3, quantiles=(0.1, 0.9), **FAST).fit(panel)
    # each seed's networks: one relative to smoothing (the forecaster itself for seed 3), one to the seasonal naive
    assert [(m.random_state, m.config.relative_to) for m in f.members_] == [
        (3, "seasonal_naive"), (4, "smoothing"), (4, "seasonal_naive")]
    a = RNNForecaster(horizon=7, season=7, random_state=3, quantiles=(0.1, 0.9), **FAST).fit(panel).predict()
    b = RNNForecaster(horizon=7, season=7, random_state=4, quantiles=(0.1, 0.9), **FAST).fit(panel).predict()
    got = f.predict()
    for col in ("y_hat", "y_hat_q10", "y_hat_q90"):
        np.testing.assert_allclose(got[col], (a[col] + b[col]) / 2, rtol=1e-5)
    loaded = rnr.load(rnr.save(f, tmp_path / "ens.safetensors"))
    pd.testing.assert_frame_equal(loaded.predict(), got)
    new = panel[panel["unique_id"] == "s0"]
    assert len(f.predict(df=new)) == 7
    tail = panel.groupby("unique_id").tail(3)  # update() carries every member forward: still the average
    options = dict(horizon=7, season=7, quantiles=(0.1, 0.9), **FAST)
    f = RNNForecaster(ensemble=2, random_state=3, **options).fit(panel.drop(tail.index)).update(tail)
    a = RNNForecaster(random_state=3, **options).fit(panel.drop(tail.index)).update(tail).predict()
    b = RNNForecaster(random_state=4, **options).fit(panel.drop(tail.index)).update(tail).predict()
    np.testing.assert_allclose(f.predict()["y_hat"], (a["y_hat"] + b["y_hat"]) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="ensemble must be an int >= 1, got int 0; the default is ensemble=1"):
        RNNForecaster(horizon=7, ensemble=0).fit(panel)


def test_ctrl_c_in_a_later_network_of_an_ensemble_keeps_the_complete_ones_and_says_so(panel, monkeypatch):
    import signal

    from rnr.training.logs import graceful_stop
    original = RNNForecaster._train

    def train(self, parts):  # a Ctrl-C arrives while the second network (random_state 4) trains
        if self.random_state == 4:
            signal.raise_signal(signal.SIGINT)
        return original(self, parts)

    monkeypatch.setattr(RNNForecaster, "_train", train)
    with graceful_stop():
        f = RNNForecaster(horizon=7, season=7, ensemble=3, random_state=3, **FAST).fit(panel)
    # networks: (3, smoothing), (3, seasonal naive), then (4, smoothing) is stopped and left out, half trained
    assert f.interrupted_ and f.stopped_member_ == 2 and [m.random_state for m in f.members_] == [3]
    alone = RNNForecaster(horizon=7, season=7, random_state=3, **FAST).fit(panel)
    pd.testing.assert_frame_equal(f.predict(), alone.predict())


def test_a_dilated_encoder_forecasts_updates_and_round_trips(panel, tmp_path):
    f = RNNForecaster(horizon=7, season=7, num_layers=2, dilation=(1, 7), **FAST).fit(panel)
    assert f.net_.rnn.dilation == (1, 7)
    state = f.state_ if not isinstance(f.state_, tuple) else f.state_[0]
    assert state.shape[0] == 1 + 7  # one slot for the first layer, seven for the second
    before = f.predict()
    loaded = rnr.load(rnr.save(f, tmp_path / "dilated.safetensors"))
    pd.testing.assert_frame_equal(loaded.predict(), before)
    pd.testing.assert_frame_equal(f.predict(df=panel).reset_index(drop=True), before.reset_index(drop=True), rtol=1e-5)
    with pytest.raises(ValueError, match="dilation"):
        RNNForecaster(horizon=7, num_layers=2, dilation=(1, 0)).fit(panel)


def test_snapshots_average_the_forecasts_of_the_last_epochs(panel, tmp_path):
    options = dict(horizon=7, season=7, relative_to="seasonal_naive", **{**FAST, "epochs": 3})
    f = RNNForecaster(snapshots=2, **options).fit(panel)
    assert len(f.members_) == 1 and f.members_[0].random_state == f.random_state
    final = RNNForecaster(**options).fit(panel)  # the same run without snapshots: its final weights
    got, last = f.predict()["y_hat"].to_numpy(), final.predict()["y_hat"].to_numpy()
    snap = f.members_[0]._predict_one(None, None)["y_hat"].to_numpy()
    np.testing.assert_allclose(got, (last + snap) / 2, rtol=1e-5)
    assert not np.allclose(snap, last)  # the snapshot holds the weights after epoch 2 of the same run
    loaded = rnr.load(rnr.save(f, tmp_path / "snap.safetensors"))
    pd.testing.assert_frame_equal(loaded.predict(), f.predict())
    g = RNNForecaster(snapshots=2, ensemble=2, random_state=5, **options).fit(panel)
    seeds = sorted(m.random_state for m in g.members_)
    assert seeds == [5, 6]  # the first network's snapshot and the second network (which has its own snapshot)
    a = RNNForecaster(snapshots=2, random_state=5, **options).fit(panel).predict()["y_hat"].to_numpy()
    b = RNNForecaster(snapshots=2, random_state=6, **options).fit(panel).predict()["y_hat"].to_numpy()
    np.testing.assert_allclose(g.predict()["y_hat"], (a + b) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="snapshots must be an int >= 1, got int 0; the default is snapshots=1"):
        RNNForecaster(horizon=7, snapshots=0).fit(panel)
