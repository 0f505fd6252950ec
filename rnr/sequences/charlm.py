"""Character language models: ``CharLM`` learns to predict the next character of any UTF-8 text.

Training reads the text as ``batch_size`` parallel streams (the text cut into that many contiguous pieces) in
chunks of ``seq_len`` characters. The recurrent state is carried, detached, from one chunk to the next, so the
model reads context beyond a chunk while gradients stop at its start (truncated BPTT); one update follows each
chunk. Losses are in nats per character; bits are nats / ln 2.

Example:
    >>> lm = CharLM(hidden_size=256, epochs=2).fit(text)
    >>> lm.evaluate(held_out)                                     # {"nats": ..., "bits": ..., "chars": ...}
    >>> lm.sample(200, prime="ROMEO:", temperature=0.8, top_p=0.9)
    >>> lm.beam_search(60, prime="ROMEO:", beam_width=5)
"""
import math
import os
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from rnr.base import RUN_OPTION_TABLE, Estimator, Option, check_options, model_params
from rnr.core.cells import CELLS
from rnr.core.checks import check_positive_int, trusted
from rnr.core.rnn import RNN, detach_state, take_rows
from rnr.training.core import CoreSettings, History, TrainingCore, adam, cosine_over_run, resolve_device
from rnr.weights import load_weights

UNKNOWN = ("error", "map")
UNK = "\ufffd"  # how an unknown character reads back when unknown="map"


