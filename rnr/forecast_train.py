"""The training run of ``RNNForecaster.fit``: truncated BPTT over batches of series, checkpoints, resume, logs.

Series are sorted by length and cut into batches of ``batch_size`` (similar lengths waste little padding); each
epoch visits the batches in an order drawn from ``(seed, epoch)``. A batch is read in chunks of ``chunk`` steps,
one Adam update per chunk, the encoder state carried (detached) from chunk to chunk; the learning rate follows a
cosine to 0 over every update of the run.

With ``checkpoint_dir`` the run writes a checkpoint after every epoch (and every ``checkpoint_every`` batches), and
``resume=True`` continues from the newest good one to the same weights as a run never interrupted. A Ctrl-C inside
``rnr.logs.graceful_stop()`` ends the run after the batch it is in, with a checkpoint.
"""
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from rnr import checkpoint
from rnr.forecast_net import SeriesArrays, quantile_loss
from rnr.logs import MetricsLog, stop_requested
from rnr.rnn import detach_state, put_rows, take_rows


class ForecastTraining:
    """One run; ``RNNForecaster._train`` builds it and calls ``run()``, which returns the history rows."""

    def __init__(self, forecaster, arrays: SeriesArrays):
        c = self.config = forecaster.config
        self.forecaster, self.arrays, self.net = forecaster, arrays, forecaster.net_
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if c.device == "auto"
                                   else c.device)
        self.net.to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        lengths = arrays.lengths()
        order = np.argsort(lengths, kind="stable")
        self.batches = [order[i : i + c.batch_size] for i in range(0, len(order), c.batch_size)]
        steps_per_epoch = sum(-(-int(lengths[b].max()) // c.chunk) for b in self.batches)
        total = max(1, steps_per_epoch * c.epochs)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.partial = {"loss_sum": 0.0, "weight": 0.0, "clipped": 0, "seconds": 0.0}
        self.history: list[dict] = []
        self.interrupted = False

    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.batches))

    def run(self) -> list[dict]:
        c, net = self.config, self.net
        if c.resume and c.checkpoint_dir:
            self._resume()
        log = MetricsLog(c.log_dir, rows=self.history) if c.log_dir else None
        net.train()
        while self.epoch < c.epochs and not self.interrupted:
            start = time.perf_counter() - self.partial["seconds"]
            order = self.order(self.epoch)
            bar = tqdm(order[self.batch_in_epoch :], desc=f"epoch {self.epoch + 1}/{c.epochs}",
                       disable=not c.progress, leave=False, total=len(order), initial=self.batch_in_epoch)
            for bi in bar:
                loss, weight, clipped = self._batch(self.batches[bi])
                p = self.partial
                p["loss_sum"], p["weight"], p["clipped"] = p["loss_sum"] + loss, p["weight"] + weight, \
                    p["clipped"] + clipped
                self.batch_in_epoch += 1
                bar.set_postfix(loss=f"{loss / max(weight, 1.0):.4f}")
                if stop_requested():
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

    def _batch(self, series: np.ndarray) -> tuple[float, float, int]:
        """One batch of series, chunk by chunk; returns (loss x weight, weight, clipped updates)."""
        c, net, f, device = self.config, self.net, self.forecaster, self.device
        x, s_num, s_cat, lens, known, target, mask, base = self.arrays.batch(series, net.J, f._periods(), f._back())
        x, s_num, s_cat, known, target, mask, base = (t.to(device) for t in (x, s_num, s_cat, known, target, mask,
                                                                              base))
        state, total, weight, clipped = None, 0.0, 0.0, 0
        for c0 in range(0, x.shape[1], c.chunk):
            rows = (lens > c0).nonzero().squeeze(1).to(device)  # series with steps left in this chunk
            sl = slice(c0, c0 + c.chunk)
            sub_len = (lens[lens > c0] - c0).clamp(max=x[:, sl].shape[1])  # on the CPU, as packing wants
            st = None if state is None else take_rows(state, rows)
            out, new = net.encode(f._inputs(x[rows, sl], s_num[rows], s_cat[rows]), st, sub_len)
            b = base[rows, sl]  # (B', T', J, K)
            k = torch.cat([known[rows, sl], b.flatten(2)], dim=-1) if c.base_input else known[rows, sl]
            pred = net.forecast(out, k) + b[..., None]
            loss = quantile_loss(pred, target[rows, sl], mask[rows, sl], c.quantiles, c.loss)
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(
                    f"training diverged: the loss became {value} in epoch {self.epoch + 1}, batch "
                    f"{self.batch_in_epoch + 1}; lower lr (now {self.sched.get_last_lr()[0]:.3g}), choose a scaler, "
                    f"or check the data for extreme values")
            self.opt.zero_grad()
            loss.backward()
            if c.clip_grad_norm:
                norm = torch.nn.utils.clip_grad_norm_(net.parameters(), c.clip_grad_norm)
                clipped += int(norm > c.clip_grad_norm)
            self.opt.step()
            self.sched.step()
            self.step += 1
            state = put_rows(state, rows, detach_state(new), len(series))
            n = float(mask[rows, sl].sum())
            total, weight = total + value * n, weight + n
        return total, weight, clipped

    def _end_epoch(self) -> dict:
        p = self.partial
        row = {"epoch": self.epoch + 1, "steps": self.step, "train_loss": p["loss_sum"] / max(p["weight"], 1.0),
               "lr": self.sched.get_last_lr()[0], "clipped": p["clipped"], "seconds": round(p["seconds"], 3)}
        self.history.append(row)
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.partial = {"loss_sum": 0.0, "weight": 0.0, "clipped": 0, "seconds": 0.0}
        return row

    # checkpoints ----------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
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
