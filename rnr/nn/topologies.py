"""The five input/output topologies of a recurrent network, all built on ``rnr.RNN``.

=================  ============================  =========================================================
topology           shapes                        example
=================  ============================  =========================================================
``OneToOne``       (B, I) -> (B, O)              XOR; a single step of the recurrence
``OneToMany``      (B, I) -> (B, T, O)           a vector to a sequence: a caption, a fixed pattern
``ManyToOne``      (B, T, I) -> (B, O)           sentiment of a sentence, the sum of a sequence
``EncoderDecoder`` (B, S, I) -> (B, T, O)        translation, reversing a sequence (S and T differ)
``ManyToManySync`` (B, T, I) -> (B, T, O)        next-step forecasts, character language models
=================  ============================  =========================================================

Every topology takes any cell (``cell="elman" | "lstm" | "gru" | "mingru" | "minlstm"``), has a regression head
(MSE or MAE) or a classification head (cross-entropy over O classes), masks padded steps out of its loss, and
offers ``loss(batch)`` and ``metrics(batch)`` for ``rnr.fit``. Sequence inputs may be integer tokens when
``vocab_size`` is given (an embedding of width ``input_size`` reads them).
"""
import torch
from torch import Tensor, nn

from rnr.core.checks import (
    check_finite,
    check_float,
    check_lengths,
    check_positive_int,
    check_probability,
    check_sequence,
    check_tensor,
    check_tokens,
    trusted,
)
from rnr.core.rnn import RNN, step_mask
from rnr.data.sequences import Batch
from rnr.nn.augment import Augment
from rnr.nn.conv import ConvFront
from rnr.nn.decoder import Decoder
from rnr.nn.losses import check_loss, masked_loss

_DEFAULTS = dict(hidden_size=64, cell="elman", nonlinearity="tanh", num_layers=1, bidirectional=False, dropout=0.0,
                 task="regression", loss=None, vocab_size=None, pooling="last", steps=None, eos=None,
                 teacher_forcing=1.0, max_steps=100, attention=None, embedding_dropout=0.0,
                 tie_embeddings=False, conv=False, stride=1, augment=False)


