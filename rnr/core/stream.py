"""Streaming inference: one new observation of one sequence at a time, the state carried between calls.

A live forecaster or a sensor reads one value, updates its state and answers before the next value comes. For one
sequence and one step, every torch operation costs microseconds of dispatch against nanoseconds of arithmetic, so
``Stream`` keeps copies of the weights as numpy arrays and runs each step as one compiled call per layer
(``rnr.core.kernels``; torch's own step functions where numba is missing, and for minGRU and minLSTM, whose step is
two elementwise products after the input's).
"""
import numpy as np
import torch

from rnr.core import kernels
from rnr.core.cells import SCANNED, elman_step, gru_step, lstm_step, scanned_step
from rnr.core.rnn import PHI_CODES, RNN



class Stream:
    """Step an ``RNN`` through one sequence, one observation per call.

    The weights are copied when the stream is made (make a new one after more training). Bidirectional layers
    cannot stream: their backward direction needs the observations still to come.

    Args:
        rnn: a unidirectional ``rnr.RNN`` (any cell, any number of layers).
        state: the initial state, as ``rnn`` returns it for a batch of one (``(L, 1, H)``, or an ``(h, c)`` pair
            for LSTM); zeros by default.
        dtype: numpy dtype of the computation.

    Example:
        >>> rnn = RNN(3, 16, cell="gru", num_layers=2)
        >>> stream = Stream(rnn)
        >>> stream.step(np.array([0.1, 0.2, 0.3], dtype=np.float32)).shape  # the top layer's h_t
        (16,)
    """

    def __init__(self, rnn: RNN, state=None, dtype=np.float32):
        if not isinstance(rnn, RNN):
            raise TypeError(f"rnn must be an rnr.RNN, got {type(rnn).__name__}; models keep theirs as .rnn")
        if rnn.bidirectional:
            raise ValueError("rnn is bidirectional, which cannot stream: its backward direction reads the "
                             "observations still to come; use a unidirectional RNN, or run whole sequences")
        if any(d != 1 for d in rnn.dilation):
            raise ValueError(f"rnn has dilation={rnn.dilation}, which Stream does not carry (each dilated layer needs "
                             f"its last d states); stream an RNN with dilation=1, or run whole sequences")
        self.rnn, self.cell, self.dtype = rnn, rnn.cell, np.dtype(dtype)
        self.input_size, self.hidden_size = rnn.input_size, rnn.hidden_size
        self.compiled = kernels.AVAILABLE and rnn.cell not in SCANNED and (rnn.cell != "elman" or rnn.phi in PHI_CODES)
        self._layers = []
        for k in range(rnn.num_layers):
            w_ih, w_hh, b_ih, b_hh = (w.detach().clone() if w is not None else None
                                      for w in rnn._weights(k, 0))
            G = w_ih.shape[0]
            b_ih = torch.zeros(G) if b_ih is None else b_ih
            if rnn.cell in SCANNED:  # no recurrent weight: torch's step
                self._layers.append(dict(torch=(w_ih, None, b_ih, None)))
                continue
            b_hh = torch.zeros(G) if b_hh is None else b_hh
            arr = lambda t: np.ascontiguousarray(t.cpu().numpy(), dtype=self.dtype)  # noqa: E731
            bias = b_ih if rnn.cell == "gru" else b_ih + b_hh  # GRU keeps b_hh inside r * (.)
            self._layers.append(dict(w_ih_t=arr(w_ih.t()), wt=arr(w_hh.t()), bias=arr(bias), b_hh=arr(b_hh),
                                     torch=(w_ih, w_hh, b_ih, b_hh), scratch=np.empty(G, self.dtype),
                                     scratch2=np.empty(G, self.dtype)))
        self._code = PHI_CODES.get(rnn.phi, 0)
        self.reset(state)

    def reset(self, state=None) -> None:
        """Start a new sequence from ``state`` (zeros by default)."""
        L, H = self.rnn.num_layers, self.hidden_size
        shape = (L, 1, H)
        parts = state if isinstance(state, (tuple, list)) else (state,)
        n = 2 if self.cell == "lstm" else 1
        if state is not None:
            if len(parts) != n or any(tuple(p.shape) != shape for p in parts):
                raise ValueError(f"state must be {'an (h, c) pair of tensors' if n == 2 else 'a tensor'} of shape "
                                 f"{shape} (layers, one sequence, hidden), got "
                                 f"{[tuple(p.shape) for p in parts]}; pass the h_n the RNN returned for one sequence")
        self._h = [np.zeros(H, self.dtype) if state is None else parts[0][k, 0].detach().cpu().numpy().astype(self.dtype) for k in range(L)]
        self._c = [np.zeros(H, self.dtype) if state is None or n == 1 else parts[1][k, 0].detach().cpu().numpy().astype(self.dtype)
                   for k in range(L)] if n == 2 else None
        self._next = [np.empty(H, self.dtype) for _ in range(L)]
        self._next_c = [np.empty(H, self.dtype) for _ in range(L)] if n == 2 else None
        self.steps = 0

    @property
    def state(self):
        """The current state as the RNN returns it for one sequence: (L, 1, H), or an (h, c) pair for LSTM."""
        h = torch.from_numpy(np.stack(self._h)[:, None].copy())
        return (h, torch.from_numpy(np.stack(self._c)[:, None].copy())) if self.cell == "lstm" else h

    def step(self, x) -> np.ndarray:
        """Read one observation x (input_size,) and return the top layer's new h_t (hidden_size,)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.shape != (self.input_size,):
            raise ValueError(f"x must be one observation of shape ({self.input_size},), got shape {x.shape}; "
                             f"pass the input_size={self.input_size} features of a single time step")
        for k, layer in enumerate(self._layers):
            h, new = self._h[k], self._next[k]
            if not self.compiled:
                self._step_torch(k, layer, x)
            elif self.cell == "elman":
                kernels.elman_step(x, h, layer["w_ih_t"], layer["wt"], layer["bias"], self._code, new)
            elif self.cell == "lstm":
                kernels.lstm_step(x, h, self._c[k], layer["w_ih_t"], layer["wt"], layer["bias"], new,
                                  self._next_c[k], layer["scratch"])
            else:
                kernels.gru_step(x, h, layer["w_ih_t"], layer["bias"], layer["wt"], layer["b_hh"], new,
                                 layer["scratch"], layer["scratch2"])
            self._h[k], self._next[k] = new, h  # the new state; the old buffer takes the next step
            if self.cell == "lstm":
                self._c[k], self._next_c[k] = self._next_c[k], self._c[k]
            x = new
        self.steps += 1
        return x.copy()

    def _step_torch(self, k, layer, x) -> None:
        w_ih, w_hh, b_ih, b_hh = layer["torch"]
        with torch.no_grad():
            xw = torch.from_numpy(x).to(w_ih.dtype) @ w_ih.t() + b_ih
            h = torch.from_numpy(self._h[k]).to(w_ih.dtype)
            if self.cell == "lstm":
                new, c = lstm_step(xw, h, torch.from_numpy(self._c[k]).to(w_ih.dtype), w_hh, b_hh)
                self._next_c[k][:] = c.numpy()
            elif self.cell == "gru":
                new = gru_step(xw, h, w_hh, b_hh)
            elif self.cell in SCANNED:
                new = scanned_step(self.cell, xw, h)
            else:
                new = elman_step(xw, h, w_hh, b_hh, self.rnn.phi)
        self._next[k][:] = new.numpy()

    def __repr__(self) -> str:
        return f"Stream({self.rnn!r}, steps={self.steps})"
