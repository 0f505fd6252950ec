"""How many threads a training run uses: no more than the cores other processes leave free, and no more than its
steps can use.

torch's default is one thread per physical core of the machine, whatever else runs there and however small the
model. A recurrent step is a chain of small products, and when one of the threads waits for a core that another
process holds, every step waits for it: on a 2-core machine, small models trained up to 45 times slower with torch's
default beside one busy process (measured before this rule; ``bench/contention.py`` measures both). So a run takes

    threads = min(cores this process may use - cores busy with other processes,   # what is free
                  max(1, work per step // WORK_PER_THREAD),                         # what the steps can use
                  torch's default)                                                  # one per physical core

where the cores it may use are its CPU affinity (``os.sched_getaffinity``, within a cgroup's CPU quota), the busy
cores are read from ``/proc/stat`` over ``SAMPLE_SECONDS`` (the busy share of each of those cores, less this process's
own; read only where the steps and the cores allow more than one thread), and the work per step is the
multiply-adds of one step through the weight matrices (``step_work``). Where ``/proc/stat`` cannot be read (macOS,
Windows) the free cores are torch's default. The load is read once, as the run starts: two runs started together
each see the other idle.

The choice applies only where nobody chose: ``run_threads`` returns, in this order, an estimator's own setting
(``RNNForecaster(threads=...)``), a count set with ``torch.set_num_threads`` (any count other than torch's own when
rnr was imported), ``RNR_THREADS``, and torch's count as ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set it; only
without any of them does it choose. numba's loops follow torch's count (``rnr.core.fast.use_torch_threads``).
"""
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

TORCH_DEFAULT = torch.get_num_threads()  # torch's count when rnr was imported; any other was set by the user
WORK_PER_THREAD = 2**20  # multiply-adds per step below which another thread gains nothing (docs/performance.md)
SAMPLE_SECONDS = 0.1     # how long /proc/stat is watched (100 clock ticks a second: 10 ticks per core)
ENV = "RNR_THREADS"      # a count for every run, in place of the choice
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's own count follows these


def step_work(module: nn.Module, rows: int) -> int:
    """Multiply-adds of one step of ``rows`` examples through ``module``'s weight matrices (each matrix weight once
    per example; an embedding is a lookup and not counted)."""
    lookups = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters(recurse=False)}
    return rows * sum(p.numel() for p in module.parameters() if p.dim() >= 2 and id(p) not in lookups)


def choose_threads(work_per_step: float, cores: int, busy: float | None, quota: float | None = None) -> int:
    """The threads for steps of ``work_per_step`` multiply-adds on ``cores`` (those this process may run on),
    ``busy`` of them kept busy by other processes (a core counts from half busy on; None: unknown, and torch's
    default count taken as free), within a cgroup's CPU ``quota`` in cores (None: none)."""
    free = cores - math.floor(busy + 0.5) if busy is not None else min(cores, TORCH_DEFAULT)
    if quota:
        free = min(free, math.ceil(quota))
    useful = max(1, int(work_per_step // WORK_PER_THREAD))
    return max(1, min(free, useful, TORCH_DEFAULT))


def run_threads(work_per_step: float, setting: int | None = None, *, current: int | None = None, environ=None,
                cores: int | None = None, busy: float | None = None, quota: float | None = None) -> tuple[int, str]:
    """The threads for one training run and why, in words: the first of ``setting`` (an estimator's), a count set
    with ``torch.set_num_threads`` (``current`` differs from ``TORCH_DEFAULT``), ``RNR_THREADS``, ``OMP_NUM_THREADS``
    or ``MKL_NUM_THREADS`` (torch's count as they set it); else ``choose_threads`` on this process's cores and the
    busy ones measured now (``usable_cores``, ``busy_cores``). ``current`` (torch's count), ``environ``, and
    ``cores``, ``busy`` (None: no load reading) and ``quota`` stand in for the machine's in tests."""
    current = torch.get_num_threads() if current is None else current
    environ = os.environ if environ is None else environ
    if setting is not None:
        return setting, f"threads={setting}, the estimator's setting"
    if current != TORCH_DEFAULT:
        return current, "set with torch.set_num_threads"
    if environ.get(ENV, "").strip():
        value = environ[ENV].strip()
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{ENV} must be a whole number of threads >= 1, got {value!r}; unset it to let rnr "
                             f"choose from the free cores")
        return int(value), f"{ENV}={value}"
    for name in THREAD_ENVS:
        if environ.get(name, "").strip():
            return current, f"torch's count under {name}={environ[name].strip()}"
    work = f"{work_per_step / 1e6:.2g}M multiply-adds a step"
    measure = cores is None
    if measure:
        cpus, quota = usable_cores()
        cores = len(cpus)
    where = f"{cores} core{'s' if cores > 1 else ''}" + (f" (a quota of {quota:g})" if quota else "")
    if choose_threads(work_per_step, cores, 0.0, quota) == 1:  # one even on an idle machine: no need to look
        if work_per_step < 2 * WORK_PER_THREAD:
            return 1, f"chosen: {work} gain nothing from a second thread"
        return 1, f"chosen: one core to run on ({where}, torch's count {TORCH_DEFAULT})"
    if measure:
        busy = busy_cores(cpus)
    load = f"{busy:.1f} busy with other processes" if busy is not None else "no load reading here"
    return choose_threads(work_per_step, cores, busy, quota), f"chosen: {where}, {load}; {work}"


def usable_cores() -> tuple[set[int], float | None]:
    """The cores this process may run on (its affinity) and its cgroup's CPU quota in cores (None: none)."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cpus = set(range(os.cpu_count() or 1))
    return cpus, cgroup_quota()


def busy_cores(cpus: set[int], seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores of ``cpus`` kept busy by other processes over the next ``seconds`` (this process's own time left out);
    None where ``/proc/stat`` cannot be read."""
    before, own, began = _read_stat(), time.process_time(), time.perf_counter()
    if before is None:
        return None
    time.sleep(seconds)
    after = _read_stat()
    if after is None:
        return None
    own = (time.process_time() - own) / (time.perf_counter() - began)
    return max(0.0, busy_share(before, after, cpus) - own)


def busy_share(before: str, after: str, cpus: set[int]) -> float:
    """The busy cores of ``cpus`` between two readings of ``/proc/stat``: each core's busy share of its clock ticks
    (user, nice, system, irq, softirq, steal; idle and iowait are free), summed."""
    first, second = cpu_ticks(before), cpu_ticks(after)
    total = 0.0
    for cpu in cpus & first.keys() & second.keys():
        busy = second[cpu][0] - first[cpu][0]
        ticks = second[cpu][1] - first[cpu][1]
        total += busy / ticks if ticks > 0 else 0.0
    return total


def cpu_ticks(stat: str) -> dict[int, tuple[int, int]]:
    """core -> (busy ticks, all ticks) from the text of ``/proc/stat`` (its ``cpuN`` lines; guest time is already
    in user time)."""
    out = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in rest.split()[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return out


def _read_stat() -> str | None:
    try:
        return Path("/proc/stat").read_text()
    except OSError:
        return None


def cgroup_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (v2 ``cpu.max``, v1 ``cpu/cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``), None where there is none."""
    root = Path(root)
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            words = (root / quota_file).read_text().split()[:2]
            if period_file:
                words.append((root / period_file).read_text().strip())
        except OSError:
            continue
        if len(words) == 2 and words[0] not in ("max", "-1") and int(words[1]) > 0:
            return int(words[0]) / int(words[1])
        return None
    return None
