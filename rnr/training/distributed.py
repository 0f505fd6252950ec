"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` process groups and
``DistributedDataParallel`` (gloo on CPUs, NCCL on GPUs).

Launch ``N`` processes with ``torchrun --nproc_per_node N your_script.py`` (or ``rnr fit forecast ... --nproc N``,
which runs torchrun for you). Each process reads its rank and the world size from the environment torchrun sets;
``setup`` joins the group. A training loop then splits every global batch between the processes, and DDP averages
the gradients, so N processes take the same steps as one process on the same global batch.
"""
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist


def world_from_env() -> int:
    """The number of processes torchrun started (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world size, whether this call created the group) for the process group of this run, joining it
    when torchrun launched this process and no group exists yet."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if world_from_env() <= 1:
        return 0, 1, False
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


@contextmanager
def held_group(device: torch.device):
    """Hold the process group of a torchrun launch across several training runs (the networks of an ensemble), so
    that each run joins it instead of creating and destroying its own: a group created again at once can fail to
    connect (rank 1 reaching rank 0's store before it listens again)."""
    _, _, created = setup(device)
    try:
        yield
    finally:
        if created:
            dist.barrier()  # no process leaves the group while another still reduces
            dist.destroy_process_group()


def all_sum(values: list[float], device) -> list[float]:
    """Each value summed over the processes."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_true(flag: bool, device) -> bool:
    """True on every process when ``flag`` is True on any (e.g. a Ctrl-C that reached only some)."""
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)
