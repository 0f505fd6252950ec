"""The recurrent core: one time step of each cell, the hand-written BPTT, the compiled CPU loops, the ``RNN`` layer
and streaming inference. It imports nothing else of rnr.

Modules: ``cells`` (Elman, LSTM, GRU steps; minGRU and minLSTM gates), ``bptt`` (Elman BPTT by hand and its
reference loop), ``kernels`` and ``fast`` (numba loops and their autograd wrappers), ``rnn`` (``RNN``: stacked,
bidirectional, ragged, dilated), ``dilation`` (dilated layers folded into the batch, and their reference loop),
``stream`` (``Stream``), ``scan`` (``linear_scan``: ``h_t = a_t * h_{t-1} + b_t`` over all steps at once, for minGRU
and minLSTM), ``checks`` (input validation shared by every layer above), ``threads`` (the threads of a training run:
the free cores, no more than its steps can use).
"""
from rnr.core.cells import ElmanCell, GRUCell, LSTMCell
from rnr.core.rnn import RNN
from rnr.core.stream import Stream

__all__ = ["RNN", "ElmanCell", "LSTMCell", "GRUCell", "Stream"]
