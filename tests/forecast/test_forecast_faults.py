"""The forecaster's training through numerical faults: a NaN loss stops it with the weights from before the bad
update and the checkpoints intact, or skips the batch when asked; clipped updates are counted."""
import numpy as np
import pytest
import torch

from rnr.forecast import training as forecast_train
from rnr.forecast.forecaster import RNNForecaster
from rnr.training import checkpoint

from conftest import FAST, seasonal_panel

OPTIONS = dict(horizon=7, season=7, **{**FAST, "epochs": 2, "batch_size": 4, "chunk": 32})


@pytest.fixture(scope="module")
def panel():
    return seasonal_panel(n=12, length=90)


def nan_loss_at(monkeypatch, call: int, snapshots: list):
    """The quantile loss returns NaN at its ``call``-th use, after noting the weights at that moment."""
    original, count = forecast_train.quantile_loss, [0]

    def loss(pred, *args):
        count[0] += 1
        value = original(pred, *args)
        if count[0] == call:
            net = snapshots[0]
            snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            return value * float("nan")
        return value

    monkeypatch.setattr(forecast_train, "quantile_loss", loss)


def test_a_nan_loss_stops_training_naming_where_with_the_weights_from_before(panel, tmp_path, monkeypatch):
    f = RNNForecaster(**OPTIONS, checkpoint_dir=str(tmp_path))
    snapshots = []
    original_build = f._build

    def build(p, arrays=None):
        original_build(p, arrays)
        snapshots.append(f.net_)

    monkeypatch.setattr(f, "_build", build)
    nan_loss_at(monkeypatch, 13, snapshots)  # 3 batches of 1 to 3 chunks, 7 updates an epoch: in epoch 2
    with pytest.raises(FloatingPointError, match=r"the loss became nan at epoch 2, batch \d of the epoch "
                                                 r"\(optimizer step 13\); the model keeps its weights from before "
                                                 r"this update"):
        f.fit(panel)
    before = snapshots[1]
    assert all(torch.equal(v, before[k]) for k, v in f.net_.state_dict().items())
    found = checkpoint.latest(tmp_path)
    assert found is not None and found[1]["epoch"] == 1  # the checkpoint of epoch 1, whole


def test_skip_leaves_out_the_bad_batch_and_counts_it(panel, monkeypatch):
    snapshots = [torch.nn.Linear(1, 1)]
    nan_loss_at(monkeypatch, 4, snapshots)
    with pytest.warns(UserWarning, match=r"epoch 1: skipped 1 of 3 batches whose loss or gradient was not finite"):
        f = RNNForecaster(**OPTIONS, on_nonfinite="skip").fit(panel)
    assert [r["skipped"] for r in f.history_] == [1, 0]
    assert all(torch.isfinite(p).all() for p in f.net_.parameters())
    assert torch.isfinite(torch.tensor(f.predict().y_hat.to_numpy())).all()


def test_clipped_updates_are_counted(panel):
    tight = RNNForecaster(**OPTIONS, clip_grad_norm=1e-6).fit(panel)
    loose = RNNForecaster(**OPTIONS, clip_grad_norm=1e6).fit(panel)
    updates = tight.history_[0]["updates"]
    assert updates > 3 and [r["clipped"] for r in tight.history_] == [updates, updates]  # every update
    assert [r["clipped"] for r in loose.history_] == [0, 0]


def test_on_nonfinite_is_checked(panel):
    with pytest.raises(ValueError, match=r"on_nonfinite must be one of 'error', 'skip', got str 'ignore'"):
        RNNForecaster(horizon=7, on_nonfinite="ignore").fit(panel)


def test_a_time_budget_stops_the_forecaster_inside_an_epoch(panel):
    f = RNNForecaster(**{**OPTIONS, "epochs": 50}, max_minutes=1e-6).fit(panel)
    assert len(f.history_) == 1 and f.history_[0]["steps"] == 1  # the budget ran out in the first batch
    assert len(f.predict()) == len(f.panel_info_["ids"]) * OPTIONS["horizon"]
    with pytest.raises(ValueError, match="max_minutes must be a finite number > 0 or None, got int 0"):
        RNNForecaster(**OPTIONS, max_minutes=0).fit(panel)


@pytest.mark.parametrize("level", [1e-30, 1.0, 1e30])
def test_a_constant_series_is_forecast_at_its_level_whatever_its_scale(level):
    """A series of one value (tiny, ordinary or huge) beside an ordinary one: its forecasts stay at its level."""
    df = seasonal_panel(n=2, length=60)
    df.loc[df["unique_id"] == "s0", "y"] = level
    with pytest.warns(UserWarning, match="1 series have no spread"):
        f = RNNForecaster(**OPTIONS).fit(df)
    got = f.predict().query("unique_id == 's0'")["y_hat"].to_numpy()
    np.testing.assert_allclose(got, level, rtol=0.5)  # within half its level: a 1e-30 series is not forecast at 0.05