class CharNet(nn.Module):
    """Embedding -> recurrent layers -> linear layer over the vocabulary, one prediction per character."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, cell: str,
                 dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = RNN(embedding_dim, hidden_size, cell=cell, num_layers=num_layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: Tensor, state=None):
        """ids (B, T) -> logits (B, T, V), the final state."""
        with trusted():  # embeddings of ids from the model's vocabulary, and the states it carries
            out, state = self.rnn(self.embedding(ids), state)
        return self.head(self.drop(out)), state


class CharLM(Estimator):
    """A character-level recurrent language model.

    Args:
        hidden_size, num_layers, cell, embedding_dim: the network (``CharNet``).
        dropout: on the recurrent outputs before the output layer, and between stacked layers, in training.
        seq_len: characters per chunk: gradients flow back at most this far; the state is carried further.
        batch_size: parallel streams.
        epochs, lr, weight_decay, clip_grad_norm: training with Adam(W); the learning rate follows a cosine from
            ``lr`` to 0 over the run. ``epochs=None`` (the default): as many passes as ``max_minutes`` allows, up
            to BUDGET_EPOCHS, the cosine over the budget, so a budget is spent rather than left idle; 10 without a
            budget.
        max_minutes: stop after this much training time (10 by default, a laptop's coffee break; None: no
            budget). Where the passes would not fit in it, the cosine schedule follows the share of time used, so a
            timed run still ends at a low learning rate (and its result depends on the machine's speed).
        unknown: characters the training text never had, met later by ``evaluate`` or as a prime: "error" (a
            ``ValueError`` naming the character) or "map" (read as one unknown symbol, printed as U+FFFD).
        random_state: the same random_state gives the same model (unless ``max_minutes`` ends the run).
        progress (keyword-only, like the run options after it): a progress bar per epoch; None: where standard
            error is a terminal.
        device: "cpu", "cuda" or "auto".
        on_nonfinite: a NaN or inf loss or gradient: "error" (stop, keeping the weights from before it) or "skip"
            (drop that chunk and go on); see ``rnr.training.core``.
        log_dir: write each epoch's metrics to ``log_dir/metrics.csv`` (and TensorBoard, when installed).
        checkpoint_dir, checkpoint_every, resume: a checkpoint after each epoch (and every ``checkpoint_every``
            chunks) with the streams' state, and continuing from the newest one to the same weights as a run never
            interrupted.

    Learned: ``vocab_`` (the characters; with unknown="map", index 0 is the unknown symbol), ``net_``
    (the ``CharNet``), ``history_`` (``rnr.History``: train_loss in nats, val_nats and val_bits when a validation
    text is given, lr, seconds).
    """

    OPTIONS = {
        "hidden_size": Option("int", 1), "num_layers": Option("int", 1), "cell": Option("choice", choices=CELLS),
        "embedding_dim": Option("int", 1), "dropout": Option("real", 0, 1, open_high=True),
        "seq_len": Option("int", 1), "batch_size": Option("int", 1), "epochs": Option("int", 1, none=True),
        "lr": Option("real", 0, open_low=True), "weight_decay": Option("real", 0),
        "clip_grad_norm": Option("real", 0, open_low=True, none=True),
        "max_minutes": Option("real", 0, open_low=True, none=True),
        "unknown": Option("choice", choices=UNKNOWN), "on_nonfinite": Option("choice", choices=("error", "skip")),
        "random_state": Option("seed"), "device": Option("any"), **RUN_OPTION_TABLE}

    def __init__(self, hidden_size: int = 512, num_layers: int = 1, cell: str = "lstm", embedding_dim: int = 64,
                 dropout: float = 0.2, seq_len: int = 128, batch_size: int = 64, epochs: int | None = None,
                 lr: float = 2e-3,
                 weight_decay: float = 0.0, clip_grad_norm: float | None = 1.0, max_minutes: float | None = 10.0,
                 unknown: str = "error", on_nonfinite: str = "error", random_state: int = 0, device: str = "cpu", *,
                 progress: bool | None = None, log_dir: str | None = None, checkpoint_dir: str | None = None,
                 checkpoint_every: int | None = None, resume: bool = False):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def _check_params(self) -> None:
        check_options(self)
        resolve_device(self.device)

    # learning -----------------------------------------------------------------------------------------------
    def fit(self, text, val_text=None) -> "CharLM":
        """Learn from ``text`` (a str, or a ``pathlib.Path`` to a UTF-8 file); report on ``val_text`` after each
        epoch and keep the weights of the best epoch by it. Returns self."""
        self._check_params()
        text = _read(text, "text")
        need = self.batch_size * 2 + 1
        if len(text) < need:
            raise ValueError(f"text must have at least batch_size * 2 + 1 = {need} characters to make "
                             f"{self.batch_size} streams, got {len(text)}; lower batch_size or give more text")
        counts = Counter(text)
        chars = sorted(counts)
        self.vocab_ = ([UNK] if self.unknown == "map" else []) + chars
        self.index_ = {c: i for i, c in enumerate(self.vocab_)}
        self.start_ = counts.most_common(1)[0][0] if "\n" not in counts else "\n"
        val_ids = None if val_text is None else self._encode(_read(val_text, "val_text"), "val_text")
        if self.epochs is not None:
            self.chosen_ = {}
        else:
            self.chosen_ = {"epochs": f"<= {BUDGET_EPOCHS} in max_minutes" if self.max_minutes else DEFAULT_EPOCHS}
        torch.manual_seed(self.random_state)
        device = resolve_device(self.device)
        self.net_ = CharNet(len(self.vocab_), self.embedding_dim, self.hidden_size, self.num_layers, self.cell,
                            self.dropout).to(device)
        ids = self._encode(text, "text")
        streams = ids[: len(ids) - 1 - (len(ids) - 1) % self.batch_size]
        x = streams.view(self.batch_size, -1).to(device)
        y = ids[1 : len(streams) + 1].view(self.batch_size, -1).to(device)
        self.history_ = train_charlm(self, x, y, val_ids)
        return self

    def _encode(self, text: str, what: str) -> Tensor:
        ids = [self.index_.get(c, -1) for c in text]
        if -1 in ids:
            i = ids.index(-1)
            if self.unknown == "error":
                c = text[i]
                raise ValueError(f"{what} holds {c!r} (U+{ord(c):04X}) at position {i}, a character the training "
                                 f"text never had; remove it, or create the model with unknown='map' to read unseen "
                                 f"characters as one unknown symbol")
            ids = [max(j, 0) for j in ids]  # index 0 is the unknown symbol
        return torch.tensor(ids, dtype=torch.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this CharLM is not fitted yet; call fit(text) first")

    @property
    def _device(self) -> torch.device:
        return self.net_.head.weight.device

    # scoring ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, text, streams: int = 16, context: int = 512) -> dict[str, float]:
        """Mean loss of predicting each character of ``text`` from the ones before it (all but the first).

        For speed the text is read as up to ``streams`` pieces in parallel; each piece after the first is preceded
        by the ``context`` characters before it, read but not scored, so that every character is predicted with
        at least that much history (``streams=1`` reads the text in one pass).

        Returns ``{"nats": per character, "bits": per character, "chars": characters scored}``.
        """
        self._check_fitted()
        check_positive_int(streams, "streams")
        ids = self._encode(_read(text, "text"), "text")
        if len(ids) < 2:
            raise ValueError(f"text must have at least 2 characters to score one prediction, got {len(ids)}")
        return self._score(ids, streams, context)

    @torch.no_grad()
    def _score(self, ids: Tensor, streams: int, context: int) -> dict[str, float]:
        n = len(ids) - 1  # predictions
        streams = min(streams, n)
        bounds = [round(n * k / streams) for k in range(streams + 1)]
        starts = [max(0, b - context) for b in bounds[:-1]]  # where each piece starts reading
        width = max(bounds[k + 1] - starts[k] for k in range(streams))
        x = torch.zeros(streams, width, dtype=torch.int64)
        y = torch.full((streams, width), -100, dtype=torch.int64)  # -100: not scored
        for k in range(streams):
            a, b = starts[k], bounds[k + 1]
            x[k, : b - a] = ids[a:b]
            y[k, bounds[k] - a : b - a] = ids[bounds[k] + 1 : b + 1]
        was_training = self.net_.training
        self.net_.eval()
        x, y = x.to(self._device), y.to(self._device)
        state, total = None, 0.0
        for s in range(0, width, 1024):
            logits, state = self.net_(x[:, s : s + 1024], state)
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1), y[:, s : s + 1024].flatten(),
                                                       ignore_index=-100, reduction="sum"))
        self.net_.train(was_training)
        nats = total / n
        return {"nats": nats, "bits": nats / math.log(2), "chars": n}

    # generation ---------------------------------------------------------------------------------------------
    def _prime(self, prime: str | None):
        """The state after reading the prime, and the logits for the character after it."""
        prime = self.start_ if prime is None or prime == "" else prime
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        ids = self._encode(prime, "prime").to(self._device)
        self.net_.eval()
        logits, state = self.net_(ids[None])
        return logits[:, -1], state

    @torch.no_grad()
    def sample(self, length: int = 500, prime: str | None = None, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None, progress: bool | None = False) -> str:
        """``length`` new characters following ``prime`` (default: a line break, or the most common character).

        temperature: divides the logits; below 1 is more conservative, 0 always takes the most likely character.
        top_k: draw only among the k most likely characters. top_p: only among the most likely characters whose
        probabilities add up to at least p (nucleus sampling). seed: the same seed gives the same text.
        progress: a bar over the characters (None: only on a terminal).
        """
        self._check_fitted()
        check_positive_int(length, "length")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise ValueError(f"temperature must be a number >= 0 (0: always the most likely), got {temperature!r}")
        if top_k is not None:
            check_positive_int(top_k, "top_k")
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                                  or not 0 < top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}; 0.9 keeps the characters making up 90% "
                             f"of the probability")
        Option("seed", none=True).check("seed", seed, "CharLM.sample")
        gen = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(2**31, ())))
        logits, state = self._prime(prime)
        out = []
        for _ in tqdm(range(length), desc="generating", unit="char", leave=False,
                      disable=None if progress is None else not progress):
            nxt = _draw(logits[0].float().cpu(), temperature, top_k, top_p, gen)
            out.append(nxt)
            logits, state = self.net_(torch.tensor([[nxt]], device=self._device), state)
            logits = logits[:, -1]
        return "".join(self.vocab_[i] for i in out)

    @torch.no_grad()
    def beam_search(self, length: int = 100, prime: str | None = None, beam_width: int = 5) -> str:
        """The ``length`` characters after ``prime`` with the highest total log-probability that a beam of
        ``beam_width`` hypotheses finds (``beam_width=1`` is greedy decoding)."""
        self._check_fitted()
        check_positive_int(length, "length")
        check_positive_int(beam_width, "beam_width")
        logits, state = self._prime(prime)
        scores = torch.zeros(1, device=self._device)
        paths = torch.zeros(1, 0, dtype=torch.int64, device=self._device)
        V = len(self.vocab_)
        for _ in range(length):
            total = (scores[:, None] + torch.log_softmax(logits.float(), -1)).flatten()
            scores, flat = total.topk(min(beam_width, total.numel()))
            rows, nxt = flat // V, flat % V
            paths = torch.cat([paths[rows], nxt[:, None]], 1)
            logits, state = self.net_(nxt[:, None], take_rows(state, rows))
            logits = logits[:, -1]
        return "".join(self.vocab_[i] for i in paths[0].tolist())

    # model files (rnr.save / rnr.load) ----------------------------------------------------------------------
    def _to_file(self) -> tuple[dict, dict]:
        self._check_fitted()
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        config = {"params": model_params(self), "vocab": self.vocab_, "start": self.start_,
                  "history": self.history_.rows, "chosen": getattr(self, "chosen_", {})}
        return tensors, config

    @classmethod
    def _from_file(cls, tensors: dict, config: dict, device="cpu") -> "CharLM":
        self = cls(**config["params"])
        self.chosen_ = config.get("chosen", {})  # none in files written before the choice was kept
        self.vocab_, self.start_ = list(config["vocab"]), config["start"]
        self.index_ = {c: i for i, c in enumerate(self.vocab_)}
        self.history_ = History(config["history"], monitor="val_nats" if config["history"] and
                                "val_nats" in config["history"][0] else "train_loss")
        self.net_ = CharNet(len(self.vocab_), self.embedding_dim, self.hidden_size, self.num_layers, self.cell,
                            self.dropout)
        load_weights(self.net_, {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, "the CharLM file")
        self.net_.to(device).eval()
        return self


class CharTask:
    """What the training core needs to train a ``CharLM``: the text's streams in chunks of ``seq_len``, one update per
    chunk, the recurrent state carried (detached) from chunk to chunk through an epoch and saved in checkpoints."""

    def __init__(self, lm: CharLM, x: Tensor, y: Tensor, val_ids: Tensor | None):
        self.lm, self.module, self.x, self.y, self.val_ids = lm, lm.net_, x, y, val_ids
        self.chunks = math.ceil(x.shape[1] / lm.seq_len)
        self.state = None  # the streams' state after the last chunk read; None at the start of an epoch

    def num_batches(self) -> int:
        return self.chunks

    def start_epoch(self, epoch: int) -> None:
        self.state = None

    def batches(self, epoch: int, start: int):
        return iter(range(start, self.chunks))

    def updates(self, c: int):
        L = self.lm.seq_len
        xs, ys = self.x[:, c * L : (c + 1) * L], self.y[:, c * L : (c + 1) * L]
        logits, state = self.module(xs, self.state)  # (B, T, V)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), ys.flatten())
        yield loss, ys.numel()
        self.state = detach_state(state)  # only after the update: a skipped chunk leaves the state as it was

    def validate(self) -> dict:
        if self.val_ids is None:
            return {}
        scores = self.lm._score(self.val_ids, 16, 512)
        return {"val_nats": scores["nats"], "val_bits": scores["bits"]}

    def carried(self) -> dict:
        if self.state is None:
            return {}
        return {"h": self.state[0], "c": self.state[1]} if isinstance(self.state, tuple) else {"h": self.state}

    def restore(self, tensors: dict) -> None:
        self.state = None if not tensors else (tensors["h"], tensors["c"]) if "c" in tensors else tensors["h"]


DEFAULT_EPOCHS = 10  # epochs=None without max_minutes
BUDGET_EPOCHS = 100  # epochs=None with max_minutes: at most this many passes, fewer where the budget ends first


def train_charlm(lm: CharLM, x: Tensor, y: Tensor, val_ids: Tensor | None) -> History:
    """Train ``lm.net_`` with AdamW and a cosine learning rate over the run (or over the time budget, whichever is
    further along), on the training core."""
    task = CharTask(lm, x, y, val_ids)
    opt = adam(lm.net_.parameters(), decoupled=True, lr=lm.lr, weight_decay=lm.weight_decay)
    # epochs=None with a budget: passes until the budget ends, the learning rate following the time used alone
    epochs = lm.epochs or (BUDGET_EPOCHS if lm.max_minutes else DEFAULT_EPOCHS)
    sched = cosine_over_run(task.chunks * epochs, lm.max_minutes)
    settings = CoreSettings(
        epochs=epochs, clip_grad_norm=lm.clip_grad_norm, on_nonfinite=lm.on_nonfinite, seed=lm.random_state,
        max_minutes=lm.max_minutes, stop_inside_epoch=True, keep_best=val_ids is not None,
        monitor="val_nats" if val_ids is not None else "train_loss", scheduler_step="update", progress=lm.progress,
        log_dir=lm.log_dir, checkpoint_dir=lm.checkpoint_dir, checkpoint_every=lm.checkpoint_every, resume=lm.resume,
        device=lm.device, rows_per_step=lm.batch_size,
        hint="set clip_grad_norm, or check the text")
    core = TrainingCore(task, opt, settings, sched, config=model_params(lm),
                        resume_keys=("batch_size", "seq_len", "random_state"))
    return core.run()


def _read(text, name: str) -> str:
    """A str as it is; a path (``pathlib.Path`` or other ``os.PathLike``) read as UTF-8."""
    if isinstance(text, os.PathLike):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no file at {str(path)!r}")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name}: {str(path)!r} is not UTF-8 text (byte {e.start}: {e.reason}); convert it, "
                             f"e.g. with iconv -t utf-8") from None
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str or a pathlib.Path to a UTF-8 file, got {type(text).__name__}")
    return text


def _draw(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, gen) -> int:
    """One token id from logits (V,) with temperature, top-k and top-p (nucleus) filtering."""
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        kth = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1:
        probs, order = torch.softmax(logits, -1).sort(descending=True)
        before = probs.cumsum(0) - probs  # probability of the more likely characters
        logits[order[before >= top_p]] = -math.inf  # keeps the smallest set reaching top_p (at least one)
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
