"""rnr: recurrent neural networks for every kind of sequence.

Conventions, once for the whole package:
tensors are batch-first, ``(B, T, I)``; shape letters are ``B`` batch, ``T`` time, ``I`` input features,
``H`` hidden units, ``O`` outputs, ``L`` layers, ``D`` directions (1 or 2).

The model is the Elman RNN in row-vector form,
``h_t = phi(b_h + x_t W_x + h_{t-1} W_h)`` and ``y_t = b_o + h_t W_o``, with PyTorch's parameter layout
(``weight_ih = W_x^T``, ``weight_hh = W_h^T``, ``b_h = bias_ih + bias_hh``) so weights swap with ``torch.nn``.
"""

# layers, bottom to top (docs/architecture.md): core -> data -> nn -> training -> forecast, sequences -> io, export
from rnr import metrics
from rnr._version import __version__
from rnr.core import RNN, ElmanCell, GRUCell, LSTMCell, Stream
from rnr.data import Batch, SequenceData, Tokenizer, datasets, pad, tasks
from rnr.forecast import BacktestResult, Panel, RNNForecaster, Scaler, backtest, baselines
from rnr.io import load, save
from rnr.nn import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne, masked_loss
from rnr.sequences import CharLM, RNNClassifier, Seq2Seq, Transcriber
from rnr.training import History, TrainConfig, checkpoint, evaluate, fit, logs

__all__ = [
    "RNN", "ElmanCell", "LSTMCell", "GRUCell", "Stream",
    "OneToOne", "OneToMany", "ManyToOne", "EncoderDecoder", "ManyToManySync",
    "SequenceData", "Batch", "pad", "masked_loss",
    "fit", "evaluate", "TrainConfig", "History", "save", "load",
    "Panel", "Scaler", "RNNForecaster", "backtest", "BacktestResult",
    "RNNClassifier", "Tokenizer", "CharLM", "Seq2Seq", "Transcriber",
    "tasks", "metrics", "baselines", "datasets",
]
