"""Speech to text: ``Transcriber``, a recurrent encoder over feature frames trained with CTC.

The many-to-many delayed topology on audio: the network listens to a whole utterance (or, unidirectional, to what
has arrived so far) and writes the tokens it heard, aligned by Connectionist Temporal Classification (Graves et al.
2006): a blank class between tokens, ``torch.nn.functional.ctc_loss`` for training, greedy or prefix beam search
for decoding (``rnr.nn.ctc``). Features are log-mel filterbanks or MFCCs (``rnr.data.audio``), masked in training
as in SpecAugment (Park et al. 2019). Consecutive frames are stacked ``stride`` at a time before the recurrence, so
the recurrent layers run over a shorter sequence.

Example:
    >>> asr = Transcriber().fit(["one.wav", "two.wav", ...], ["1", "2", ...])   # WAV paths, waveforms or (T, F)
    >>> asr.predict(["unknown.wav"])                                            # ["3 9 1"]
    >>> stream = asr.stream()    # a unidirectional model, audio as it arrives
    >>> stream.push(block)       # tokens CTC has committed to so far
"""
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnr.base import RUN_OPTION_TABLE, Estimator, Option, check_options, model_params
from rnr.core.cells import CELLS
from rnr.core.checks import trusted
from rnr.core.rnn import RNN
from rnr.data.audio import Features, normalize, read_wav, spec_augment, wav_info
from rnr.data.sequences import Batch, SequenceData
from rnr.metrics import error_rate
from rnr.nn.ctc import GreedyStream, ctc_beam_search, ctc_greedy
from rnr.training.train import fit as train
from rnr.weights import load_weights

BLANK = 0  # CTC's blank class; token i of ``tokens_`` is class i + 1
BUDGET_EPOCHS = 200  # epochs=None with max_minutes: passes until the budget ends, at most this many
DEFAULT_EPOCHS = 30  # epochs=None without max_minutes
VALIDATION_MIN = 500  # validation_fraction="auto": hold out VALIDATION_FRACTION of the utterances from this many on
VALIDATION_FRACTION = 0.1


