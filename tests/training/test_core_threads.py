"""The training core runs on the threads rnr.core.threads gives, records them, and restores the caller's count after
the run, also after an error. The machine is injected: 4 cores, one of them busy, torch's own count 4."""
import logging

import pytest
import torch
from torch import nn

import rnr
from rnr.core import threads
from rnr.core.threads import WORK_PER_THREAD
from rnr.data import tasks
from rnr.training.core import CoreSettings, TrainingCore


class OneUpdate:
    """A task of one batch and one update that notes torch's thread count while it runs."""

    def __init__(self, module, fail=False):
        self.module, self.fail, self.seen = module, fail, []

    def num_batches(self):
        return 1

    def batches(self, epoch, start):
        yield from [torch.ones(2, 4)][start:]

    def updates(self, batch):
        self.seen.append(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("the task failed")
        yield self.module(batch).pow(2).mean(), len(batch)

    def validate(self):
        return {}


def run(fail=False, **settings):
    module = nn.Linear(4, 4)  # 16 multiply-adds a row
    task = OneUpdate(module, fail)
    core = TrainingCore(task, torch.optim.SGD(module.parameters(), lr=0.1),
                        CoreSettings(epochs=1, progress=False, **settings))
    return core.run(), task.seen


@pytest.fixture
def machine(monkeypatch):
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 4)
    monkeypatch.setattr(threads, "usable_cores", lambda: ({0, 1, 2, 3}, None))
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: 1.0)
    for name in ("RNR_THREADS", *threads.THREAD_ENVS):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(4)  # torch's own count, as nobody set it
    yield
    torch.set_num_threads(1)


def test_a_small_model_runs_on_one_thread_and_the_count_is_restored(machine):
    history, seen = run()
    assert seen == [1] and history.threads == 1
    assert history.threads_reason == "chosen: 0.00051M multiply-adds a step gain nothing from a second thread"
    assert torch.get_num_threads() == 4


def test_rows_per_step_sets_the_work(machine):
    history, seen = run(rows_per_step=WORK_PER_THREAD)  # 16 threads' work: the 3 free cores
    assert seen == [3] and history.threads == 3
    assert torch.get_num_threads() == 4


def test_an_estimators_setting_and_rnr_threads_come_first(machine, monkeypatch):
    assert run(threads=2)[1] == [2]
    monkeypatch.setenv("RNR_THREADS", "3")
    history, seen = run()
    assert seen == [3] and history.threads_reason == "RNR_THREADS=3"
    assert torch.get_num_threads() == 4


def test_a_count_the_user_set_is_kept_and_nothing_is_measured(machine, monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: pytest.fail("measured the load"))
    torch.set_num_threads(2)
    history, seen = run(rows_per_step=WORK_PER_THREAD)
    assert seen == [2] and history.threads_reason == "set with torch.set_num_threads"
    assert torch.get_num_threads() == 2


def test_the_count_is_restored_after_an_error(machine):
    with pytest.raises(RuntimeError, match="the task failed"):
        run(fail=True)
    assert torch.get_num_threads() == 4


def test_the_choice_is_logged_and_fit_records_it(machine, caplog):
    with caplog.at_level(logging.INFO, logger="rnr.training"):
        history = rnr.fit(rnr.ManyToOne(1, 1, hidden_size=8), tasks.ragged_sums(8, max_len=4), epochs=1,
                          batch_size=4, progress=False)
    assert history.threads == 1 and torch.get_num_threads() == 4
    assert "threads: 1 (chosen: " in caplog.text
