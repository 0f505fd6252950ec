"""The training run of ``RNNForecaster.fit``: truncated BPTT over batches of series, checkpoints, resume, logs.

Series are sorted by length and cut into batches of ``batch_size`` (similar lengths waste little padding); each
epoch visits the batches in an order drawn from ``(seed, epoch)``. A batch is read in chunks of ``chunk`` steps,
one Adam update per chunk, the encoder state carried (detached) from chunk to chunk; the learning rate follows a
cosine to 0 over every update of the run.

With ``checkpoint_dir`` the run writes a checkpoint after every epoch (and every ``checkpoint_every`` batches), and
``resume=True`` continues from the newest good one to the same weights as a run never interrupted. A Ctrl-C inside
``rnr.training.logs.graceful_stop()`` ends the run after the batch it is in, with a checkpoint.
"""
import time
import warnings

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from rnr.core.rnn import detach_state, put_rows, take_rows
from rnr.forecast.net import SeriesArrays, quantile_loss
from rnr.training import checkpoint, distributed
from rnr.training.logs import MetricsLog, stop_requested


class ForecastTraining:
    """One run; ``RNNForecaster._train`` builds it and calls ``run()``, which returns the history rows."""

    def __init__(self, forecaster, parts):
        c = self.config = forecaster.config
        self.forecaster, self.net = forecaster, forecaster.net_
        self.parts = [InMemory(p) if isinstance(p, SeriesArrays) else p for p in parts]
        self.arrays, self.loaded = None, None  # the part in memory, and its number
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if c.device == "auto" else c.device)
        self.rank, self.world, self.owns_group = distributed.setup(device)
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", torch.cuda.current_device())  # this process's GPU (LOCAL_RANK)
        self.device = device
        self.net.to(self.device)
        self.step_net = _Chunk(forecaster)
        if self.world > 1:
            self.step_net = DistributedDataParallel(self.step_net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.batches, steps_per_epoch = [], 0  # (part, series of the part), sorted by length within each part
        for p, part in enumerate(self.parts):
            lengths = part.lengths()
            order = np.argsort(lengths, kind="stable")  # batches of similar lengths waste little on padding
            for i in range(0, len(order), c.batch_size):
                self.batches.append((p, order[i : i + c.batch_size]))
                steps_per_epoch += -(-int(lengths[order[i : i + c.batch_size]].max()) // c.chunk)
        total = max(1, steps_per_epoch * c.epochs)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.partial = {"loss_sum": 0.0, "weight": 0.0, "clipped": 0, "skipped": 0, "seconds": 0.0}
        self.history: list[dict] = []
        self.interrupted = False

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's order of the batches: the parts in a random order, each part's batches shuffled (so a part
        read from disk is read once an epoch)."""
        rng = np.random.default_rng([self.config.seed, epoch])
        of_part = [np.array([i for i, (q, _) in enumerate(self.batches) if q == p], dtype=np.int64)
                   for p in range(len(self.parts))]
        return np.concatenate([of_part[p][rng.permutation(len(of_part[p]))] for p in rng.permutation(len(of_part))])

    @property
    def main(self) -> bool:
        """The process that writes checkpoints, logs and progress (the only one without torchrun)."""
        return self.rank == 0

    def _stop(self) -> bool:
        if self.world == 1:
            return stop_requested()
        return distributed.any_true(stop_requested(), self.device)  # every process stops at the same batch

    def run(self) -> list[dict]:
        try:
            return self._run()
        finally:
            if self.owns_group:
                torch.distributed.destroy_process_group()

    def _run(self) -> list[dict]:
        c, net = self.config, self.net
        if c.resume and c.checkpoint_dir:
            self._resume()
        log = MetricsLog(c.log_dir, rows=self.history) if c.log_dir and self.main else None
        net.train()
        while self.epoch < c.epochs and not self.interrupted:
            start = time.perf_counter() - self.partial["seconds"]
            order = self.order(self.epoch)
            bar = tqdm(order[self.batch_in_epoch :], desc=f"epoch {self.epoch + 1}/{c.epochs}",
                       disable=not (c.progress and self.main), leave=False, total=len(order),
                       initial=self.batch_in_epoch)
            for bi in bar:
                loss, weight, clipped, skipped = self._batch(self.batches[bi])
                p = self.partial
                p["loss_sum"], p["weight"] = p["loss_sum"] + loss, p["weight"] + weight
                p["clipped"], p["skipped"] = p["clipped"] + clipped, p.get("skipped", 0) + skipped
                self.batch_in_epoch += 1
                bar.set_postfix(loss=f"{loss / max(weight, 1.0):.4f}")
                if self._stop():
                    self.interrupted = True
                    break
                if c.checkpoint_every and c.checkpoint_dir and self.batch_in_epoch % c.checkpoint_every == 0:
                    self.partial["seconds"] = time.perf_counter() - start
                    self._checkpoint()
            bar.close()
            self.partial["seconds"] = time.perf_counter() - start
            if not self.interrupted:
                row = self._end_epoch()
                if log is not None:
                    log.write(row)
            if c.checkpoint_dir:
                self._checkpoint()
        if log is not None:
            log.close()
        net.eval()
        net.to("cpu")
        return self.history

    def _batch(self, item: tuple[int, np.ndarray]) -> tuple[float, float, int, int]:
        """One global batch of series, chunk by chunk; returns (this process's loss x weight, weight, clipped
        updates, 1 if the batch was skipped for a non-finite loss or gradient else 0).

        With several processes each one runs every ``world``-th series of the batch; each chunk's loss is the sum
        over this process's targets divided by the whole batch's count, times the world size, so the gradients DDP
        averages equal those of one process running the whole batch."""
        c, net, f, device = self.config, self.net, self.forecaster, self.device
        part, series = item
        if self.loaded != part:
            self.arrays, self.loaded = None, None  # one part in memory at a time
            self.arrays, self.loaded = self.parts[part].load(), part
        x, s_num, s_cat, lens, known, target, mask, base = self.arrays.batch(series, net.J, f._periods(), f._back())
        chunk_counts = [mask[:, c0 : c0 + c.chunk].sum() for c0 in range(0, x.shape[1], c.chunk)]
        if self.world > 1:  # this process's share of the batch
            mine = torch.arange(self.rank, len(series), self.world)
            x, s_num, s_cat, lens, known, target, mask, base = (t[mine] for t in (x, s_num, s_cat, lens, known,
                                                                                  target, mask, base))
        x, s_num, s_cat, known, target, mask, base = (t.to(device) for t in (x, s_num, s_cat, known, target, mask,
                                                                              base))
        state, total, weight, clipped = None, 0.0, 0.0, 0
        for ci, c0 in enumerate(range(0, len(chunk_counts) * c.chunk, c.chunk)):
            active = lens > c0  # series with steps left in this chunk
            idle = not bool(active.any())  # only with several processes: this share has ended, the batch has not
            if idle:
                active = torch.zeros_like(active)
                active[0] = True  # a stand-in row whose loss counts zero, to take part in DDP's all-reduce
            rows = active.nonzero().squeeze(1).to(device)
            sl = slice(c0, c0 + c.chunk)
            sub_len = (lens[active] - c0).clamp(min=1, max=x[:, sl].shape[1])  # on the CPU, as packing wants
            st = None if state is None or idle else take_rows(state, rows)
            b = base[rows, sl]  # (B', T', J, K)
            k = torch.cat([known[rows, sl], b.flatten(2)], dim=-1) if c.base_input else known[rows, sl]
            pred, new = self.step_net(x[rows, sl], s_num[rows], s_cat[rows], st, sub_len, k, b)
            m = mask[rows, sl] & (not idle)
            n = float(m.sum())
            loss = quantile_loss(pred, target[rows, sl], m, c.quantiles, c.loss)
            value = loss.item() * n  # this share's sum over its targets
            scale = n / max(float(chunk_counts[ci]), 1.0) * self.world
            self.opt.zero_grad()
            (loss * scale).backward()
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), c.clip_grad_norm or float("inf"))
            if not torch.isfinite(norm) or (self.world == 1 and not np.isfinite(value)):
                # (with several processes the gradients, so their norm, are the same on each: all stop here)
                if c.on_nonfinite == "error":
                    self._diverged(value, n)
                self.opt.zero_grad()  # "skip": no update from this batch, and the rest of it unread
                return total, weight, clipped, 1
            clipped += int(bool(c.clip_grad_norm) and norm > c.clip_grad_norm)
            self.opt.step()
            self.sched.step()
            self.step += 1
            if not idle:
                state = put_rows(state, rows, detach_state(new), len(lens))
                total, weight = total + value, weight + n
        return total, weight, clipped, 0

    def _diverged(self, value: float, n: float):
        what = f"the loss became {value / max(n, 1.0)}" if not np.isfinite(value) else "the gradient norm became " \
                                                                                       "non-finite"
        raise FloatingPointError(
            f"training diverged: {what} in epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1} of the epoch "
            f"(update {self.step + 1}); the weights are those before this update. Lower lr (now "
            f"{self.sched.get_last_lr()[0]:.3g}), choose a scaler, or check the data for extreme values")

    def _end_epoch(self) -> dict:
        p = self.partial
        if self.world > 1:
            p["loss_sum"], p["weight"] = distributed.all_sum([p["loss_sum"], p["weight"]], self.device)
        row = {"epoch": self.epoch + 1, "steps": self.step, "train_loss": p["loss_sum"] / max(p["weight"], 1.0),
               "lr": self.sched.get_last_lr()[0], "clipped": p["clipped"], "skipped": p.get("skipped", 0),
               "seconds": round(p["seconds"], 3)}
        if row["skipped"] and self.main:
            warnings.warn(f"epoch {row['epoch']}: skipped {row['skipped']} batch(es) whose loss or gradient was not "
                          f"finite (on_nonfinite='skip')", stacklevel=2)
        self.history.append(row)
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.partial = {"loss_sum": 0.0, "weight": 0.0, "clipped": 0, "skipped": 0, "seconds": 0.0}
        return row

    # checkpoints ----------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        if not self.main:
            return
        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                 "partial": self.partial, "history": self.history, "scheduler": self.sched.state_dict(),
                 "config": {k: v for k, v in vars(self.config).items()}}
        checkpoint.write(self.config.checkpoint_dir, self.step, self.net, self.opt, state,
                         {"rng": torch.get_rng_state()})

    def _resume(self) -> None:
        found = checkpoint.latest(self.config.checkpoint_dir, stacklevel=5)
        if found is None:
            return
        tensors, state, path = found
        checkpoint.restore(self.net, self.opt, tensors, state, repr(str(path)), self.device)
        self.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(tensors["rng"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.partial, self.history = state["partial"], state["history"]


class InMemory:
    """A panel's arrays as the one part of a run."""

    def __init__(self, arrays: SeriesArrays):
        self.arrays = arrays

    def lengths(self) -> np.ndarray:
        return self.arrays.lengths()

    def load(self) -> SeriesArrays:
        return self.arrays


class _Chunk(torch.nn.Module):
    """One chunk of the forecaster's network as a module, so that DDP can wrap it: inputs in, forecasts and the
    encoder's new state out."""

    def __init__(self, forecaster):
        super().__init__()
        self.net = forecaster.net_
        self.forecaster = forecaster

    def forward(self, x, static_num, static_cat, state, lengths, known, base):
        out, new = self.net.encode(self.forecaster._inputs(x, static_num, static_cat), state, lengths)
        return self.net.forecast(out, known) + base[..., None], new
