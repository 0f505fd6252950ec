"""rnr.core.threads: the threads of a training run, from the free cores and the work per step, with the machine's
cores, load and environment passed in (nothing here is timed)."""
import pytest
import torch
from torch import nn

from rnr.core import threads
from rnr.core.threads import (WORK_PER_THREAD, busy_share, cgroup_quota, choose_threads, cpu_ticks, run_threads,
                              step_work)

BIG = 64 * WORK_PER_THREAD  # work enough for 64 threads

# /proc/stat: cpu0 busy for all 100 ticks between the two readings, cpu1 idle, cpu2 half busy (iowait is free)
STAT_BEFORE = """cpu  400 0 200 900 10 0 0 0 0 0
cpu0 100 0 100 300 0 0 0 0 0 0
cpu1 100 0 50 300 0 0 0 0 0 0
cpu2 200 0 50 300 10 0 0 0 0 0
intr 12345
"""
STAT_AFTER = """cpu  550 0 300 1050 30 0 0 0 0 0
cpu0 160 0 140 300 0 0 0 0 0 0
cpu1 100 0 50 400 0 0 0 0 0 0
cpu2 240 0 60 330 30 0 0 0 0 0
intr 12399
"""


@pytest.fixture
def default8(monkeypatch):
    """torch's own count (one thread per physical core) is 8."""
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 8)


def test_a_small_step_gets_one_thread_however_many_cores_are_free(default8):
    assert choose_threads(WORK_PER_THREAD - 1, cores=8, busy=0.0) == 1
    assert choose_threads(0, cores=8, busy=None) == 1


def test_a_large_step_gets_the_free_cores(default8):
    assert choose_threads(BIG, cores=8, busy=0.0) == 8
    assert choose_threads(BIG, cores=8, busy=1.0) == 7   # one busy process takes one core
    assert choose_threads(BIG, cores=8, busy=2.6) == 5   # a core counts as busy from half busy on
    assert choose_threads(BIG, cores=8, busy=0.4) == 8
    assert choose_threads(BIG, cores=8, busy=30.0) == 1  # never fewer than one


def test_the_work_caps_the_threads_between(default8):
    assert choose_threads(3 * WORK_PER_THREAD, cores=8, busy=0.0) == 3
    assert choose_threads(3 * WORK_PER_THREAD, cores=8, busy=6.0) == 2


def test_affinity_quota_and_torchs_default_cap_the_threads(default8):
    assert choose_threads(BIG, cores=16, busy=0.0) == 8              # one per physical core, as torch would
    assert choose_threads(BIG, cores=2, busy=0.0) == 2               # taskset -c 0,1
    assert choose_threads(BIG, cores=8, busy=0.0, quota=2.5) == 3    # a cgroup's 2.5 cores
    assert choose_threads(BIG, cores=4, busy=None) == 4              # no load reading: torch's count, within 4


def test_step_work_counts_weight_matrices_not_biases_or_embeddings():
    lstm = nn.LSTM(8, 16)  # weight_ih (64, 8), weight_hh (64, 16) and two biases
    assert step_work(lstm, rows=10) == 10 * (64 * 8 + 64 * 16)
    model = nn.Sequential(nn.Embedding(1000, 8), nn.Linear(8, 4))
    assert step_work(model, rows=3) == 3 * 8 * 4


def test_the_user_count_comes_first_then_rnr_threads_then_omp(monkeypatch):
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 4)
    kw = dict(cores=8, busy=0.0)
    assert run_threads(BIG, 3, current=4, environ={"RNR_THREADS": "2"}, **kw) == (
        3, "threads=3, the estimator's setting")
    assert run_threads(BIG, None, current=1, environ={"RNR_THREADS": "2"}, **kw) == (
        1, "set with torch.set_num_threads")
    assert run_threads(BIG, None, current=4, environ={"RNR_THREADS": " 2 ", "OMP_NUM_THREADS": "1"}, **kw) == (
        2, "RNR_THREADS=2")
    assert run_threads(BIG, None, current=4, environ={"OMP_NUM_THREADS": "4"}, **kw) == (
        4, "torch's count under OMP_NUM_THREADS=4")
    assert run_threads(BIG, None, current=4, environ={"RNR_THREADS": ""}, cores=8, busy=1.0) == (
        4, "chosen: 8 cores, 1.0 busy with other processes; 67M multiply-adds a step")


def test_the_reason_names_the_quota_and_a_missing_load_reading(default8):
    assert run_threads(BIG, current=8, environ={}, cores=8, busy=None, quota=2.0) == (
        2, "chosen: 8 cores (a quota of 2), no load reading here; 67M multiply-adds a step")


def test_one_thread_where_the_step_or_the_cores_allow_no_more_without_reading_the_load(monkeypatch, default8):
    monkeypatch.setattr(threads, "usable_cores", lambda: ({0, 1, 2, 3}, None))
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: pytest.fail("read the load"))
    assert run_threads(1000, current=8, environ={}) == (
        1, "chosen: 0.001M multiply-adds a step gain nothing from a second thread")
    monkeypatch.setattr(threads, "usable_cores", lambda: ({5}, None))  # taskset -c 5
    assert run_threads(BIG, current=8, environ={}) == (1, "chosen: one core to run on (1 core, torch's count 8)")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_rnr_threads_must_be_a_count(value):
    with pytest.raises(ValueError, match=rf"RNR_THREADS must be a whole number of threads >= 1, got '{value}'; "
                                         r"unset it to let rnr choose from the free cores"):
        run_threads(BIG, current=threads.TORCH_DEFAULT, environ={"RNR_THREADS": value}, cores=2, busy=0.0)


def test_without_injection_the_machine_is_read(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: ({0, 1, 2}, None))
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: 1.0 if cpus == {0, 1, 2} else 99.0)
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 8)
    assert run_threads(BIG, current=8, environ={})[0] == 2


def test_proc_stat_gives_each_cores_busy_share():
    assert cpu_ticks(STAT_BEFORE) == {0: (200, 500), 1: (150, 450), 2: (250, 560)}
    assert busy_share(STAT_BEFORE, STAT_AFTER, {0, 1, 2}) == pytest.approx(1.0 + 0.0 + 0.5)
    assert busy_share(STAT_BEFORE, STAT_AFTER, {1, 2, 7}) == pytest.approx(0.5)  # only the cores this process has


def test_busy_cores_leaves_out_this_process_and_needs_proc_stat(monkeypatch):
    readings = iter([STAT_BEFORE, STAT_AFTER])
    monkeypatch.setattr(threads, "_read_stat", lambda: next(readings))
    assert 1.0 <= threads.busy_cores({0, 1, 2}, seconds=0.01) <= 1.5  # 1.5 less what this process spent
    monkeypatch.setattr(threads, "_read_stat", lambda: None)
    assert threads.busy_cores({0, 1}, seconds=0.0) is None


@pytest.mark.parametrize("files,quota", [
    ({"cpu.max": "250000 100000\n"}, 2.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
], ids=["v2", "v2-none", "v1", "v1-none", "no-cgroup"])
def test_cgroup_quota(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_quota(str(tmp_path)) == quota


def test_the_machine_reading_runs_here():
    cpus, quota = threads.usable_cores()
    assert cpus and (quota is None or quota > 0)
    busy = threads.busy_cores(cpus, seconds=0.05)
    assert busy is None or 0 <= busy <= len(cpus)
    n, why = run_threads(BIG, current=threads.TORCH_DEFAULT, environ={})
    assert 1 <= n <= threads.TORCH_DEFAULT and why.startswith("chosen: ")
    assert torch.get_num_threads() == 1  # choosing sets nothing
