"""Training: ``rnr.fit(model, train, val=None, **settings) -> History``.

One loop for every topology: batches padded to their own longest sequence, the model's masked ``loss(batch)``,
gradient-norm clipping, an optimizer step; optionally truncated BPTT (chunks of ``tbptt`` steps with the state
carried, detached, between them), validation each epoch, an LR schedule, early stopping that restores the best
weights, a CSV history, and atomic checkpoints from which ``resume=True`` continues to the same final weights as
a run that was never interrupted (the checkpoint holds weights, optimizer and scheduler state, the RNG state and
the position inside the epoch).

Numerical faults: a loss or gradient that is not finite (NaN or inf) never reaches the optimizer. By default
(``on_nonfinite="error"``) the run stops with a FloatingPointError that names the epoch, the batch and the step,
and the model keeps the last good weights (the checkpoints stay as they were); ``on_nonfinite="skip"`` drops such
a batch instead, counts it in the history's ``skipped`` column and warns at the end of the epoch. An update that
turns finite gradients into non-finite weights is undone and always stops the run: it is the optimizer diverging,
not a bad batch.
"""
import csv
import math
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from rnr.core.checks import check_positive_int
from rnr.core.rnn import detach_state, put_rows, take_rows
from rnr.data.sequences import Batch, SequenceData, as_data
from rnr.training import checkpoint
from rnr.training.logs import MetricsLog, stop_requested

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "cosine", "step", "plateau")
NONFINITE = ("error", "skip")


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
    lr_schedule: str | None = None       # None | "cosine" (to 0 over the epochs) | "step" | "plateau"
    lr_step: int = 10                    # "step": epochs between decays; "plateau": epochs without improvement
    lr_gamma: float = 0.5                # "step" and "plateau": factor applied to the LR at each decay
    patience: int | None = None          # early stopping: epochs without improvement; None: run every epoch
    seed: int = 0                        # shuffling, dropout and teacher forcing draw from this seed
    shuffle: bool = True                 # a new order of the training examples each epoch
    bucket: bool = False                 # shuffled batches of similar lengths (less padding; see SequenceData)
    progress: bool = True                # a progress bar per epoch
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


