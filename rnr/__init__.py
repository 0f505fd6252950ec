"""rnr: recurrent neural networks for every kind of sequence.

Conventions, once for the whole package:
tensors are batch-first, ``(B, T, I)``; shape letters are ``B`` batch, ``T`` time, ``I`` input features,
``H`` hidden units, ``O`` outputs, ``L`` layers, ``D`` directions (1 or 2).

The model is the Elman RNN in row-vector form,
``h_t = phi(b_h + x_t W_x + h_{t-1} W_h)`` and ``y_t = b_o + h_t W_o``, with PyTorch's parameter layout
(``weight_ih = W_x^T``, ``weight_hh = W_h^T``, ``b_h = bias_ih + bias_hh``) so weights swap with ``torch.nn``.
"""

__version__ = "0.1.0"

from rnr import baselines, checkpoint, datasets, logs, metrics, tasks
from rnr.backtest import BacktestResult, backtest
from rnr.charlm import CharLM
from rnr.cells import ElmanCell, GRUCell, LSTMCell
from rnr.data import Batch, SequenceData, pad
from rnr.estimators import RNNClassifier
from rnr.forecast import RNNForecaster
from rnr.io import load, save
from rnr.losses import masked_loss
from rnr.panel import Panel
from rnr.rnn import RNN
from rnr.scaling import Scaler
from rnr.seq2seq import Seq2Seq
from rnr.stream import Stream
from rnr.text import Tokenizer
from rnr.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne
from rnr.train import History, TrainConfig, evaluate, fit

__all__ = [
    "RNN", "ElmanCell", "LSTMCell", "GRUCell", "Stream",
    "OneToOne", "OneToMany", "ManyToOne", "EncoderDecoder", "ManyToManySync",
    "SequenceData", "Batch", "pad", "masked_loss",
    "fit", "evaluate", "TrainConfig", "History", "save", "load",
    "Panel", "Scaler", "RNNForecaster", "backtest", "BacktestResult",
    "RNNClassifier", "Tokenizer", "CharLM", "Seq2Seq",
    "tasks", "metrics", "baselines", "datasets",
]