class Topology(nn.Module):
    """Shared plumbing: configuration, the input reader, the loss and the metrics."""

    sequence_input = True  # False: x is one vector per example

    def __init__(self, config: dict):
        super().__init__()
        config = {k: v for k, v in config.items() if k not in ("self", "__class__")}
        self.config = config  # the constructor's arguments, enough to rebuild the model (rnr.save)
        self.input_size = check_positive_int(config["input_size"], "input_size")
        self.output_size = check_positive_int(config["output_size"], "output_size")
        self.task = config["task"]
        self.loss_kind = check_loss(self.task, config["loss"])
        vocab = config.get("vocab_size")
        if vocab is not None and not self.sequence_input:
            raise ValueError(f"vocab_size applies to sequence inputs only, not to {type(self).__name__}")
        self.embedding = None if vocab is None else nn.Embedding(check_positive_int(vocab, "vocab_size"),
                                                                 self.input_size)
        self.embedding_dropout = nn.Dropout(check_probability(config.get("embedding_dropout", 0.0),
                                                              "embedding_dropout"))

    def read(self, x, lengths=None) -> tuple[Tensor, Tensor | None]:
        """Check x and lengths; embed tokens. Returns (B, T, I) floats and CPU lengths (or None)."""
        if self.embedding is not None:
            x = self.embedding_dropout(self.embedding(check_tokens(x, self.embedding.num_embeddings)))
        else:
            check_sequence(x, self.input_size)
        return x, check_lengths(lengths, x.shape[0], x.shape[1])

    def read_vector(self, x) -> Tensor:
        check_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must have shape (batch, {self.input_size}): one vector per example, got "
                             f"{tuple(x.shape)}; for sequences use ManyToOne or ManyToManySync")
        check_float(x, "x", tokens_hint=False)  # vector inputs take no vocab_size
        check_finite(x, "x")  # on x itself, so that the index it reports is x's
        return x

    def _rnn(self, input_size: int | None = None, bidirectional: bool | None = None) -> RNN:
        c = self.config
        return RNN(input_size or self.input_size, c["hidden_size"], cell=c["cell"], nonlinearity=c["nonlinearity"],
                   num_layers=c["num_layers"], dropout=c["dropout"],
                   bidirectional=c["bidirectional"] if bidirectional is None else bidirectional)

    def loss(self, batch: Batch) -> Tensor:
        pred, mask = self._predict_batch(batch)
        return masked_loss(self.loss_kind, pred, batch.y, mask)

    @torch.no_grad()
    def metrics(self, batch: Batch) -> dict[str, float]:
        """Mean loss (and accuracy for classification) over the batch's real targets."""
        pred, mask = self._predict_batch(batch)
        out = {"loss": float(masked_loss(self.loss_kind, pred, batch.y, mask))}
        if self.task == "classification":
            hit = (pred.argmax(-1) == batch.y).float()
            out["accuracy"] = float(hit.mean() if mask is None else (hit * mask).sum() / mask.sum())
        return out

    def _predict_batch(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def __repr__(self) -> str:
        c = self.config
        s = f"{type(self).__name__}({c['cell']}, {c['input_size']} -> {c['hidden_size']} -> {c['output_size']}"
        for k, v in c.items():
            if k not in ("input_size", "output_size", "hidden_size", "cell") and _DEFAULTS.get(k, object()) != v:
                s += f", {k}={getattr(v, '__name__', v)!r}" if isinstance(v, str) or callable(v) else f", {k}={v}"
        return s + ")"


class OneToOne(Topology):
    """One vector in, one value or class out, through a single recurrent step: ``y = b_o + phi(b_h + x W_x) W_o``."""

    sequence_input = False

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, cell: str = "elman",
                 nonlinearity="tanh", num_layers: int = 1, dropout: float = 0.0, task: str = "regression",
                 loss: str | None = None):
        super().__init__(dict(locals(), bidirectional=False))
        self.rnn = self._rnn()
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.read_vector(x)
        with trusted():  # x checked by read_vector: the layer need not scan it again
            out, _ = self.rnn(x[:, None])  # (B, 1, H)
        return self.head(out[:, 0])  # (B, O)

    def _predict_batch(self, batch):
        return self(batch.x), None


