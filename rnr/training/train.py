"""Training the topologies: ``rnr.fit(model, train, val=None, **settings) -> History``.

Batches padded to their own longest sequence, the model's masked ``loss(batch)``, an optimizer (Adam, AdamW or SGD)
and an epoch-level learning-rate schedule; optionally truncated BPTT (chunks of ``tbptt`` steps with the state
carried, detached, between them, one update per chunk) and validation each epoch. Everything else (clipping, the
guard against NaN and inf, budgets, early stopping with the best weights restored, checkpoints and exact resume,
Ctrl-C, metrics logs) is the training core's, ``rnr.training.core``, shared with every estimator.
"""
import math
from dataclasses import asdict, dataclass, fields

import torch

from rnr.core.checks import check_positive_int
from rnr.core.rnn import detach_state, put_rows, take_rows
from rnr.data.sequences import Batch, SequenceData, as_data
from rnr.training.core import NONFINITE, CoreSettings, History, TrainingCore, adam, cosine_over_run

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "cosine", "step", "plateau")


@dataclass
class TrainConfig:
    epochs: int = 10                     # passes over the training data
    batch_size: int = 32                 # examples per step; each batch is padded to its own longest sequence
    optimizer: str = "adam"              # "adam" | "adamw" | "sgd"
    lr: float = 1e-3                     # learning rate at the start
    weight_decay: float = 0.0            # L2 (adam, sgd) or decoupled (adamw) weight decay
    momentum: float = 0.9                # sgd only
    clip_grad_norm: float | None = 1.0   # rescale gradients whose global norm exceeds this; None: never
    tbptt: int | None = None             # truncated BPTT: chunk length in steps (ManyToManySync only); None: full
    lr_schedule: str | None = None       # None | "cosine" (to 0 over the epochs, or over max_minutes where that
                                         # ends first) | "step" | "plateau"
    lr_step: int = 10                    # "step": epochs between decays; "plateau": epochs without improvement
    lr_gamma: float = 0.5                # "step" and "plateau": factor applied to the LR at each decay
    patience: int | None = None          # early stopping: epochs without improvement; None: run every epoch
    seed: int = 0                        # shuffling, dropout and teacher forcing draw from this seed
    shuffle: bool = True                 # a new order of the training examples each epoch
    bucket: bool = False                 # shuffled batches of similar lengths (less padding; see SequenceData)
    progress: bool | None = None         # a progress bar per epoch (None: where stderr is a terminal)
    history_csv: str | None = None       # write the history here after each epoch
    log_dir: str | None = None           # metrics.csv after each epoch, and TensorBoard files when it is installed
    checkpoint_dir: str | None = None    # write checkpoints here (the last two are kept)
    checkpoint_every: int | None = None  # also checkpoint every N batches (always at each epoch's end)
    resume: bool = False                 # continue from the newest good checkpoint in checkpoint_dir
    max_steps: int | None = None         # stop after this many batches in all (one update each without tbptt)
    max_minutes: float | None = None     # skip any epoch that would end past this budget, judged by the longest one
    device: str = "cpu"                  # "cpu", "cuda", "cuda:1", ... or "auto"
    on_nonfinite: str = "error"          # a NaN/inf loss or gradient: "error" (stop, keep the last good weights)
                                         # or "skip" (drop the batch, count it in the history's `skipped`)

    def __post_init__(self):
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.lr_step, "lr_step")
        for name in ("tbptt", "patience", "checkpoint_every", "max_steps"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {list(SCHEDULES)}, got {self.lr_schedule!r}")
        for name in ("lr", "weight_decay", "momentum", "lr_gamma"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr == 0:
            raise ValueError("lr must be > 0, got 0; a typical start is 1e-3 for adam")
        if self.clip_grad_norm is not None and not (self.clip_grad_norm > 0):
            raise ValueError(f"clip_grad_norm must be > 0 or None, got {self.clip_grad_norm!r}")
        m = self.max_minutes
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0):
            raise ValueError(f"max_minutes must be a number > 0 or None, got {m!r}")
        if self.on_nonfinite not in NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {list(NONFINITE)}, got {self.on_nonfinite!r}: 'error' "
                             f"stops at a NaN or inf loss or gradient, 'skip' drops that batch and goes on")
        if (self.resume or self.checkpoint_every) and not self.checkpoint_dir:
            raise ValueError("resume and checkpoint_every need checkpoint_dir: pass checkpoint_dir='runs/ckpt'")