class History:
    """One row per epoch: epoch, steps (batches so far), train_loss, val_* metrics, lr (the rate the epoch trained
    with), clipped (updates whose gradient was clipped; with tbptt, one update per chunk), skipped (only with
    ``on_nonfinite="skip"``: batches dropped for a NaN or inf loss or gradient), seconds.
    ``history["val_loss"]`` gives a column; ``best_epoch`` and ``stopped_early`` summarise the run."""

    def __init__(self, rows=None, monitor: str = "train_loss"):
        self.rows: list[dict] = list(rows or [])
        self.monitor = monitor
        self.stopped_early = False
        self.out_of_time = False  # max_minutes ended the run
        self.interrupted = False  # a Ctrl-C inside rnr.training.logs.graceful_stop() ended the run after a step

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        return self.rows[key] if isinstance(key, int) else [r.get(key) for r in self.rows]

    @property
    def best_epoch(self) -> int | None:
        values = [(r[self.monitor], r["epoch"]) for r in self.rows if r.get(self.monitor) is not None]
        return min(values)[1] if values else None

    def to_csv(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(path)
        return path

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        return f"History({len(self)} epochs, best_epoch={self.best_epoch}, last={last})"


def fit(model, train, val=None, **settings) -> History:
    """Train ``model`` (any rnr topology) on ``train`` and return its History.

    Args:
        model: a topology from ``rnr.topologies`` (anything with ``loss(batch)`` and ``metrics(batch)``).
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
    return Trainer(model, cfg, train, val).run()


class Trainer:
    """The state of one run; ``fit`` is the public entry point."""

    def __init__(self, model, cfg: TrainConfig, train: SequenceData, val: SequenceData | None):
        self.cfg, self.train_data, self.val_data = cfg, train, val
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.opt = _optimizer(model, cfg)
        self.sched = _scheduler(self.opt, cfg)
        self.history = History(monitor="val_loss" if val is not None else "train_loss")
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.partial = _new_partial()  # the running epoch's train loss so far
        self.params = [p for group in self.opt.param_groups for p in group["params"]]
        self.last_good = [p.detach().clone() for p in self.params]  # the weights before the update in progress
        self.best_value, self.best_state, self.bad_epochs = math.inf, None, 0
        self.ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        self.log = None
        self.chunk = None  # the tbptt chunk in progress (1-based), named when it diverges

    # the loop -------------------------------------------------------------------------------------------------
    def run(self) -> History:
        torch.manual_seed(self.cfg.seed)
        if self.cfg.resume:
            self._resume()
        if self.cfg.log_dir:
            self.log = MetricsLog(self.cfg.log_dir, rows=self.history.rows)
        n_batches = self.train_data.num_batches(self.cfg.batch_size)
        began = time.perf_counter()
        while self.epoch < self.cfg.epochs and not self._out_of_steps() and not self.history.stopped_early:
            start = time.perf_counter()
            if self.cfg.max_minutes and self.history.rows:
                longest = max(r["seconds"] for r in self.history.rows)
                if start - began + longest > 60 * self.cfg.max_minutes:
                    self.history.out_of_time = True
                    break
            self.model.train()
            order = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.epoch)
            batches = self.train_data.batches(self.cfg.batch_size, self.cfg.shuffle, order, skip=self.batch_in_epoch,
                                              bucket=self.cfg.bucket)
            bar = tqdm(batches, total=n_batches, initial=self.batch_in_epoch, disable=not self.cfg.progress,
                       desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", leave=False)
            for batch in bar:
                try:
                    loss, clipped = self._train_step(batch.to(self.device))
                except _SkipBatch as skip:  # on_nonfinite="skip": the batch changed nothing (see _nonfinite)
                    self.partial["skipped"] += 1
                    if len(self.partial["skip_notes"]) < 3:
                        self.partial["skip_notes"].append([self.batch_in_epoch + 1, str(skip)])
                    loss = math.nan
                else:
                    self.partial["loss_sum"] += loss * len(batch)
                    self.partial["count"] += len(batch)
                    self.partial["clipped"] += clipped
                self.batch_in_epoch += 1
                self.step += 1
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self._checkpoint()
                if stop_requested():
                    self.history.interrupted = True
                    if self.ckpt_dir:
                        self._checkpoint()
                    break
                if self._out_of_steps():
                    break
            bar.close()
            if self.batch_in_epoch < n_batches:  # stopped by max_steps or Ctrl-C inside the epoch
                break
            if self._end_epoch(time.perf_counter() - start):
                self.history.stopped_early = True
                break
        if self.best_state is not None and (self.history.stopped_early or self.cfg.patience):
            self.model.load_state_dict(self.best_state)  # early stopping keeps the best epoch's weights
        if self.log is not None:
            self.log.close()
        self.model.eval()
        return self.history

    def _out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def _train_step(self, batch: Batch) -> tuple[float, int]:
        if self.cfg.tbptt:
            return self._tbptt_step(batch)
        loss = self.model.loss(batch)
        return self._update(loss, len(batch))

    def _tbptt_step(self, batch: Batch) -> tuple[float, int]:
        """Chunks of ``tbptt`` steps, an update after each, the state carried (detached) from chunk to chunk.
        A chunk with a non-finite loss or gradient ends the batch: the chunks before it have updated the weights."""
        T, k = batch.x.shape[1], self.cfg.tbptt
        lengths = batch.x_lengths if batch.x_lengths is not None else torch.full((len(batch),), T)
        state, total, n, clipped = None, 0.0, 0, 0
        for chunk_number, start in enumerate(range(0, T, k), 1):
            self.chunk = chunk_number
            rows = (lengths > start).nonzero()[:, 0]  # sequences with steps left
            chunk_len = (lengths[rows] - start).clamp(max=k)
            steps = int(chunk_len.max())
            dev_rows = rows.to(self.device)
            chunk = Batch(batch.x[dev_rows, start : start + steps], batch.y[dev_rows, start : start + steps],
                          chunk_len, chunk_len)
            sub = None if state is None else take_rows(state, dev_rows)
            loss, new = self.model.loss_and_state(chunk, sub)
            value, c = self._update(loss, len(rows))
            new = detach_state(new)
            state = new if state is None else put_rows(detach_state(state), dev_rows, new)
            w = int(chunk_len.sum())
            total, n, clipped = total + value * w, n + w, clipped + c
        self.chunk = None
        return total / n, clipped

    def _update(self, loss: Tensor, size: int) -> tuple[float, int]:
        """Backward, clip and step; the optimizer never sees a non-finite loss or gradient (see _nonfinite)."""
        value = float(loss.detach())
        if not math.isfinite(value):
            self._nonfinite(f"the loss became {value}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm))
        else:  # only measured: the gradients stay bitwise as they are
            norm = _total_norm([p.grad for p in self.params if p.grad is not None])
        if not math.isfinite(norm):  # a NaN or inf in a gradient, or one past float range (> ~1e19 in float32)
            self.opt.zero_grad(set_to_none=True)
            self._nonfinite(f"the gradient norm became {norm}")
        clipped = int(self.cfg.clip_grad_norm is not None and norm > self.cfg.clip_grad_norm)
        _copy(self.last_good, self.params)
        self.opt.step()
        if not _all_finite(self.params):  # finite gradients, too large a step
            _copy(self.params, self.last_good)
            self._diverged(f"the update made the weights non-finite (gradient norm {norm:.3g})", skippable=False)
        return value, clipped

    def _nonfinite(self, what: str):
        """A NaN or inf loss or gradient, caught before the optimizer step: skip the batch or stop."""
        if self.cfg.on_nonfinite == "skip":
            raise _SkipBatch(what)
        self._diverged(what)

    def _diverged(self, what: str, skippable: bool = True):
        last = self._checkpoints()[-1:] if self.ckpt_dir else []
        saved = f"; the last checkpoint, {str(last[0])!r}, is intact" if last else ""
        chunk = f", tbptt chunk {self.chunk}" if self.cfg.tbptt and self.chunk else ""
        skip = "; on_nonfinite='skip' drops such batches instead" if skippable else ""
        raise FloatingPointError(
            f"training diverged: {what} at epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1} of the epoch "
            f"(optimizer step {self.step + 1}{chunk}); the model keeps its weights from before this update. Lower "
            f"lr (now {self.opt.param_groups[0]['lr']:.3g}), set clip_grad_norm, or check the data for extreme "
            f"values{skip}{saved}"
        )

    def _end_epoch(self, seconds: float) -> bool:
        """Validate, record, schedule, checkpoint; True when early stopping ends the run."""
        p = self.partial
        row = {"epoch": self.epoch + 1, "steps": self.step,
               "train_loss": p["loss_sum"] / p["count"] if p["count"] else math.nan}  # nan: every batch skipped
        if self.val_data is not None:
            row.update({f"val_{k}": v for k, v in evaluate(self.model, self.val_data, self.cfg.batch_size,
                                                             self.device).items()})
        row.update(lr=self.opt.param_groups[0]["lr"], clipped=p["clipped"])
        if self.cfg.on_nonfinite == "skip":
            row["skipped"] = p["skipped"]
            if p["skipped"]:
                notes = "; ".join(f"batch {b}: {what}" for b, what in p["skip_notes"])
                more = "; ..." if p["skipped"] > len(p["skip_notes"]) else ""
                warnings.warn(f"epoch {self.epoch + 1}: skipped {p['skipped']} of "
                              f"{self.train_data.num_batches(self.cfg.batch_size)} batches whose loss or gradient "
                              f"was not finite (on_nonfinite='skip'): {notes}{more}", stacklevel=4)
        row["seconds"] = round(seconds, 3)
        self.history.rows.append(row)
        value = row[self.history.monitor]
        if value < self.best_value:
            self.best_value, self.bad_epochs = value, 0
            if self.cfg.patience:
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        if self.sched is not None:
            self.sched.step(value) if self.cfg.lr_schedule == "plateau" else self.sched.step()
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.partial = _new_partial()
        if self.cfg.history_csv:
            self.history.to_csv(self.cfg.history_csv)
        if self.log is not None:
            self.log.write(row)
        if self.ckpt_dir:
            self._checkpoint()
        return bool(self.cfg.patience) and self.bad_epochs >= self.cfg.patience

    # checkpoints ----------------------------------------------------------------------------------------------
    def _checkpoints(self) -> list[Path]:
        return checkpoint.files(self.ckpt_dir)

    def _checkpoint(self) -> None:
        tensors = {"rng": torch.get_rng_state()}
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                 "partial": self.partial, "best_value": self.best_value, "bad_epochs": self.bad_epochs,
                 "history": self.history.rows,
                 "scheduler": self.sched.state_dict() if self.sched is not None else None,
                 "config": asdict(self.cfg)}
        checkpoint.write(self.ckpt_dir, self.step, self.model, self.opt, state, tensors)

    def _resume(self) -> None:
        found = checkpoint.latest(self.ckpt_dir, stacklevel=4)
        if found is not None:  # nothing to resume from: a first run started with resume=True simply starts
            self._restore(*found)

    def _restore(self, tensors: dict, state: dict, path: Path) -> None:
        changed = [k for k, v in state["config"].items()
                   if k in ("batch_size", "optimizer", "seed", "shuffle", "tbptt", "lr_schedule")
                   and getattr(self.cfg, k) != v]
        if changed:
            warnings.warn(f"resuming from {str(path)!r} with settings that differ from the run that wrote it: "
                          f"{changed}; the result will not match an uninterrupted run", stacklevel=4)
        checkpoint.restore(self.model, self.opt, tensors, state, repr(str(path)), self.device)
        if self.sched is not None and state["scheduler"] is not None:
            self.sched.load_state_dict(state["scheduler"])
        best = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        torch.set_rng_state(tensors["rng"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.partial, self.bad_epochs = {**_new_partial(), **state["partial"]}, state["bad_epochs"]
        self.best_value = state["best_value"]
        self.history.rows = state["history"]
        # a run that early stopping ended (its checkpoint written just before the stop) stays ended
        self.history.stopped_early = bool(self.cfg.patience) and self.bad_epochs >= self.cfg.patience


class _SkipBatch(Exception):
    """Raised out of a training step whose loss or gradient is not finite, with on_nonfinite="skip"."""


@torch.no_grad()
def _copy(dst: list[Tensor], src: list[Tensor]) -> None:
    for d, s in zip(dst, src):
        d.copy_(s)


def _total_norm(tensors: list[Tensor]) -> float:
    """The 2-norm of all ``tensors`` together, as ``clip_grad_norm_`` measures it (torch >= 2.6 has get_total_norm)."""
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors])))


def _all_finite(tensors: list[Tensor]) -> bool:
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())  # one device sync, not one each


def _new_partial() -> dict:
    # skipped: batches dropped by on_nonfinite="skip"; skip_notes: [batch of the epoch, what] of the first three
    return {"loss_sum": 0.0, "count": 0, "clipped": 0, "skipped": 0, "skip_notes": []}


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
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_gamma, patience=cfg.lr_step)
    return None
