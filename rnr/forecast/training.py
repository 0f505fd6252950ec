"""The training run of ``RNNForecaster.fit``: truncated BPTT over batches of series, on the training core.

Series are sorted by length and cut into batches of ``batch_size`` (similar lengths waste little padding); each
epoch visits the batches in an order drawn from ``(random_state, epoch)``. A batch is read in chunks of ``chunk`` steps,
one Adam update per chunk, the encoder state carried (detached) from chunk to chunk; the learning rate follows a
cosine to 0 over every update of the run (or over the time budget ``max_minutes``, where that is further along).
Clipping, the guard against NaN and inf, checkpoints and exact resume, Ctrl-C, logs and the process group of
``torchrun`` are the core's (``rnr.training.core``).

With several processes each one runs every ``world``-th series of a global batch; each chunk's loss is the sum over
this process's targets divided by the whole batch's count, times the world size, so the gradients DDP averages
equal those of one process running the whole batch.
"""
import collections

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from rnr.core.rnn import detach_state, put_rows, take_rows
from rnr.forecast import smoothing
from rnr.forecast.defaults import epochs_for
from rnr.forecast.net import SeriesArrays, quantile_loss
from rnr.training.core import CoreSettings, TrainingCore, adam, cosine_over_run


def train_forecaster(forecaster, parts) -> tuple[list[dict], bool]:
    """Train ``forecaster.net_`` over the parts of a panel; returns (history rows, interrupted). The net ends on the
    CPU, in eval mode."""
    c = forecaster.config
    task = ForecastTask(forecaster, parts)
    if c.epochs is None:  # as long as the data asks (rnr.forecast.defaults)
        forecaster.chosen_["epochs"] = epochs_for(task.updates_per_epoch)
    epochs = forecaster.chosen_.get("epochs", c.epochs)
    forecaster.chosen_["updates"] = task.updates_per_epoch * epochs
    opt = adam(forecaster.net_.parameters(), lr=c.lr)
    networks = c.ensemble * len(getattr(c, "bases", None) or (c.relative_to,))
    budget = c.max_minutes / networks if c.max_minutes else None  # an equal share for each network
    sched = cosine_over_run(task.updates_per_epoch * epochs, budget)
    settings = CoreSettings(
        epochs=epochs, clip_grad_norm=c.clip_grad_norm, on_nonfinite=c.on_nonfinite, seed=c.random_state,
        max_minutes=budget, stop_inside_epoch=True, scheduler_step="update", progress=c.progress, log_dir=c.log_dir,
        checkpoint_dir=c.checkpoint_dir,
        checkpoint_every=c.checkpoint_every, resume=c.resume, device=c.device, distributed=True, threads=c.threads,
        rows_per_step=c.batch_size,
        hint="choose a scaler, or check the data for extreme values")
    core = TrainingCore(task, opt, settings, sched, config=dict(vars(c)))
    history = core.run()
    forecaster.net_.to("cpu")
    forecaster.snapshots_ = list(task.snapshots)[:-1]  # the last epoch's weights are the net itself
    return history.rows, history.interrupted


