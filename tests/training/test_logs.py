"""Metrics logs (CSV, TensorBoard), a graceful Ctrl-C, and the forecaster's checkpoints and resume."""
import csv
import signal
import sys
import types

import pytest
import torch

import rnr
from rnr.data import tasks
from rnr.forecast.forecaster import RNNForecaster
from rnr.training.core import TrainingCore
from rnr.training.logs import MetricsLog, graceful_stop, stop_requested

from conftest import FAST, seasonal_panel


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_log_rewrites_a_whole_csv_with_every_column(tmp_path):
    log = MetricsLog(tmp_path / "run", tensorboard=False)
    log.write({"epoch": 1, "train_loss": 0.5})
    log.write({"epoch": 2, "train_loss": 0.4, "val_loss": 0.45})
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0]["val_loss"] == "" and rows[1]["val_loss"] == "0.45"
    assert not (tmp_path / "run" / "metrics.csv.tmp").exists()


def test_metrics_log_writes_scalars_to_tensorboard_when_installed(tmp_path, monkeypatch):
    written = []

    class Writer:
        def __init__(self, folder):
            self.folder = folder

        def add_scalar(self, key, value, step):
            written.append((key, value, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    log = MetricsLog(tmp_path, rows=[{"epoch": 1, "train_loss": 1.0}])
    log.write({"epoch": 2, "train_loss": 0.5, "lr": 1e-3, "note": "text", "bad": float("nan")})
    assert written == [("train_loss", 0.5, 2), ("lr", 1e-3, 2)]
    assert len(read_csv(tmp_path / "metrics.csv")) == 2  # the resumed run's earlier row is kept


def test_tensorboard_true_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        MetricsLog(tmp_path, tensorboard=True)
    assert MetricsLog(tmp_path).writer is None  # auto: quietly CSV only


def test_graceful_stop_turns_the_first_ctrl_c_into_a_request_and_the_second_into_an_interrupt():
    before = signal.getsignal(signal.SIGINT)
    with graceful_stop():
        assert not stop_requested()
        signal.raise_signal(signal.SIGINT)
        assert stop_requested()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before and not stop_requested()


def interrupt_after(monkeypatch, cls, method, calls):
    """Make ``cls.method`` raise SIGINT during its ``calls``-th call, as a user's Ctrl-C would."""
    original, count = getattr(cls, method), [0]

    def wrapped(self, *args, **kwargs):
        count[0] += 1
        if count[0] == calls:
            signal.raise_signal(signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapped)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_stops_after_a_ctrl_c_with_a_checkpoint_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X, Y = tasks.ragged_sums(96, seed=3)
    settings = dict(epochs=3, batch_size=16, progress=False, seed=1)
    full = rnr.ManyToOne(1, 1, hidden_size=8)
    torch.manual_seed(0)
    reference = rnr.ManyToOne(1, 1, hidden_size=8)
    reference.load_state_dict(full.state_dict())
    rnr.fit(reference, (X, Y), **settings)
    from rnr.training.core import TrainingCore

    interrupt_after(monkeypatch, TrainingCore, "_batch", 8)
    model = rnr.ManyToOne(1, 1, hidden_size=8)
    model.load_state_dict(full.state_dict())
    with graceful_stop():
        history = rnr.fit(model, (X, Y), checkpoint_dir=str(tmp_path), log_dir=str(tmp_path / "log"), **settings)
    assert history.interrupted and len(history) == 1  # 6 batches an epoch: stopped in the second
    assert rnr.training.checkpoint.files(tmp_path)
    monkeypatch.undo()
    resumed = rnr.ManyToOne(1, 1, hidden_size=8)
    history = rnr.fit(resumed, (X, Y), checkpoint_dir=str(tmp_path), resume=True, log_dir=str(tmp_path / "log"),
                      **settings)
    assert len(history) == 3 and not history.interrupted
    assert same_weights(resumed, reference)
    assert [r["epoch"] for r in read_csv(tmp_path / "log" / "metrics.csv")] == ["1", "2", "3"]


@pytest.fixture(scope="module")
def panel():
    return seasonal_panel(n=12, length=90)


def test_forecaster_resume_after_a_ctrl_c_matches_the_uninterrupted_run(panel, tmp_path, monkeypatch):
    options = dict(horizon=7, season=7, **{**FAST, "epochs": 3, "batch_size": 4, "chunk": 32})
    reference = RNNForecaster(**options).fit(panel)
    interrupt_after(monkeypatch, TrainingCore, "_batch", 5)  # 3 batches an epoch: inside the second
    with graceful_stop():
        stopped = RNNForecaster(**options, checkpoint_dir=str(tmp_path / "ckpt"), log_dir=str(tmp_path)).fit(panel)
    assert stopped.interrupted_ and len(stopped.history_) == 1
    assert len(stopped.predict()) == 12 * 7  # what was trained so far forecasts
    monkeypatch.undo()
    resumed = RNNForecaster(**options, checkpoint_dir=str(tmp_path / "ckpt"), resume=True,
                            log_dir=str(tmp_path)).fit(panel)
    assert not resumed.interrupted_ and [r["epoch"] for r in resumed.history_] == [1, 2, 3]
    assert same_weights(resumed.net_, reference.net_)
    assert resumed.history_[-1]["train_loss"] == pytest.approx(reference.history_[-1]["train_loss"], rel=1e-6)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and {"train_loss", "lr", "clipped", "seconds"} <= set(rows[0])


def test_charlm_resume_after_a_ctrl_c_matches_the_uninterrupted_run(tmp_path, monkeypatch):
    """The character model on the core: the streams' carried state is checkpointed, so a run stopped inside an
    epoch and resumed reaches the uninterrupted run's weights and history, bitwise."""
    text = "\n".join(tasks.toy_sentences(60))
    options = dict(hidden_size=12, embedding_dim=4, seq_len=16, batch_size=4, epochs=3, dropout=0.2, progress=False)
    reference = rnr.CharLM(**options).fit(text, text[:300])
    chunks = reference.history_["steps"][0]
    interrupt_after(monkeypatch, TrainingCore, "_batch", chunks + 3)  # inside the second epoch
    with graceful_stop():
        stopped = rnr.CharLM(**options, checkpoint_dir=str(tmp_path / "ckpt"), log_dir=str(tmp_path)).fit(
            text, text[:300])
    assert stopped.history_.interrupted and len(stopped.history_) == 1
    assert len(stopped.sample(20, seed=0)) == 20  # what was trained so far writes text
    monkeypatch.undo()
    resumed = rnr.CharLM(**options, checkpoint_dir=str(tmp_path / "ckpt"), resume=True,
                         log_dir=str(tmp_path)).fit(text, text[:300])
    assert not resumed.history_.interrupted and resumed.history_["epoch"] == [1, 2, 3]
    assert same_weights(resumed.net_, reference.net_)
    assert resumed.history_["train_loss"] == reference.history_["train_loss"]
    assert resumed.history_["val_nats"] == reference.history_["val_nats"]
    assert [r["epoch"] for r in read_csv(tmp_path / "metrics.csv")] == ["1", "2", "3"]


def test_forecaster_checkpoint_options_are_checked():
    with pytest.raises(ValueError, match="resume and checkpoint_every need checkpoint_dir"):
        RNNForecaster(horizon=3, resume=True).fit(seasonal_panel(n=2))


def test_model_files_leave_out_where_the_run_wrote(panel, tmp_path):
    """A loaded model refitted (e.g. by a backtest) must not write into, or resume from, the old run's folder."""
    options = dict(horizon=7, **{**FAST, "epochs": 1})
    f = RNNForecaster(**options, checkpoint_dir=str(tmp_path / "ckpt"), resume=True, log_dir=str(tmp_path)).fit(panel)
    loaded = rnr.load(rnr.save(f, tmp_path / "f.safetensors"))
    assert {k: loaded.get_params()[k] for k in rnr.base.RUN_OPTIONS} == \
        {"progress": None, "log_dir": None, "checkpoint_dir": None, "checkpoint_every": None, "resume": False}
    X, Y = tasks.ragged_sums(40)
    clf = rnr.RNNClassifier(hidden_size=4, epochs=1, log_dir=str(tmp_path / "clf"), checkpoint_dir=str(tmp_path))
    clf.fit([x.numpy() for x in X], (Y[:, 0] > 0).numpy())
    again = rnr.load(rnr.save(clf, tmp_path / "c.safetensors"))
    assert again.log_dir is None and again.checkpoint_dir is None
    assert repr(again) == "RNNClassifier(hidden_size=4, epochs=1; chose batch_size=8, conv=True, n_models=3)"
