"""Estimators with scikit-learn's conventions: ``RNNClassifier`` for labelled sequences of any lengths.

``__init__`` only stores its arguments; ``fit(X, y)`` validates, learns and returns ``self``; learned state ends
in ``_``; ``get_params``/``set_params`` make ``sklearn.base.clone`` and ``GridSearchCV`` work, with ragged ``X``
(a list of ``(T_i, F)`` arrays). scikit-learn itself is not needed to use them.

Example:
    >>> clf = RNNClassifier(hidden_size=32, epochs=30).fit(X_train, y_train)   # X: list of (T_i, F) arrays
    >>> clf.score(X_test, y_test)
"""
import math
from time import perf_counter

import numpy as np
import torch

from rnr.base import RUN_OPTION_TABLE, Estimator, Option, check_options, model_params
from rnr.core.cells import CELLS
from rnr.data.sequences import SequenceData
from rnr.data.text import Tokenizer
from rnr.nn.topologies import ManyToOne
from rnr.training.train import fit as train
from rnr.weights import load_weights


MIN_UPDATES = 1000  # epochs=None: at least this many optimizer updates ...
MIN_EPOCHS = 20     # ... and at least this many passes over the training sequences
VALIDATION_MIN = 1000  # validation_fraction="auto": hold out VALIDATION_FRACTION of the training sequences from
VALIDATION_FRACTION = 0.2  # this many on, and stop early on them
ENSEMBLE_MAX = 3  # n_models="auto": up to this many networks, as many as the time budget holds
# what the settings left at None become: for numbers (as before, not shown), and for text (shown in chosen_);
# measured on SST-2 (docs/sequences.md)
FOR_NUMBERS = {"pooling": "max", "dropout": 0.0, "embedding_dim": 64, "embedding_dropout": 0.0, "min_count": 1}
FOR_TEXT = {"pooling": "mean", "dropout": 0.5, "embedding_dim": 256, "embedding_dropout": 0.5, "min_count": 2}