class CTCNet(nn.Module):
    """Frames (B, T, F) -> stacked ``stride`` at a time (B, T/stride, F*stride) -> recurrent layers -> a linear layer
    to log-probabilities over the blank and the tokens (B, T/stride, C)."""

    def __init__(self, input_size: int, n_classes: int, hidden_size: int, num_layers: int, cell: str,
                 bidirectional: bool, dropout: float, stride: int):
        super().__init__()
        self.stride = stride
        self.rnn = RNN(input_size * stride, hidden_size, cell=cell, num_layers=num_layers,
                       bidirectional=bidirectional, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_classes)
        self.masking: dict | None = None  # SpecAugment's settings in training (set by the Transcriber)

    def stack(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Every ``stride`` consecutive frames side by side; a last partial group is filled with zeros."""
        B, T, Fz = x.shape
        s = self.stride
        x = F.pad(x, (0, 0, 0, (-T) % s))  # zeros: the mean of standardised features
        x = x.reshape(B, x.shape[1] // s, Fz * s)  # (B, ceil(T / s), F * s)
        return x, None if lengths is None else (lengths + s - 1) // s

    def forward(self, x: Tensor, lengths: Tensor | None = None, state=None):
        """Log-probabilities (B, T', C), their lengths (B,) or None, and the recurrent state after the last step."""
        x, lengths = self.stack(x, lengths)
        h, state = self.rnn(x, state, lengths)  # (B, T', H * D)
        return torch.log_softmax(self.head(self.drop(h)), -1), lengths, state

    def _log_probs(self, batch: Batch):
        x = batch.x
        if self.training and self.masking:
            x = spec_augment(x, batch.x_lengths, **self.masking)
        log_probs, lengths, _ = self(x, batch.x_lengths)
        if lengths is None:
            lengths = torch.full((len(batch),), log_probs.shape[1], dtype=torch.int64)
        return log_probs, lengths

    def _ctc(self, log_probs: Tensor, lengths: Tensor, batch: Batch) -> Tensor:
        targets = batch.y
        target_lengths = (batch.y_lengths if batch.y_lengths is not None
                          else torch.full((len(batch),), targets.shape[1], dtype=torch.int64))
        return F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=BLANK,
                          reduction="mean")

    def loss(self, batch: Batch) -> Tensor:
        """Mean over the batch of the CTC loss per target token."""
        return self._ctc(*self._log_probs(batch), batch)

    @torch.no_grad()
    def metrics(self, batch: Batch) -> dict[str, float]:
        """The CTC loss and the token error rate of greedy decoding."""
        log_probs, lengths = self._log_probs(batch)
        hyps = ctc_greedy(log_probs.cpu(), lengths, blank=BLANK)
        y_lengths = batch.y_lengths if batch.y_lengths is not None else [batch.y.shape[1]] * len(batch)
        refs = [batch.y[i, : int(n)].tolist() for i, n in enumerate(y_lengths)]
        return {"loss": float(self._ctc(log_probs, lengths, batch)), "error_rate": error_rate(refs, hyps)}


class Transcriber(Estimator):
    """Audio (or feature frames) in, a transcript out, trained with CTC.

    Args:
        features: "logmel" (log-mel filterbank energies, ``n_mels`` of them) or "mfcc" (``n_mfcc`` cepstral
            coefficients); frames of 25 ms every 10 ms. Ignored when X holds feature arrays already.
        sample_rate: the rate (Hz) features are computed at; audio at other rates is resampled to it, and 1-D
            waveforms are taken to be at it.
        n_mels: mel filters (the features with "logmel"; what the cepstra are computed from with "mfcc").
        n_mfcc: cepstral coefficients kept with "mfcc".
        hidden_size, num_layers, cell, bidirectional, dropout: the recurrent encoder. ``bidirectional=False`` (the
            default) reads forward only, so ``stream()`` can transcribe audio as it arrives; on FSDD digit strings in
            15 minutes it reached a digit error rate of 1.40% (mean of 3 seeds) where the bidirectional model (with
            per-utterance normalisation) reached 19.02%, in 39-45 epochs against 13-21 (docs/sequences.md).
        stride: frames stacked side by side before the recurrence (the recurrent layers run over T / stride steps);
            3 (30 ms a step) and 96 units: on FSDD digit strings twice the epochs of stride 2 and 128 units in the
            same time, and a lower error after 3 minutes (33.9% against 39.2%; docs/sequences.md).
        normalize: "utterance" (each utterance's features to zero mean and unit variance over its frames) or
            "global" (the training frames' mean and scale, which a stream can apply as frames arrive); None (the
            default): "utterance" for a bidirectional model, "global" for a streaming one.
        spec_augment: mask random bands of channels and spans of frames in training, as SpecAugment does.
        tokens: "space" (transcripts split at white space: words, or digits written "3 9 1"), "char" (every
            character); "auto" (the default): "space" when some transcript holds a space, else "char".
        beam_width: 1 decodes greedily (best path); more, CTC prefix beam search with this many prefixes.
        epochs: passes over the utterances; None (the default): as many as ``max_minutes`` allows (at most
            BUDGET_EPOCHS), or DEFAULT_EPOCHS without a budget.
        batch_size: utterances per update (batches of similar lengths). 8: CTC spends its first few hundred updates
            emitting only blanks, and small batches get through them sooner; on 1,500 FSDD digit strings, after six
            passes, the CTC loss per token was 1.56 at batch 8, 2.62 at 16 and 2.73 at 32 (after eight), at about the
            same time per utterance on one thread (docs/sequences.md).
        lr: Adam's learning rate at the start; it falls on a cosine to 0 over the run (or over the budget).
        weight_decay: Adam's L2 penalty.
        clip_grad_norm: gradients whose global norm exceeds this are scaled down to it; None: never.
        max_minutes: the training time budget (None: none).
        validation_fraction: without ``X_val``, hold out this share of the utterances for early stopping on the
            validation loss (the best epoch's weights are kept); "auto": VALIDATION_FRACTION from VALIDATION_MIN
            utterances on.
        patience: epochs without a lower validation loss before stopping; None: 10.
        on_nonfinite: a NaN or inf loss or gradient: "error" (stop, keeping the weights from before it) or "skip"
            (drop that batch).
        random_state: seeds the weights, the order of the batches and the masks.
        progress, log_dir, checkpoint_dir, checkpoint_every, resume: run options (see ``rnr.TrainConfig``).

    Learned: ``tokens_`` (the alphabet), ``separator_`` (" " between word tokens, "" between characters),
    ``features_`` (``rnr.data.audio.Features`` or None for feature arrays), ``input_kind_`` ("audio" or
    "features"), ``n_features_in_``, ``mean_``, ``scale_``, ``model_`` (``CTCNet``), ``history_``, ``chosen_``.
    """

    OPTIONS = {
        "features": Option("choice", choices=("logmel", "mfcc")), "sample_rate": Option("int", 1),
        "n_mels": Option("int", 1), "n_mfcc": Option("int", 1), "hidden_size": Option("int", 1),
        "num_layers": Option("int", 1), "cell": Option("choice", choices=CELLS), "bidirectional": Option("bool"),
        "dropout": Option("real", 0, 1, open_high=True), "stride": Option("int", 1),
        "normalize": Option("choice", choices=("utterance", "global", None)), "spec_augment": Option("bool"),
        "tokens": Option("choice", choices=("auto", "space", "char")), "beam_width": Option("int", 1),
        "epochs": Option("int", 1, none=True), "batch_size": Option("int", 1), "lr": Option("real", 0, open_low=True),
        "weight_decay": Option("real", 0), "clip_grad_norm": Option("real", 0, open_low=True, none=True),
        "max_minutes": Option("real", 0, open_low=True, none=True),
        "validation_fraction": Option("real", 0, 1, open_high=True, none=True, also=("auto",)),
        "patience": Option("int", 1, none=True), "on_nonfinite": Option("choice", choices=("error", "skip")),
        "random_state": Option("seed"), **RUN_OPTION_TABLE}

    def __init__(self, features: str = "logmel", sample_rate: int = 8000, n_mels: int = 40, n_mfcc: int = 13,
                 hidden_size: int = 96, num_layers: int = 2, cell: str = "gru", bidirectional: bool = False,
                 dropout: float = 0.2, stride: int = 3, normalize: str | None = None, spec_augment: bool = True,
                 tokens: str = "auto", beam_width: int = 1, epochs: int | None = None, batch_size: int = 8,
                 lr: float = 2e-3, weight_decay: float = 0.0, clip_grad_norm: float | None = 1.0,
                 max_minutes: float | None = 15.0, validation_fraction: float | str | None = "auto",
                 patience: int | None = None, on_nonfinite: str = "error", random_state: int = 0, *,
                 progress: bool | None = None, log_dir: str | None = None, checkpoint_dir: str | None = None,
                 checkpoint_every: int | None = None, resume: bool = False):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    # learning -----------------------------------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None) -> "Transcriber":
        """Learn from X (WAV paths, 1-D waveforms at ``sample_rate``, or (T, F) feature arrays) and their
        transcripts y (strings). Returns self."""
        check_options(self)
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        y = _transcripts(y, "y", len(X))
        self.chosen_ = {}
        self.__dict__.pop("n_features_in_", None)  # a refit may change the features
        self.input_kind_ = _kind(X, "X")
        self.features_ = None
        if self.input_kind_ == "audio":
            self.features_ = Features(kind=self.features, sample_rate=self.sample_rate, n_mels=self.n_mels,
                                      n_mfcc=self.n_mfcc)
        if self.normalize is None:
            self.chosen_["normalize"] = "utterance" if self.bidirectional else "global"
        frames = self._frames(X, "X")
        self.n_features_in_ = frames[0].shape[1]
        steps = torch.cat(frames).double()
        self.mean_ = steps.mean(0).float()
        self.scale_ = steps.std(0).float().clamp_min(1e-6) if len(steps) > 1 else torch.ones(self.n_features_in_)
        mode = self.tokens
        if mode == "auto":
            mode = self.chosen_["tokens"] = "space" if any(" " in t for t in y) else "char"
        self.separator_ = " " if mode == "space" else ""
        self.tokens_ = sorted({tok for t in y for tok in self._split(t)})
        if not self.tokens_:
            raise ValueError("y holds no tokens: every transcript is empty; give the text of each utterance")
        targets = self._targets(y, "y")
        inputs = [self._standardise(f) for f in frames]
        self._check_alignable(inputs, targets, "X", "y")
        if X_val is None and self.validation_fraction:
            fraction = self.validation_fraction
            if fraction == "auto":
                fraction = VALIDATION_FRACTION if len(inputs) >= VALIDATION_MIN else 0
            if fraction:
                held = np.random.default_rng(self.random_state).random(len(inputs)) < fraction
                self.chosen_["validation"] = int(held.sum())
                X_val = [inputs[i] for i in np.flatnonzero(held)]
                val_targets = [targets[i] for i in np.flatnonzero(held)]
                inputs = [inputs[i] for i in np.flatnonzero(~held)]
                targets = [targets[i] for i in np.flatnonzero(~held)]
        elif X_val is not None:
            y_val = _transcripts(y_val, "y_val", len(X_val))
            X_val = [self._standardise(f) for f in self._frames(X_val, "X_val")]
            val_targets = self._targets(y_val, "y_val")
            self._check_alignable(X_val, val_targets, "X_val", "y_val")
        epochs = self.epochs or (BUDGET_EPOCHS if self.max_minutes else DEFAULT_EPOCHS)
        if self.epochs is None:
            self.chosen_["epochs"] = f"<= {epochs} in max_minutes" if self.max_minutes else epochs
        patience = None
        if X_val is not None:
            patience = self.patience or 10
        torch.manual_seed(self.random_state)
        self.model_ = self._build()
        self.model_.masking = dict(freq_width=max(1, self.n_features_in_ // 5)) if self.spec_augment else None
        data = SequenceData(inputs, targets)
        val = None if X_val is None else SequenceData(X_val, val_targets)
        self.history_ = train(self.model_, data, val, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                              weight_decay=self.weight_decay, clip_grad_norm=self.clip_grad_norm,
                              lr_schedule="cosine", patience=patience, max_minutes=self.max_minutes,
                              seed=self.random_state, on_nonfinite=self.on_nonfinite, bucket=True,
                              progress=self.progress, log_dir=self.log_dir, checkpoint_dir=self.checkpoint_dir,
                              checkpoint_every=self.checkpoint_every, resume=self.resume)
        self.model_.eval()
        return self

    def _build(self) -> CTCNet:
        return CTCNet(self.n_features_in_, len(self.tokens_) + 1, self.hidden_size, self.num_layers, self.cell,
                      self.bidirectional, self.dropout, self.stride)

    def _setting(self, name: str):
        value = getattr(self, name)
        return value if value is not None else self.chosen_[name]

    def _split(self, text: str) -> list[str]:
        return text.split() if self.separator_ == " " else list(text)

    def _targets(self, y: list[str], name: str) -> list[Tensor]:
        index = {tok: i + 1 for i, tok in enumerate(self.tokens_)}
        out = []
        for i, text in enumerate(y):
            unknown = [tok for tok in self._split(text) if tok not in index]
            if unknown:
                raise ValueError(f"{name}[{i}] = {text!r} holds tokens the training transcripts lack, e.g. "
                                 f"{unknown[0]!r}; known: {self.tokens_[:20]}")
            out.append(torch.tensor([index[tok] for tok in self._split(text)], dtype=torch.int64))
        return out

    def _check_alignable(self, inputs: list[Tensor], targets: list[Tensor], x_name: str, y_name: str) -> None:
        """CTC needs a frame per token, and a blank frame between two equal tokens in a row."""
        for i, (x, t) in enumerate(zip(inputs, targets)):
            steps = math.ceil(len(x) / self.stride)
            need = len(t) + int((t[1:] == t[:-1]).sum()) if len(t) else 0
            if steps < need:
                raise ValueError(f"{x_name}[{i}] is too short for its transcript {y_name}[{i}]: {len(x)} frames make "
                                 f"{steps} steps at stride={self.stride}, but its {len(t)} tokens need at least "
                                 f"{need}; check the transcript, or pass a smaller stride")

    # features -----------------------------------------------------------------------------------------------
    def _frames(self, X, name: str) -> list[Tensor]:
        """(T_i, F) feature frames of every utterance, normalised per utterance where that is the setting."""
        kind = _kind(X, name)
        if kind != self.input_kind_:
            raise TypeError(f"{name} holds {kind}, but the model was fitted on {self.input_kind_}: give it "
                            f"{'WAV paths or waveforms' if self.input_kind_ == 'audio' else '(T, F) feature arrays'}")
        out, mixed = [], []
        for i, item in enumerate(X):
            if kind == "audio":
                if isinstance(item, (str, os.PathLike)):
                    mixed += self._check_wav(item, i, name)
                f = self.features_(*_audio(item, self.features_.sample_rate))
            else:
                f = torch.as_tensor(np.asarray(item, dtype=np.float32))
                want = getattr(self, "n_features_in_", out[0].shape[1] if out else f.shape[1])
                if f.shape[1] != want:
                    where = "the model was fitted on" if hasattr(self, "n_features_in_") else f"{name}[0] has"
                    raise ValueError(f"{name}[{i}] has {f.shape[1]} features per frame, but {where} {want}; every "
                                     f"utterance needs the same features")
            if len(f) == 0:
                raise ValueError(f"{name}[{i}] has no frames: audio shorter than one window (25 ms) or an empty "
                                 f"array; drop it")
            if not torch.isfinite(f).all():
                raise ValueError(f"{name}[{i}] holds NaN or inf features; fill or drop them first")
            out.append(normalize(f) if self._setting("normalize") == "utterance" else f)
        if mixed:
            warnings.warn(f"{len(mixed)} of the {len(X)} WAV files in {name} have more than one channel, e.g. "
                          f"{mixed[0]}; their channels were averaged to one (mono)", stacklevel=3)
        return out

    def _check_wav(self, path, i: int, name: str) -> list:
        """A file recorded below half the model's rate is refused (its features would lack the upper bands); a file
        of several channels is returned, to be named in one warning."""
        channels, rate, _ = wav_info(path)
        want = self.features_.sample_rate
        if rate < want / 2:
            raise ValueError(f"{name}[{i}] {str(path)!r} is recorded at {rate} Hz, less than half the model's "
                             f"sample_rate ({want} Hz): its features would hold nothing above {rate // 2} Hz; give "
                             f"a recording at {want} Hz or more, or fit with sample_rate={rate}")
        return [path] if channels > 1 else []

    def _standardise(self, f: Tensor) -> Tensor:
        return ((f - self.mean_) / self.scale_).float()

    # predicting ---------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this Transcriber is not fitted yet; call fit(X, y) first")

    @torch.no_grad()
    def log_probs(self, X) -> list[Tensor]:
        """Per utterance, the (T', C) log-probabilities of the blank (column 0) and of each token of ``tokens_``."""
        self._check_fitted()
        inputs = [self._standardise(f) for f in self._frames(X, "X")]
        data = SequenceData(inputs, torch.zeros(len(inputs), dtype=torch.int64))
        out = []
        for batch in data.batches(64):
            log_probs, lengths, _ = self.model_(batch.x, batch.x_lengths)
            n = lengths if lengths is not None else [log_probs.shape[1]] * len(batch)
            out += [log_probs[i, : int(k)] for i, k in enumerate(n)]
        return out

    def predict(self, X, beam_width: int | None = None) -> list[str]:
        """The transcript of each utterance; ``beam_width`` overrides the estimator's (1: greedy)."""
        width = self.beam_width if beam_width is None else beam_width
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"beam_width must be an int >= 1, got {width!r}")
        out = []
        for lp in self.log_probs(X):
            ids = ctc_greedy(lp, blank=BLANK) if width == 1 else ctc_beam_search(lp, beam_width=width, blank=BLANK)
            out.append(self._text(ids))
        return out

    def _text(self, ids) -> str:
        return self.separator_.join(self.tokens_[i - 1] for i in ids)

    def evaluate(self, X, y, beam_width: int | None = None) -> dict[str, float]:
        """Token error rate (edit distance over the reference length, in tokens), character error rate (the same
        over characters, separators included) and exact-match rate."""
        y = _transcripts(y, "y", len(X))
        hyps = self.predict(X, beam_width)
        return {"token_error_rate": error_rate([self._split(t) for t in y], [self._split(h) for h in hyps]),
                "char_error_rate": error_rate(list(y), hyps),
                "exact_match": float(np.mean([h == " ".join(self._split(t)) if self.separator_ else h == t
                                              for h, t in zip(hyps, y)])),
                "utterances": len(y)}

    def score(self, X, y) -> float:
        """1 - the token error rate (higher is better, as scikit-learn's model selection expects); ``evaluate``
        gives the error rates themselves and the exact-match rate."""
        return 1.0 - self.evaluate(X, y)["token_error_rate"]

    def stream(self) -> "TranscriptStream":
        """Transcribe audio as it arrives: see ``TranscriptStream``. Needs ``bidirectional=False``."""
        self._check_fitted()
        return TranscriptStream(self)

    # model files (rnr.save / rnr.load) ----------------------------------------------------------------------
    def _to_file(self) -> tuple[dict, dict]:
        self._check_fitted()
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        tensors.update(mean=self.mean_.clone(), scale=self.scale_.clone())
        config = {"params": model_params(self), "tokens": list(self.tokens_), "separator": self.separator_,
                  "input_kind": self.input_kind_, "n_features_in": int(self.n_features_in_),
                  "features": None if self.features_ is None else self.features_.to_dict(),
                  "chosen": self.chosen_}
        return tensors, config

    @classmethod
    def _from_file(cls, tensors: dict, config: dict, device="cpu") -> "Transcriber":
        self = cls(**config["params"])
        self.tokens_, self.separator_ = list(config["tokens"]), config["separator"]
        self.input_kind_, self.n_features_in_ = config["input_kind"], config["n_features_in"]
        self.features_ = None if config["features"] is None else Features(**config["features"])
        self.chosen_ = config["chosen"]
        self.mean_, self.scale_ = tensors["mean"], tensors["scale"]
        self.model_ = self._build()
        load_weights(self.model_, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                     "the transcriber file")
        self.model_.eval()
        return self


class TranscriptStream:
    """A unidirectional ``Transcriber`` over audio (or frames) that arrives a block at a time.

    ``push(block)`` takes samples (1-D, at the model's sample rate) or feature frames (T, F), runs the recurrence
    over the frames complete so far with the state carried, and returns the tokens CTC has committed to (greedy: a
    token is out as soon as its first frame wins); ``finish()`` reads what is left and returns the whole
    transcript, which equals ``predict`` on the whole input (a test holds this). ``text`` is the transcript so far.
    """

    def __init__(self, model: Transcriber):
        if model.bidirectional:
            raise ValueError("stream() needs a model that reads forward only: fit it with bidirectional=False (a "
                             "bidirectional layer waits for the end of the audio)")
        if model._setting("normalize") != "global":
            raise ValueError("stream() needs normalize='global' (a per-utterance normalisation waits for the end "
                             "of the audio): fit the model with normalize='global' or normalize=None")
        self.model = model
        self.samples = np.zeros(0, np.float32)  # audio not yet in a complete frame
        self.frames = torch.zeros(0, model.n_features_in_)  # frames not yet in a complete stride group
        self.state = None
        self.decoder = GreedyStream(blank=BLANK)
        self.ids: list[int] = []
        self.finished = False

    @property
    def text(self) -> str:
        return self.model._text(self.ids)

    @torch.no_grad()
    def push(self, block) -> list[str]:
        """Read one block; return the tokens committed by it."""
        if self.finished:
            raise ValueError("this stream is finished; start another with model.stream()")
        m = self.model
        values = np.asarray(block, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ValueError("this block holds NaN or inf values; fill or drop them before pushing it (the stream "
                             "keeps what it read before)")
        if m.input_kind_ == "audio":
            block = values.reshape(-1)
            self.samples = np.concatenate([self.samples, block])
            feats = m.features_
            n = feats.frames(len(self.samples))
            if n == 0:
                return []
            new = m.features_(self.samples[: (n - 1) * feats.hop_length + feats.win_length], feats.sample_rate)
            self.samples = self.samples[n * feats.hop_length:]
        else:
            new = torch.as_tensor(values).reshape(-1, m.n_features_in_)
        self.frames = torch.cat([self.frames, m._standardise(new)])
        whole = len(self.frames) - len(self.frames) % m.stride
        ready, self.frames = self.frames[:whole], self.frames[whole:]
        return self._run(ready)

    def _run(self, frames: Tensor) -> list[str]:
        if len(frames) == 0:
            return []
        with trusted():  # every frame was checked as it arrived
            log_probs, _, self.state = self.model.model_(frames[None], None, self.state)
        ids = self.decoder.push(log_probs[0])
        self.ids += ids
        return [self.model.tokens_[i - 1] for i in ids]

    @torch.no_grad()
    def finish(self) -> str:
        """Read the frames left (a last partial stride group, filled with zeros); return the whole transcript."""
        if not self.finished:
            self._run(self.frames)  # CTCNet.stack fills the partial group as predict does
            self.finished = True
        return self.text


def _transcripts(y, name: str, n: int) -> list[str]:
    if isinstance(y, str) or not hasattr(y, "__len__"):
        raise TypeError(f"{name} must be a list of transcripts (strings), one per utterance, got "
                        f"{type(y).__name__}")
    y = list(y)
    if len(y) != n:
        raise ValueError(f"{name} must hold one transcript per utterance ({n}), got {len(y)}")
    bad = [i for i, t in enumerate(y) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name}[{bad[0]}] must be a string (the utterance's transcript), got "
                        f"{type(y[bad[0]]).__name__} {y[bad[0]]!r}")
    return y


def _kind(X, name: str) -> str:
    """"audio" (WAV paths or 1-D waveforms) or "features" ((T, F) arrays); mixed or other inputs are refused."""
    if isinstance(X, (str, os.PathLike)) or not isinstance(X, (list, tuple)) or len(X) == 0:
        raise TypeError(f"{name} must be a non-empty list of WAV paths, 1-D waveforms or (T, F) feature arrays, "
                        f"got {type(X).__name__}")
    kinds = set()
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            kinds.add("audio")
            continue
        dims = np.ndim(item)
        if dims not in (1, 2):
            raise ValueError(f"{name}[{i}] must be a WAV path, a 1-D waveform or a (T, F) feature array, got an "
                             f"array of {dims} dimensions")
        kinds.add("audio" if dims == 1 else "features")
    if len(kinds) > 1:
        raise TypeError(f"{name} mixes audio (paths or waveforms) and (T, F) feature arrays; give one kind")
    return kinds.pop()


def _audio(item, rate: int) -> tuple[np.ndarray, int]:
    """Samples and their rate from a WAV path, or a waveform taken to be at ``rate``."""
    if isinstance(item, (str, os.PathLike)):
        return read_wav(Path(item))
    return np.asarray(item, dtype=np.float32), rate