class ManyToOne(Topology):
    """A sequence in, one value or class out, read from each sequence's last real step or a pooling of its steps.

    pooling: "last" (the final state of each direction: the forward one at each sequence's last real step, the
    backward one at its first step), "mean" or "max" over the real steps of the top layer's outputs.
    dropout: between stacked layers and on the pooled features, in training. embedding_dropout: on the token
    embeddings (with ``vocab_size``), in training.
    conv: convolutions read the sequence before the recurrence (``rnr.nn.conv.ConvFront``, LSTM-FCN's front end);
    stride: the recurrence then reads every stride-th of their steps.
    augment: in training, each batch is seen through a random window, gain and noise (``rnr.nn.augment.Augment``);
    numeric inputs only.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, cell: str = "elman",
                 nonlinearity="tanh", num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 task: str = "regression", loss: str | None = None, vocab_size: int | None = None,
                 pooling: str = "last", embedding_dropout: float = 0.0, conv: bool = False, stride: int = 1,
                 augment: bool = False):
        super().__init__(locals())
        if pooling not in ("last", "mean", "max"):
            raise ValueError(f"pooling must be 'last', 'mean' or 'max', got {pooling!r}")
        if not isinstance(conv, bool):
            raise TypeError(f"conv must be True or False, got {conv!r}")
        if stride != 1 and not conv:
            raise ValueError(f"stride applies to the convolutional front end: pass conv=True, or stride=1 (got "
                             f"{stride!r})")
        if augment and vocab_size is not None:
            raise ValueError("augment applies to numeric sequences, not to token ids (vocab_size is set): pass "
                             "augment=False")
        self.pooling = pooling
        self.augment = Augment() if augment else None
        self.front = ConvFront(input_size, stride=stride) if conv else None
        self.rnn = self._rnn(self.front.output_size if conv else None)
        self.pooled_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.rnn.num_directions, output_size)

    def forward(self, x: Tensor, lengths=None) -> Tensor:
        x, lengths = self.read(x, lengths)
        if self.augment is not None:
            x, lengths = self.augment(x, lengths)  # changes x in training only
        if self.front is not None:
            x, lengths = self.front(x, lengths)  # (B, T', C)
        with trusted():  # x checked by read (or made from it by the front end): the layer need not scan it again
            out, h_n = self.rnn(x, lengths=lengths)  # (B, T, D*H)
        if self.pooling == "last":
            h = h_n[0] if isinstance(h_n, tuple) else h_n
            D = self.rnn.num_directions
            pooled = torch.cat(list(h[-D:]), dim=-1)  # (B, D*H): the top layer's final state(s)
        else:
            mask = step_mask(lengths, x.shape[1], x.device)
            if self.pooling == "mean":
                n = torch.full((x.shape[0], 1), x.shape[1]) if lengths is None else lengths[:, None]
                pooled = out.sum(1) / n.to(out)  # padded outputs are zero
            else:
                pooled = out if mask is None else out.masked_fill(~mask[..., None], float("-inf"))
                pooled = pooled.max(1).values
        return self.head(self.pooled_dropout(pooled))  # (B, O)

    def _predict_batch(self, batch):
        return self(batch.x, batch.x_lengths), None


class ManyToManySync(Topology):
    """An output at every step, ``y_t = b_o + h_t W_o``; zero past each sequence's end and masked from the loss.

    ``forward(x, lengths, state, return_state=True)`` carries the recurrent state across calls, for truncated
    BPTT over long streams and for step-by-step prediction (unidirectional models only).
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, cell: str = "elman",
                 nonlinearity="tanh", num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 task: str = "regression", loss: str | None = None, vocab_size: int | None = None,
                 embedding_dropout: float = 0.0):
        super().__init__(locals())
        self.rnn = self._rnn()
        self.head = nn.Linear(hidden_size * self.rnn.num_directions, output_size)

    def forward(self, x: Tensor, lengths=None, state=None, return_state: bool = False):
        if state is not None and self.rnn.bidirectional:
            raise ValueError("state cannot be carried by a bidirectional model: its backward direction reads the "
                             "future; use bidirectional=False for streaming or truncated BPTT")
        x, lengths = self.read(x, lengths)
        out, h_n = self.rnn(x, state, lengths=lengths)  # (B, T, D*H)
        y = self.head(out)  # (B, T, O)
        mask = step_mask(lengths, x.shape[1], x.device)
        if mask is not None:
            y = y * mask[..., None]
        return (y, h_n) if return_state else y

    def loss_and_state(self, batch: Batch, state=None):
        """Loss of one chunk of a stream and the state after it (for truncated BPTT)."""
        y, state = self(batch.x, batch.x_lengths, state, return_state=True)
        mask = step_mask(batch.x_lengths, batch.x.shape[1], y.device)
        return masked_loss(self.loss_kind, y, batch.y, mask), state

    def _predict_batch(self, batch):
        return self(batch.x, batch.x_lengths), step_mask(batch.x_lengths, batch.x.shape[1], batch.y.device)


class OneToMany(Topology):
    """A vector in, a sequence out: x sets the decoder's initial state, and each step reads the previous output.

    ``forward(x, target=None, steps=None)`` scores a sequence (teacher forcing with probability
    ``teacher_forcing`` per step when a target is given); ``generate(x, steps=None, beam_size=1)`` produces one,
    for classification until ``eos`` (the stop token) or ``max_steps``.
    """

    sequence_input = False

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, cell: str = "elman",
                 nonlinearity="tanh", num_layers: int = 1, dropout: float = 0.0, task: str = "regression",
                 loss: str | None = None, steps: int | None = None, eos: int | None = None,
                 teacher_forcing: float = 1.0, max_steps: int = 100):
        super().__init__(dict(locals(), bidirectional=False))
        self.decoder = Decoder(self, context_size=None)
        self.bridge = nn.Linear(input_size, num_layers * hidden_size)

    def _init_state(self, x: Tensor):
        B, L = x.shape[0], self.config["num_layers"]
        h = torch.tanh(self.bridge(x)).view(B, L, -1).transpose(0, 1).contiguous()  # (L, B, H)
        return (h, torch.zeros_like(h)) if self.config["cell"] == "lstm" else h

    def forward(self, x: Tensor, target: Tensor | None = None, steps: int | None = None,
                teacher_forcing: float | None = None) -> Tensor:
        x = self.read_vector(x)
        return self.decoder.score(self._init_state(x), None, target, steps, teacher_forcing)

    def generate(self, x: Tensor, steps: int | None = None, beam_size: int = 1) -> tuple[Tensor, Tensor]:
        """(values (B, T, O) or token ids (B, T), lengths (B,) before each stop token)."""
        x = self.read_vector(x)
        return self.decoder.generate(self._init_state(x), None, steps, beam_size)

    def _predict_batch(self, batch):
        pred = self(batch.x, target=batch.y)
        return pred, step_mask(batch.y_lengths, pred.shape[1], pred.device)