class ForecastTask:
    """What the training core needs to train the forecaster: batches of whole series, one update per chunk."""

    def __init__(self, forecaster, parts):
        c = self.config = forecaster.config
        self.forecaster, self.module = forecaster, forecaster.net_
        self.parts = [InMemory(p) if isinstance(p, SeriesArrays) else p for p in parts]
        self.arrays, self.loaded = None, None  # the part in memory, and its number
        self.batches_, self.updates_per_epoch = [], 0  # (part, series of the part), sorted by length in each part
        for p, part in enumerate(self.parts):
            lengths = part.lengths()
            order = np.argsort(lengths, kind="stable")  # batches of similar lengths waste little on padding
            for i in range(0, len(order), c.batch_size):
                self.batches_.append((p, order[i : i + c.batch_size]))
                self.updates_per_epoch += -(-int(lengths[order[i : i + c.batch_size]].max()) // c.chunk)
        self.device, self.rank, self.world = torch.device("cpu"), 0, 1
        self.step_net = _Chunk(forecaster)
        self.periods, self.back = forecaster._periods(), forecaster._back()  # read once: config is rebuilt per call
        # snapshots=k: the weights after each of the last k epochs, whose forecasts predict averages
        self.snapshots = collections.deque(maxlen=max(1, c.snapshots))

    def end_epoch(self, history) -> None:
        if self.snapshots.maxlen > 1:
            self.snapshots.append({k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()})

    def setup(self, core) -> None:
        self.device, self.rank, self.world = core.device, core.rank, core.world
        if self.world > 1:
            self.step_net = DistributedDataParallel(self.step_net)

    def teardown(self) -> None:
        self.step_net = _Chunk(self.forecaster)  # DDP's wrapper and its reducer are released here

    def num_batches(self) -> int:
        return len(self.batches_)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's order of the batches: the parts in a random order, each part's batches shuffled (so a part
        read from disk is read once an epoch)."""
        rng = np.random.default_rng([self.config.random_state, epoch])
        of_part = [np.array([i for i, (q, _) in enumerate(self.batches_) if q == p], dtype=np.int64)
                   for p in range(len(self.parts))]
        return np.concatenate([of_part[p][rng.permutation(len(of_part[p]))] for p in rng.permutation(len(of_part))])

    def batches(self, epoch: int, start: int):
        for bi in self.order(epoch)[start:]:
            yield self.batches_[bi]

    def validate(self) -> dict:
        return {}

    def updates(self, item: tuple[int, np.ndarray]):
        """One global batch of series, chunk by chunk: yields (loss, this process's targets, backward scale)."""
        c, net, device = self.config, self.module, self.device
        part, series = item
        if self.loaded != part:
            self.arrays, self.loaded = None, None  # one part in memory at a time
            self.arrays, self.loaded = self.parts[part].load(), part
        # the direct head looks the seasonal features of the steps ahead up by phase (ForecastNet.forecast)
        tables = net.J > 1 and net.n_season > 0
        x, s_num, s_cat, lens, known, target, mask, base, *tix = self.arrays.batch(series, net.J, self.periods,
                                                                                   self.back, phases=tables)
        tix = tix[0] if tables else None
        chunk_counts = [mask[:, c0 : c0 + c.chunk].sum() for c0 in range(0, x.shape[1], c.chunk)]
        if self.world > 1:  # this process's share of the batch
            mine = torch.arange(self.rank, len(series), self.world)
            x, s_num, s_cat, lens, known, target, mask, base = (t[mine] for t in (x, s_num, s_cat, lens, known,
                                                                                  target, mask, base))
            tix = None if tix is None else tix[mine]
        x, s_num, s_cat, known, target, mask, base = (t.to(device) for t in (x, s_num, s_cat, known, target, mask,
                                                                              base))
        tix = None if tix is None else tix.to(device)
        ids = torch.as_tensor(series, dtype=torch.int64)  # the series' rows of per-series parameters
        if self.world > 1:
            ids = ids[mine]
        state, smooth = None, None
        for ci, c0 in enumerate(range(0, len(chunk_counts) * c.chunk, c.chunk)):
            active = lens > c0  # series with steps left in this chunk
            idle = not bool(active.any())  # only with several processes: this share has ended, the batch has not
            if idle:
                active = torch.zeros_like(active)
                active[0] = True  # a stand-in row whose loss counts zero, to take part in DDP's all-reduce
            every = not idle and bool(active.all())  # the common case: views of the batch, no row copies
            rows = None if every else active.nonzero().squeeze(1).to(device)
            sl = slice(c0, c0 + c.chunk)
            pick = (lambda t: t[:, sl]) if every else (lambda t: t[rows, sl])  # noqa: E731 - this chunk's rows
            sub_len = (lens[active] - c0).clamp(min=1, max=x[:, sl].shape[1])  # on the CPU, as packing wants
            st = None if state is None or idle else state if every else take_rows(state, rows)
            sm = None if smooth is None or idle else smooth if every else smooth[rows]
            b = pick(base)  # (B', T', J, K)
            k = torch.cat([pick(known), b.flatten(2)], dim=-1) if c.base_input else pick(known)
            pred, tgt, ok, penalty, new, smooth_new = self.step_net(
                pick(x), s_num if every else s_num[rows], s_cat if every else s_cat[rows], st, sub_len, k, b,
                pick(target), (ids if every else ids[rows.cpu()]).to(device), sm, None if tix is None else pick(tix))
            m = pick(mask) & (not idle)
            if ok is not None:
                m = m & ok  # smoothing: targets before the level exists are not targets
            n = float(m.sum())
            loss = quantile_loss(pred, tgt, m, c.quantiles, c.loss)
            if penalty is not None and not idle:
                # the level penalty per target, as the loss is: J level steps per step's J targets, so that the
                # processes of a distributed run add up to one process on the whole batch
                loss = loss + smoothing.LEVEL_PENALTY * net.J * penalty / max(n, 1.0)
            yield loss, n, n / max(float(chunk_counts[ci]), 1.0) * self.world
            if every:
                state, smooth = detach_state(new), None if smooth_new is None else smooth_new.detach()
            elif not idle:
                state = put_rows(state, rows, detach_state(new), len(lens))
                if smooth_new is not None:
                    smooth = _put(smooth, rows, smooth_new.detach(), len(lens))


def _put(state, rows, new, size: int):
    """Batch-first rows of a smoothing state replaced (a zero state of ``size`` rows when state is None)."""
    out = new.new_zeros(size, *new.shape[1:]) if state is None else state.clone()
    out[rows] = new
    return out


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

    def forward(self, x, static_num, static_cat, state, lengths, known, base, target, series, smooth, tix=None):
        """Forecasts, the targets they are scored against, which of those count (None: all), the smoothing's level
        penalty's sum over this chunk's level steps (None without smoothing), the encoder's state and the smoothing's
        state (None without). ``tix``: each step's time index where ``known`` leaves the seasonal features out."""
        net, f = self.net, self.forecaster
        if net.smoothing is None:
            out, new = net.encode(f._inputs(x, static_num, static_cat), state, lengths)
            return net.forecast(out, known, tix) + base[..., None], target, None, None, new, None
        K = target.shape[-1]
        feats, levels, seasons, started, wiggle, _, smooth_new = net.smoothing(x[..., :K], series, smooth, lengths)
        out, new = net.encode(f._inputs(torch.cat([feats, x[..., K:]], dim=-1), static_num, static_cat), state,
                              lengths)
        pred = net.forecast(out, known, tix)
        ok = started[:, :, None] & (target > 0)
        log_level = torch.where(started, levels, 1.0).log()[:, :, None]  # (B, T, 1, K)
        log_expected = log_level + net.smoothing.log_factors(seasons, net.J)  # (B, T, J, K)
        scale = net.smoothing.scale[series][:, None, None]  # (B, 1, 1, K): in units of the series' log changes
        log_target = torch.where(ok, (torch.where(ok, target, 1.0).log() - log_expected) / scale, 0.0)
        return pred, log_target, ok, wiggle, new, smooth_new