def fit(model, train, val=None, **settings) -> History:
    """Train ``model`` (any rnr topology) on ``train`` and return its History.

    Args:
        model: a topology from ``rnr.nn.topologies`` (anything with ``loss(batch)`` and ``metrics(batch)``).
        train, val: ``SequenceData`` or ``(X, Y)`` pairs (see ``rnr.data``).
        **settings: the fields of ``TrainConfig``, e.g. ``epochs=20, lr=3e-3, patience=3``.

    Example:
        >>> X, Y = rnr.data.tasks.ragged_sums(500)
        >>> history = rnr.fit(rnr.ManyToOne(1, 1, hidden_size=16), (X, Y), epochs=2, progress=False)
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"fit got unknown settings {unknown}; known settings: {sorted(known)}")
    cfg = TrainConfig(**settings)
    if not (hasattr(model, "loss") and hasattr(model, "metrics")):
        raise TypeError(f"model must be an rnr topology (with loss(batch) and metrics(batch)), got "
                        f"{type(model).__name__}")
    if cfg.tbptt and not hasattr(model, "loss_and_state"):
        raise ValueError(f"tbptt applies to ManyToManySync models, whose state can be carried between chunks; got "
                         f"{type(model).__name__}: set tbptt=None")
    train, val = as_data(train, "train"), (None if val is None else as_data(val, "val"))
    opt = _optimizer(model, cfg)
    per_update = cfg.lr_schedule == "cosine" and cfg.max_minutes is not None and not cfg.tbptt
    settings = CoreSettings(
        epochs=cfg.epochs, clip_grad_norm=cfg.clip_grad_norm, on_nonfinite=cfg.on_nonfinite, seed=cfg.seed,
        max_steps=cfg.max_steps, max_minutes=cfg.max_minutes, patience=cfg.patience, keep_best=bool(cfg.patience),
        monitor="val_loss" if val is not None else "train_loss",
        scheduler_step="plateau" if cfg.lr_schedule == "plateau" else "update" if per_update else "epoch",
        progress=cfg.progress,
        log_dir=cfg.log_dir, checkpoint_dir=cfg.checkpoint_dir, checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume, device=cfg.device, rows_per_step=cfg.batch_size)
    task = TopologyTask(model, cfg, train, val)
    if per_update:  # a budget that ends the run before its epochs still ends it at a low rate
        sched = cosine_over_run(cfg.epochs * task.num_batches(), cfg.max_minutes)
    else:
        sched = _scheduler(opt, cfg)
    core = TrainingCore(task, opt, settings, sched, config=asdict(cfg),
                        resume_keys=("batch_size", "optimizer", "seed", "shuffle", "tbptt", "lr_schedule"))
    return core.run()


class TopologyTask:
    """What the training core needs to train a topology: its batches, its updates (one per batch, or one per
    ``tbptt`` chunk), its validation."""

    def __init__(self, model, cfg: TrainConfig, train: SequenceData, val: SequenceData | None):
        self.module, self.cfg, self.train, self.val = model, cfg, train, val
        self.device = torch.device("cpu")
        self.where = None  # the tbptt chunk in progress, named when it diverges
        # the first epoch checks every value of every batch (rnr.core.checks); after it the core skips those scans
        self.validated = False

    def setup(self, core) -> None:
        self.device = core.device

    def num_batches(self) -> int:
        return self.train.num_batches(self.cfg.batch_size)

    def batches(self, epoch: int, start: int):
        order = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        for batch in self.train.batches(self.cfg.batch_size, self.cfg.shuffle, order, skip=start,
                                        bucket=self.cfg.bucket):
            yield batch.to(self.device)

    def updates(self, batch: Batch):
        if not self.cfg.tbptt:
            yield self.module.loss(batch), len(batch)
            return
        # chunks of tbptt steps, an update after each, the state carried (detached) from chunk to chunk
        T, k = batch.x.shape[1], self.cfg.tbptt
        lengths = batch.x_lengths.cpu() if batch.x_lengths is not None else torch.full((len(batch),), T)
        state = None
        for chunk_number, start in enumerate(range(0, T, k), 1):
            self.where = f"tbptt chunk {chunk_number}"
            rows = (lengths > start).nonzero()[:, 0]  # sequences with steps left
            chunk_len = (lengths[rows] - start).clamp(max=k)
            steps = int(chunk_len.max())
            dev_rows = rows.to(self.device)
            chunk = Batch(batch.x[dev_rows, start : start + steps], batch.y[dev_rows, start : start + steps],
                          chunk_len, chunk_len)
            sub = None if state is None else take_rows(state, dev_rows)
            loss, new = self.module.loss_and_state(chunk, sub)
            yield loss, int(chunk_len.sum())
            new = detach_state(new)
            state = new if state is None else put_rows(detach_state(state), dev_rows, new)
        self.where = None

    def validate(self) -> dict:
        if self.val is None:
            return {}
        return {f"val_{k}": v for k, v in evaluate(self.module, self.val, self.cfg.batch_size, self.device).items()}

    def end_epoch(self, history: History) -> None:
        self.validated = True  # every training example has passed the model's checks once
        if self.cfg.history_csv:
            history.to_csv(self.cfg.history_csv)


@torch.no_grad()
def evaluate(model, data, batch_size: int = 256, device="cpu") -> dict[str, float]:
    """The model's metrics over all of ``data``, each batch weighted by its number of examples."""
    data = as_data(data, "data")
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    for batch in data.batches(batch_size):
        for k, v in model.metrics(batch.to(device)).items():
            totals[k] = totals.get(k, 0.0) + v * len(batch)
    model.train(was_training)
    return {k: v / len(data) for k, v in totals.items()}


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return adam(params, decoupled=True, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_gamma, patience=cfg.lr_step)
    return None
