"""Sequence to sequence on text: ``Seq2Seq`` learns to turn one sentence into another (translation, restoring the
order of shuffled words), with an encoder-decoder with attention (``rnr.EncoderDecoder``) over word tokens.

Each target sentence ends with a stop token that the decoder learns to emit; training is teacher-forced (the
decoder reads the reference's previous word) with probability ``teacher_forcing``; decoding is greedy or a beam
search. ``score`` is corpus BLEU (sacrebleu) against one reference per sentence.

Example:
    >>> s2s = Seq2Seq(hidden_size=256, epochs=10).fit(german, english)
    >>> s2s.predict(["ein mann schläft ."], beam_width=5)
    ['a man is sleeping .']
    >>> s2s.score(test_german, test_english)
"""
import numpy as np
import torch

from rnr.base import RUN_OPTION_TABLE, Estimator, Option, check_options
from rnr.core.cells import CELLS
from rnr.data.sequences import SequenceData
from rnr.data.text import Tokenizer
from rnr.metrics import bleu
from rnr.nn.topologies import EncoderDecoder
from rnr.training.core import resolve_device
from rnr.training.train import fit as train
from rnr.weights import load_weights


class Seq2Seq(Estimator):
    """Sentences in, sentences out.

    Args:
        hidden_size, cell, num_layers, bidirectional, attention, dropout: the ``EncoderDecoder`` (the encoder may
            read both ways; the decoder reads forwards; ``attention`` is "additive", "dot" or None).
        embedding_dim: width of the source word embedding (the decoder embeds its words at ``hidden_size``).
        embedding_dropout: probability of zeroing word embeddings in training.
        tie_embeddings: the decoder's output layer shares its weights with its word embedding (see
            ``EncoderDecoder``): fewer weights and a faster output layer.
        teacher_forcing: probability of feeding the reference's previous word (else the model's own) in training.
        tokenizer, lower, min_count, max_vocab: a ``rnr.data.text.Tokenizer`` per language ("space" for text that is
            already tokenised, "word", or "char"); rarer words read as ``<unk>``.
        max_len: the longest output, in tokens, that decoding produces.
        epochs, batch_size, lr, weight_decay, clip_grad_norm, lr_schedule, patience: training (``rnr.TrainConfig``);
            with validation sentences and ``patience``, the best epoch by validation loss is kept.
        max_minutes: a training time budget (10 minutes by default; None: none): no epoch starts that would end
            past it (judged by the longest one).
        on_nonfinite: a NaN or inf loss or gradient: "error" (stop) or "skip" (drop that batch).
        random_state: the same random_state gives the same model. device: "cpu", "cuda", "auto".
        progress, log_dir, checkpoint_dir, checkpoint_every, resume (keyword-only): the run options of
            ``rnr.fit``; progress None shows a bar where standard error is a terminal.

    Learned: ``source_tokenizer_``, ``target_tokenizer_``, ``model_`` (the ``EncoderDecoder``; its last class is
    the stop token), ``history_`` (``rnr.History``).
    """

    OPTIONS = {
        "hidden_size": Option("int", 1), "embedding_dim": Option("int", 1), "cell": Option("choice", choices=CELLS),
        "num_layers": Option("int", 1), "bidirectional": Option("bool"),
        "attention": Option("choice", choices=("additive", "dot", None)),
        "dropout": Option("real", 0, 1, open_high=True), "embedding_dropout": Option("real", 0, 1, open_high=True),
        "tie_embeddings": Option("bool"), "teacher_forcing": Option("real", 0, 1),
        "tokenizer": Option("choice", choices=("word", "char", "space")), "lower": Option("bool"),
        "min_count": Option("int", 1), "max_vocab": Option("int", 1, none=True), "max_len": Option("int", 1),
        "epochs": Option("int", 1), "batch_size": Option("int", 1), "lr": Option("real", 0, open_low=True),
        "weight_decay": Option("real", 0), "clip_grad_norm": Option("real", 0, open_low=True, none=True),
        "lr_schedule": Option("choice", choices=(None, "cosine", "step", "plateau")),
        "patience": Option("int", 1, none=True), "max_minutes": Option("real", 0, open_low=True, none=True),
        "on_nonfinite": Option("choice", choices=("error", "skip")), "random_state": Option("seed"),
        "device": Option("any"), **RUN_OPTION_TABLE}

    def __init__(self, hidden_size: int = 256, embedding_dim: int = 256, cell: str = "gru", num_layers: int = 1,
                 bidirectional: bool = True, attention: str | None = "additive", dropout: float = 0.0,
                 embedding_dropout: float = 0.3, tie_embeddings: bool = True, teacher_forcing: float = 1.0,
                 tokenizer: str = "space",
                 lower: bool = True, min_count: int = 1, max_vocab: int | None = None, max_len: int = 80,
                 epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                 clip_grad_norm: float | None = 1.0, lr_schedule: str | None = None, patience: int | None = None,
                 max_minutes: float | None = 10.0, on_nonfinite: str = "error", random_state: int = 0,
                 device: str = "cpu", *, progress: bool | None = None, log_dir: str | None = None,
                 checkpoint_dir: str | None = None, checkpoint_every: int | None = None, resume: bool = False):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def fit(self, X, Y, X_val=None, Y_val=None) -> "Seq2Seq":
        """Learn to map each source sentence X[i] to its target Y[i] (lists of str); report the loss on
        (X_val, Y_val) after each epoch. Returns self."""
        check_options(self)
        resolve_device(self.device)
        _check_pairs(X, Y, "X", "Y")
        if (X_val is None) != (Y_val is None):
            raise ValueError("give both X_val and Y_val, or neither")
        self.source_tokenizer_ = Tokenizer(self.tokenizer, self.lower, self.min_count, self.max_vocab).fit(X)
        self.target_tokenizer_ = Tokenizer(self.tokenizer, self.lower, self.min_count, self.max_vocab).fit(Y)
        torch.manual_seed(self.random_state)
        self.model_ = self._build()
        val = None
        if X_val is not None:
            _check_pairs(X_val, Y_val, "X_val", "Y_val")
            val = self._data(X_val, Y_val)
        self.history_ = train(self.model_, self._data(X, Y), val, epochs=self.epochs, batch_size=self.batch_size,
                              lr=self.lr, weight_decay=self.weight_decay, clip_grad_norm=self.clip_grad_norm,
                              lr_schedule=self.lr_schedule, patience=self.patience, seed=self.random_state,
                              on_nonfinite=self.on_nonfinite, log_dir=self.log_dir, checkpoint_dir=self.checkpoint_dir,
                              checkpoint_every=self.checkpoint_every, resume=self.resume,
                              max_minutes=self.max_minutes, progress=self.progress, device=self.device,
                              bucket=True)
        return self

    @property
    def eos_(self) -> int:
        return len(self.target_tokenizer_)  # one class past the target vocabulary

    def _build(self) -> EncoderDecoder:
        return EncoderDecoder(self.embedding_dim, len(self.target_tokenizer_) + 1, hidden_size=self.hidden_size,
                              cell=self.cell, num_layers=self.num_layers, bidirectional=self.bidirectional,
                              dropout=self.dropout, task="classification", vocab_size=len(self.source_tokenizer_),
                              eos=self.eos_, teacher_forcing=self.teacher_forcing, max_steps=self.max_len,
                              attention=self.attention, embedding_dropout=self.embedding_dropout,
                              tie_embeddings=self.tie_embeddings)

    def _sources(self, X) -> list[torch.Tensor]:
        return [torch.tensor(self.source_tokenizer_.encode(x), dtype=torch.int64) for x in X]

    def _data(self, X, Y) -> SequenceData:
        tok = self.target_tokenizer_
        ys = [torch.tensor((tok.encode(y) if tok.split(y) else []) + [self.eos_]) for y in Y]  # an empty target: eos
        return SequenceData(self._sources(X), ys)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(X, Y) first")

    @torch.no_grad()
    def predict(self, X, beam_width: int = 1, batch_size: int = 128) -> list[str]:
        """The output sentence for each source sentence: greedy decoding (``beam_width=1``) or a beam search."""
        self._check_fitted()
        _check_texts(X, "X")
        self.model_.eval()
        device = next(self.model_.parameters()).device
        xs = self._sources(X)
        data = SequenceData(xs, torch.zeros(len(xs), dtype=torch.int64))
        out = []
        for batch in data.batches(batch_size):
            ids, lengths = self.model_.generate(batch.x.to(device), batch.x_lengths, beam_size=beam_width)
            for row, n in zip(ids.cpu().tolist(), lengths.tolist()):
                out.append(self.target_tokenizer_.decode(row[:n]))
        return out

    def references(self, Y) -> list[str]:
        """Target sentences as the model writes them: its tokenizer's tokens joined by single spaces."""
        self._check_fitted()
        return [" ".join(self.target_tokenizer_.split(y)) for y in Y]

    def score(self, X, Y, beam_width: int = 1) -> float:
        """Corpus BLEU (0-100) of ``predict(X)`` against Y, both as the model's tokens (sacrebleu with
        tokenize="none": BLEU on the tokenised, by default lower-cased, text)."""
        _check_pairs(X, Y, "X", "Y")
        return bleu(self.predict(X, beam_width), self.references(Y), tokenize="none")

    # model files (rnr.save / rnr.load) ----------------------------------------------------------------------
    def _to_file(self) -> tuple[dict, dict]:
        self._check_fitted()
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        config = {"params": self.get_params(), "source_tokenizer": self.source_tokenizer_.to_state(),
                  "target_tokenizer": self.target_tokenizer_.to_state()}
        return tensors, config

    @classmethod
    def _from_file(cls, tensors: dict, config: dict, device="cpu") -> "Seq2Seq":
        self = cls(**config["params"])
        self.source_tokenizer_ = Tokenizer.from_state(config["source_tokenizer"])
        self.target_tokenizer_ = Tokenizer.from_state(config["target_tokenizer"])
        self.model_ = self._build()
        load_weights(self.model_, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                     "the Seq2Seq file")
        self.model_.to(device).eval()
        return self


def _check_texts(X, name: str) -> None:
    if isinstance(X, str) or not isinstance(X, (list, tuple, np.ndarray)) or len(X) == 0:
        raise TypeError(f"{name} must be a non-empty list of sentences (str), got {type(X).__name__}; wrap a single "
                        f"sentence in a list")
    for i, x in enumerate(X):
        if not isinstance(x, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(x).__name__}")


def _check_pairs(X, Y, x_name: str, y_name: str) -> None:
    _check_texts(X, x_name)
    _check_texts(Y, y_name)
    if len(X) != len(Y):
        raise ValueError(f"{x_name} and {y_name} must hold the same number of sentences (one target per source), "
                         f"got {len(X)} and {len(Y)}")