class EncoderDecoder(Topology):
    """A sequence in, another sequence out, of a different length (many-to-many delayed).

    The encoder (optionally bidirectional) reads the whole input; its final states, through a linear bridge,
    start the decoder, which emits one output per step reading its previous output (teacher forcing with
    probability ``teacher_forcing`` in training). ``attention="dot" | "additive"`` lets every decoder step also
    read a weighted mix of all encoder outputs (Luong et al. 2015; Bahdanau et al. 2015).
    ``embedding_dropout`` zeroes token embeddings (source tokens with ``vocab_size``, and the decoder's previous
    tokens) with that probability in training. ``tie_embeddings`` (classification): the output layer is the
    decoder's token embedding, read through a ``tanh`` projection of ``[h_t; c_t]`` (Luong et al. 2015's
    attentional state; Press & Wolf 2017): fewer weights, and much less work when the vocabulary is large.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, cell: str = "elman",
                 nonlinearity="tanh", num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 task: str = "regression", loss: str | None = None, vocab_size: int | None = None,
                 eos: int | None = None, teacher_forcing: float = 1.0, max_steps: int = 100,
                 attention: str | None = None, embedding_dropout: float = 0.0, tie_embeddings: bool = False):
        super().__init__(locals())
        self.encoder = self._rnn()
        D = self.encoder.num_directions
        self.bridge = nn.Linear(D * hidden_size, hidden_size)
        self.decoder = Decoder(self, context_size=D * hidden_size if attention else None)

    def encode(self, x, lengths=None):
        """Encoder outputs (B, S, D*H), the decoder's initial state and the source mask."""
        x, lengths = self.read(x, lengths)
        with trusted():  # x checked by read: the encoder need not scan it again
            out, h_n = self.encoder(x, lengths=lengths)
        L, D = self.config["num_layers"], self.encoder.num_directions

        def bridge(h):  # (L*D, B, H) -> (L, B, H), both directions of a layer mixed
            h = h.view(L, D, h.shape[1], -1).permute(0, 2, 1, 3).reshape(L, h.shape[1], -1)
            return torch.tanh(self.bridge(h))

        state = (bridge(h_n[0]), bridge(h_n[1])) if isinstance(h_n, tuple) else bridge(h_n)
        return out, state, step_mask(lengths, x.shape[1], x.device)

    def forward(self, x: Tensor, lengths=None, target: Tensor | None = None, steps: int | None = None,
                teacher_forcing: float | None = None) -> Tensor:
        out, state, mask = self.encode(x, lengths)
        return self.decoder.score(state, (out, mask), target, steps, teacher_forcing)

    def generate(self, x: Tensor, lengths=None, steps: int | None = None, beam_size: int = 1):
        """Greedy (beam_size=1) or beam-search decoding: (outputs, lengths before each stop token)."""
        out, state, mask = self.encode(x, lengths)
        return self.decoder.generate(state, (out, mask), steps, beam_size)

    def _predict_batch(self, batch):
        pred = self(batch.x, batch.x_lengths, target=batch.y)
        return pred, step_mask(batch.y_lengths, pred.shape[1], pred.device)


TOPOLOGIES = {cls.__name__: cls for cls in (OneToOne, OneToMany, ManyToOne, EncoderDecoder, ManyToManySync)}