def training_length(n: int, batch_size: int | None, epochs: int | None) -> dict:
    """What ``batch_size=None`` and ``epochs=None`` become for ``n`` training sequences: batches of n / 8 sequences
    within [8, 32] (a small set still gets several updates a pass), and enough passes for MIN_UPDATES updates (at
    least MIN_EPOCHS). Only the settings left to the data are returned."""
    chosen = {}
    if batch_size is None:
        batch_size = chosen["batch_size"] = int(np.clip(n // 8, 8, 32))
    if epochs is None:
        per_epoch = math.ceil(n / batch_size)
        chosen["epochs"] = max(MIN_EPOCHS, math.ceil(MIN_UPDATES / per_epoch))
        chosen["updates"] = chosen["epochs"] * per_epoch
    return chosen


def holdout(codes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified validation split: a bool mask over the sequences, True for the held-out ones, ``fraction`` of
    each class (rounded; at least one of every class with two or more members, never a class's last one)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(codes), bool)
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        k = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        held[rng.choice(members, k, replace=False)] = True
    return held


class RNNClassifier(Estimator):
    """A sequence in, a class out: a (bidirectional) recurrent encoder, pooled, then a linear layer.

    Args:
        hidden_size, cell, num_layers, bidirectional, dropout, pooling, conv, stride: the ``ManyToOne`` model;
            ``conv=None`` (the default): the convolutional front end reads numeric sequences, not text.
            ``pooling``, ``dropout``, ``embedding_dim``, ``embedding_dropout`` and ``min_count`` left at None
            become FOR_NUMBERS's values for numbers and FOR_TEXT's for text (shown in ``chosen_``).
        epochs, batch_size, lr, weight_decay, clip_grad_norm, lr_schedule: training (see ``rnr.TrainConfig``);
            ``epochs=None`` and ``batch_size=None`` (the defaults) are chosen from the number of training sequences
            (``training_length``), and shown in ``chosen_`` and the ``repr``.
        standardize: scale each feature to zero mean and unit variance over the training steps.
        tokenizer, min_count, embedding_dim: when X is a list of strings, a ``rnr.data.text.Tokenizer`` ("word",
            "char" or "space"; tokens seen at least ``min_count`` times) and a learned embedding of this width read
            them. embedding_dropout: zeroes embeddings with this probability in training.
        augment: see each batch of numeric sequences through a random window (90%), gain and noise in training
            (``rnr.nn.augment.Augment``). Off by default: on ArrowHead it cost 7 points (docs/sequences.md).
        n_models: an ensemble of this many networks (seeds ``random_state``, +1, ...), whose probabilities are
            averaged; "auto" (the default): after the first, another while the time it took still fits in
            ``max_minutes``, up to ENSEMBLE_MAX (one without a budget); with validation data, the ensemble is kept
            only where its validation loss is below the first network's.
        max_minutes: a training time budget, for all networks together: no epoch starts that would end past it
            (judged by the longest one), and the cosine schedule ends with the budget where that comes before the
            last epoch. None: no budget.
        validation_fraction: without ``X_val``, hold out this share of the training sequences (stratified by
            label) for early stopping; "auto" (the default): VALIDATION_FRACTION from VALIDATION_MIN sequences on,
            else none; None or 0: none.
        patience: with validation data, stop after this many epochs without a lower validation loss and keep the
            best epoch's weights; None: a quarter of the epochs (at least 10).
        on_nonfinite: a NaN or inf loss or gradient: "error" (stop, keeping the weights from before it) or "skip"
            (drop that batch); see ``rnr.training.core``.
        random_state: the same random_state gives the same model.
        progress (keyword-only, like the run options after it): a progress bar per epoch; None: where standard
            error is a terminal.
        log_dir, checkpoint_dir, resume: metrics.csv per epoch, checkpoints, resuming (see ``rnr.TrainConfig``).

    Learned: ``classes_`` (sorted labels), ``n_features_in_``, ``models_`` (the ``ManyToOne`` networks) and
    ``model_`` (the first), ``mean_``, ``scale_`` (per feature), ``tokenizer_`` (text only, else None),
    ``history_`` (the first network's ``rnr.History``), ``chosen_`` (what the defaults became).
    """

    _estimator_type = "classifier"

    OPTIONS = {
        "hidden_size": Option("int", 1), "cell": Option("choice", choices=CELLS), "num_layers": Option("int", 1),
        "bidirectional": Option("bool"), "dropout": Option("real", 0, 1, open_high=True, none=True),
        "pooling": Option("choice", choices=("last", "mean", "max", None)), "conv": Option("bool", none=True),
        "stride": Option("int", 1), "augment": Option("bool"),
        "n_models": Option("int", 1, also=("auto",)), "epochs": Option("int", 1, none=True),
        "batch_size": Option("int", 1, none=True),
        "lr": Option("real", 0, open_low=True), "weight_decay": Option("real", 0),
        "clip_grad_norm": Option("real", 0, open_low=True, none=True),
        "lr_schedule": Option("choice", choices=(None, "cosine", "step", "plateau")), "standardize": Option("bool"),
        "tokenizer": Option("choice", choices=("word", "char", "space")), "min_count": Option("int", 1, none=True),
        "embedding_dim": Option("int", 1, none=True),
        "embedding_dropout": Option("real", 0, 1, open_high=True, none=True),
        "validation_fraction": Option("real", 0, 1, open_high=True, none=True, also=("auto",)),
        "patience": Option("int", 1, none=True), "max_minutes": Option("real", 0, open_low=True, none=True),
        "on_nonfinite": Option("choice", choices=("error", "skip")), "random_state": Option("seed"),
        **RUN_OPTION_TABLE}

    def __init__(self, hidden_size: int = 64, cell: str = "gru", num_layers: int = 1, bidirectional: bool = True,
                 dropout: float | None = None, pooling: str | None = None, conv: bool | None = None,
                 stride: int = 1, augment: bool = False, n_models: int | str = "auto",
                 epochs: int | None = None,
                 batch_size: int | None = None,
                 lr: float = 3e-3, weight_decay: float = 0.0, clip_grad_norm: float | None = 1.0,
                 lr_schedule: str | None = "cosine", standardize: bool = True, tokenizer: str = "word",
                 min_count: int | None = None, embedding_dim: int | None = None,
                 embedding_dropout: float | None = None,
                 validation_fraction: float | str | None = "auto", patience: int | None = None,
                 max_minutes: float | None = 5.0, on_nonfinite: str = "error",
                 random_state: int = 0, *,
                 progress: bool | None = None, log_dir: str | None = None, checkpoint_dir: str | None = None,
                 checkpoint_every: int | None = None, resume: bool = False):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def __sklearn_tags__(self):  # called by scikit-learn only, so it is installed
        from sklearn.utils import ClassifierTags, Tags, TargetTags  # optional: called by scikit-learn only

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), non_deterministic=False)

    # learning -----------------------------------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None) -> "RNNClassifier":
        """Learn from X (a list of (T_i, F) arrays, or one (N, T, F) array, or a list of strings) and labels y (N,);
        report the loss and accuracy on (X_val, y_val) after each epoch. Returns self."""
        check_options(self)
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        texts = _is_text(X)
        self.chosen_ = {k: v for k, v in FOR_TEXT.items() if getattr(self, k) is None} if texts else {}
        if texts:
            self.tokenizer_ = Tokenizer(self.tokenizer, min_count=self._setting("min_count")).fit(X)
            self.n_features_in_ = 1
            self.mean_, self.scale_ = np.zeros(1, np.float32), np.ones(1, np.float32)
        else:
            self.tokenizer_ = None
            seqs = _sequences(X, "X")
            self.n_features_in_ = seqs[0].shape[1]
            steps = np.concatenate(seqs).astype(np.float64)  # float64: squares of values near 1e20 overflow float32
            mean = steps.mean(0) if self.standardize else np.zeros(self.n_features_in_)
            scale = steps.std(0) if self.standardize else np.ones(self.n_features_in_)
            self.mean_ = mean.astype(np.float32)
            self.scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must hold one label per sequence of X ({len(X)}), got shape {y.shape}")
        if y.dtype == object and all(isinstance(v, str) for v in y):  # strings from pandas
            y = y.astype(str)
        missing = np.flatnonzero([v is None or (isinstance(v, (float, np.floating)) and v != v) for v in y.tolist()])
        if len(missing):
            raise ValueError(f"y must hold a label for every sequence, got None or NaN at positions "
                             f"{missing[:5].tolist()} ({len(missing)} in all); drop those sequences or label them")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least two classes, got only {self.classes_.tolist()}")
        inputs, codes = self._inputs(X), codes.astype(np.int64)
        held = None
        fraction = self.validation_fraction
        if fraction == "auto":
            fraction = VALIDATION_FRACTION if len(X) >= VALIDATION_MIN else None
        if X_val is None and fraction:
            held = holdout(codes, fraction, self.random_state)
            X_val, val_codes = [inputs[i] for i in np.flatnonzero(held)], codes[held]
            inputs, codes = [inputs[i] for i in np.flatnonzero(~held)], codes[~held]
        elif X_val is not None:
            X_val, val_codes = self._inputs(X_val), self._codes(y_val)
        self.chosen_.update(training_length(len(inputs), self.batch_size, self.epochs))
        if self.conv is None:
            self.chosen_["conv"] = not texts
        if self.augment and texts:
            raise ValueError("augment=True applies to numeric sequences; X holds texts: pass augment=False")
        if held is not None:
            self.chosen_["validation"] = int(held.sum())
        patience = self.patience
        if X_val is not None and patience is None:
            patience = self.chosen_["patience"] = max(10, self.chosen_.get("epochs", self.epochs or 0) // 4)
        data = SequenceData(inputs, torch.from_numpy(codes))
        val = None if X_val is None else SequenceData(X_val, torch.from_numpy(val_codes))
        start, budget = perf_counter(), None if self.max_minutes is None else 60 * self.max_minutes
        self.models_, self.history_ = [], None
        wanted = self.n_models if self.n_models != "auto" else ENSEMBLE_MAX if budget else 1
        while len(self.models_) < wanted:
            spent = perf_counter() - start
            n = len(self.models_)
            if n and self.n_models == "auto" and spent * (n + 1) / n > budget:
                break  # another network as long as the mean one so far would end past the budget
            left = None if budget is None else max(budget - spent, 1.0) / 60
            model, history = self._train_one(data, val, patience, self.random_state + len(self.models_), left)
            self.models_.append(model)
            if self.history_ is None:
                self.history_ = history
        self.model_ = self.models_[0]
        if self.n_models == "auto":
            if val is not None and len(self.models_) > 1 and not self._ensemble_helps(val):
                del self.models_[1:]
            self.chosen_["n_models"] = len(self.models_)
        return self

    def _train_one(self, data, val, patience, seed, max_minutes):
        """One network of the ensemble, trained from seed ``seed`` within ``max_minutes``. The first writes the logs
        and checkpoints (a resumed run resumes it); the others are trained again on resume."""
        first = seed == self.random_state
        torch.manual_seed(seed)
        model = self._build()
        history = train(model, data, val, epochs=self.chosen_.get("epochs", self.epochs),
                        batch_size=self.chosen_.get("batch_size", self.batch_size), lr=self.lr,
                        weight_decay=self.weight_decay, clip_grad_norm=self.clip_grad_norm,
                        lr_schedule=self.lr_schedule, patience=patience, max_minutes=max_minutes, seed=seed,
                        on_nonfinite=self.on_nonfinite, checkpoint_every=self.checkpoint_every,
                        progress=self.progress, bucket=True, log_dir=self.log_dir if first else None,
                        checkpoint_dir=self.checkpoint_dir if first else None, resume=self.resume and first)
        model.eval()
        return model, history

    @torch.no_grad()
    def _ensemble_helps(self, val: SequenceData) -> bool:
        """Whether the averaged probabilities of all networks have a lower log loss on ``val`` than the first's."""
        first = self._proba(val, self.models_[:1])
        every = self._proba(val, self.models_)
        target = torch.as_tensor(np.asarray([int(y) for y in val.Y]))
        def nll(p):
            return float(-torch.log(p[torch.arange(len(target)), target].clamp_min(1e-12)).mean())
        return nll(every) < nll(first)

    def _codes(self, y) -> np.ndarray:
        """Class indices of labels y, every label one seen in fit."""
        y = np.asarray(y)
        codes = np.searchsorted(self.classes_, y)
        bad = (codes >= len(self.classes_)) | (self.classes_[np.minimum(codes, len(self.classes_) - 1)] != y)
        if bad.any():
            raise ValueError(f"y_val holds labels the training labels lack, e.g. {y[bad][0].item()!r}; known: "
                             f"{self.classes_.tolist()}")
        return codes.astype(np.int64)

    def _setting(self, name: str):
        """A setting as the model uses it: given, chosen for the data (``chosen_``), or as for numbers."""
        value = getattr(self, name)
        return value if value is not None else self.chosen_.get(name, FOR_NUMBERS[name])

    def _build(self) -> ManyToOne:
        text = self.tokenizer_ is not None
        return ManyToOne(self._setting("embedding_dim") if text else self.n_features_in_, len(self.classes_),
                         hidden_size=self.hidden_size, cell=self.cell, num_layers=self.num_layers,
                         bidirectional=self.bidirectional, dropout=self._setting("dropout"), task="classification",
                         pooling=self._setting("pooling"), vocab_size=len(self.tokenizer_) if text else None,
                         embedding_dropout=self._setting("embedding_dropout"),
                         conv=self.chosen_.get("conv", self.conv) or False, stride=self.stride,
                         augment=self.augment)

    def _inputs(self, X) -> list[torch.Tensor]:
        """Token id sequences (text) or standardised (T_i, F) float tensors."""
        if self.tokenizer_ is not None:
            if not _is_text(X):
                raise TypeError("X must be a list of strings: the model was fitted on text")
            return [torch.tensor(self.tokenizer_.encode(t), dtype=torch.int64) for t in X]
        seqs = _sequences(X, "X", self.n_features_in_)
        return [torch.from_numpy((s - self.mean_) / self.scale_) for s in seqs]

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this RNNClassifier is not fitted yet; call fit(X, y) first")

    def predict_proba(self, X) -> np.ndarray:
        """(N, classes) probabilities, columns in the order of ``classes_``; the mean over the ensemble's networks."""
        self._check_fitted()
        seqs = self._inputs(X)
        return self._proba(SequenceData(seqs, torch.zeros(len(seqs), dtype=torch.int64)), self.models_).numpy()

    @staticmethod
    @torch.no_grad()
    def _proba(data: SequenceData, models) -> torch.Tensor:
        total = 0
        for model in models:
            model.eval()
            total = total + torch.cat([torch.softmax(model(b.x, b.x_lengths), -1) for b in data.batches(256)])
        return total / len(models)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

    def score(self, X, y) -> float:
        """Accuracy on (X, y)."""
        return float((self.predict(X) == np.asarray(y)).mean())

    # model files (rnr.save / rnr.load) ----------------------------------------------------------------------
    def _to_file(self) -> tuple[dict, dict]:
        self._check_fitted()
        if self.classes_.dtype.kind not in "iufUSb":
            raise ValueError(f"cannot save labels of dtype {self.classes_.dtype}: use numbers or strings")
        tensors = {f"{_prefix(i)}{k}": v for i, m in enumerate(self.models_) for k, v in m.state_dict().items()}
        tensors.update(mean=torch.from_numpy(np.asarray(self.mean_, np.float32)),
                       scale=torch.from_numpy(np.asarray(self.scale_, np.float32)))
        config = {"params": model_params(self), "classes": self.classes_.tolist(),
                  "classes_dtype": self.classes_.dtype.str, "n_features_in": int(self.n_features_in_),
                  "tokenizer": None if self.tokenizer_ is None else self.tokenizer_.to_state(),
                  "chosen": getattr(self, "chosen_", {}), "n_models": len(self.models_)}
        return tensors, config

    @classmethod
    def _from_file(cls, tensors: dict, config: dict, device="cpu") -> "RNNClassifier":
        self = cls(**config["params"])
        self.classes_ = np.array(config["classes"], dtype=config["classes_dtype"])
        self.n_features_in_ = config["n_features_in"]
        self.mean_, self.scale_ = tensors["mean"].numpy(), tensors["scale"].numpy()
        self.chosen_ = config.get("chosen", {})  # files written before the choices were kept have none
        if config["tokenizer"] is None:
            self.tokenizer_ = None
        else:
            self.tokenizer_ = Tokenizer.from_state(config["tokenizer"])
        self.models_ = []
        for i in range(config.get("n_models", 1)):  # files from before ensembles hold one network
            model, prefix = self._build(), _prefix(i)
            load_weights(model, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                         "the classifier file")
            self.models_.append(model.eval())
        self.model_ = self.models_[0]
        return self


def _prefix(i: int) -> str:
    """The model file's name for the tensors of the ensemble's i-th network ("model." for the first, as before)."""
    return "model." if i == 0 else f"model{i}."


def _is_text(X) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(t, str) for t in X)


def _sequences(X, name: str, n_features: int | None = None) -> list[np.ndarray]:
    """A list of (T_i, F) float32 arrays from a list of arrays or one (N, T, F) array, validated."""
    if isinstance(X, np.ndarray) and X.ndim == 3 or isinstance(X, torch.Tensor) and X.dim() == 3:
        X = list(np.asarray(X))
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        raise TypeError(f"{name} must be a non-empty list of (T_i, F) arrays (one per sequence) or an (N, T, F) "
                        f"array, got {type(X).__name__}")
    out = []
    for i, s in enumerate(X):
        try:
            a = np.asarray(s, dtype=np.float32) if not isinstance(s, torch.Tensor) else s.float().numpy()
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name}[{i}] must be a (T, F) array of numbers, got {type(s).__name__} ({e}); a "
                            f"model fitted on numeric sequences reads numeric sequences, one fitted on a list of "
                            f"strings reads strings") from None
        if a.ndim == 1:
            a = a[:, None]  # a univariate sequence
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"{name}[{i}] must be a (T, F) array with T >= 1, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}] holds NaN or inf; fill or drop missing values first")
        want = n_features if n_features is not None else (out[0].shape[1] if out else a.shape[1])
        if a.shape[1] != want:
            where = "the model was fitted on" if n_features is not None else "the first sequence has"
            raise ValueError(f"{name}[{i}] has {a.shape[1]} features, but {where} {want}; every sequence needs the "
                             f"same features")
        out.append(a)
    return out
