"""Training: ``rnr.fit`` for the topologies over one training core shared by every estimator, checkpoints with
exact resume, metrics logs and a graceful Ctrl-C, and joining a ``torch.distributed`` group."""
from rnr.training import checkpoint, distributed, logs
from rnr.training.train import History, TrainConfig, evaluate, fit

__all__ = ["fit", "evaluate", "TrainConfig", "History", "checkpoint", "logs", "distributed"]
