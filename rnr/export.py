"""ONNX export for step-by-step inference: one time step per call, the recurrent state in and out of the graph.

``export_onnx(model, path)`` writes a graph that computes one step of a unidirectional ``rnr.RNN``, an
``rnr.ManyToManySync`` or a fitted ``rnr.CharLM``. The caller holds the state and feeds it back, so the same
graph serves streaming, sampling and beam search in any ONNX runtime. The graph is built node by node from the
model's weights with ``onnx.helper`` (Gemm, Add, Mul, Sub, Neg, Tanh, Sigmoid, Softplus, Relu, Split, Gather,
Unsqueeze, Concat), following the step functions of ``rnr.core.cells`` exactly: LSTM gates in PyTorch's order
(i, f, g, o), GRU gates (r, z, n) with ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))`` and
``h_t = (1 - z) * n + z * h_{t-1}``; minGRU and minLSTM as ``rnr.core.cells.scanned_gates`` writes them (a step of
a layer that trains over all steps at once is still one step here).

Inputs and outputs (``B`` is symbolic: any batch size; ``L`` layers, ``H`` hidden units, all float32):

==================  ====================================  ===================================================
model               inputs                                outputs
==================  ====================================  ===================================================
``CharLM``          ``ids`` int64 (B,), ``h`` (L, B, H)   ``logits`` (B, V), ``h_out`` (L, B, H)
``RNN``             ``x`` (B, I), ``h`` (L, B, H)         ``y`` (B, H): the last layer's ``h_t``; ``h_out``
``ManyToManySync``  ``x`` (B, I), ``h`` (L, B, H); with   ``y`` (B, O), ``h_out``
                    ``vocab_size``, ``ids`` int64 (B,)
==================  ====================================  ===================================================

LSTM models also take ``c`` (L, B, H) and return ``c_out``. A zero state starts a sequence, as in ``rnr``.
Dropout is left out (the model as in ``eval()``). The model's ``metadata_props`` hold ``rnr_version``, ``class``,
``cell``, ``input_size``, ``hidden_size``, ``num_layers``, ``inputs``, ``outputs`` (comma-separated names),
``nonlinearity`` (Elman), ``output_size`` (``ManyToManySync``) and, for a ``CharLM``, ``vocab``: a JSON list whose
entry ``i`` is the character of id ``i``.

Example (greedy generation with onnxruntime)::

    >>> from rnr.export import export_onnx
    >>> export_onnx(lm, "lm.onnx")                                   # lm: a fitted CharLM(cell="lstm")
    >>> import json, numpy as np, onnxruntime as ort
    >>> sess = ort.InferenceSession("lm.onnx")
    >>> meta = sess.get_modelmeta().custom_metadata_map
    >>> vocab, L, H = json.loads(meta["vocab"]), int(meta["num_layers"]), int(meta["hidden_size"])
    >>> h = c = np.zeros((L, 1, H), np.float32)                     # batch of 1
    >>> ids, text = np.array([vocab.index("T")], np.int64), "T"
    >>> for _ in range(100):
    ...     logits, h, c = sess.run(None, {"ids": ids, "h": h, "c": c})
    ...     ids = logits.argmax(-1)
    ...     text += vocab[ids[0]]

Reference: ONNX operators, https://onnx.ai/onnx/operators/.
"""
import json
import os
from pathlib import Path

import torch

from rnr import weights as _safefile
from rnr._version import __version__
from rnr.core.cells import PHIS, SCANNED
from rnr.core.rnn import RNN
from rnr.nn.topologies import ManyToManySync
from rnr.sequences.charlm import CharLM

MIN_OPSET = 13  # Split and Unsqueeze take their sizes and axes as inputs from opset 13 on
_PHI_OPS = {PHIS["tanh"]: "Tanh", PHIS["relu"]: "Relu", PHIS["sigmoid"]: "Sigmoid", PHIS["identity"]: "Identity"}


def _import_onnx():
    try:
        import onnx  # optional: rnr[export]
    except ImportError:
        raise ImportError("export_onnx needs the onnx package, which is not installed; pip install 'rnr[export]' "
                          "(or pip install onnx)") from None
    return onnx


class _Graph:
    """The nodes and weights of one ONNX graph; every intermediate value gets a fresh name."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.weights, self._count = onnx, [], [], 0

    def const(self, name: str, value) -> str:
        """A weight (a tensor, cast to float32) or an int64 constant (a list or int) as an initializer."""
        if isinstance(value, torch.Tensor):
            array = value.detach().cpu().to(torch.float32).numpy()
        else:
            array = torch.tensor(value, dtype=torch.int64).numpy()
        self.weights.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        """Add one node; returns its output name, or a list of names when it has several outputs."""
        self._count += 1
        names = [name] if name else [f"{op_type.lower()}{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, name=f"n{self._count}", **attrs))
        return names[0] if outputs == 1 else names


def _linear(g: _Graph, x: str, weight, bias, prefix: str, name: str | None = None) -> str:
    """x W^T + b with PyTorch's (out, in) weight layout: Gemm(transB=1). x (B, in) -> (B, out)."""
    args = [x, g.const(f"{prefix}.weight", weight)]
    if bias is not None:
        args.append(g.const(f"{prefix}.bias", bias))
    return g.op("Gemm", *args, transB=1, name=name)


def _cell_step(g: _Graph, rnn, k: int, x: str, h: str, c: str | None, phi_op: str | None):
    """One step of layer k, as ``rnr.core.cells.{elman,lstm,gru}_step``. x (B, I_k), h and c (B, H) -> h_t, c_t."""
    w_ih, w_hh, b_ih, b_hh = rnn._weights(k, 0)
    xw = _linear(g, x, w_ih, b_ih, f"rnn.l{k}.ih")  # (B, G*H): x_t W_x + b_ih
    if rnn.cell in SCANNED:  # no recurrent weight
        return _scanned_step(g, rnn.cell, k, xw, h, rnn.hidden_size), None
    hw = _linear(g, h, w_hh, b_hh, f"rnn.l{k}.hh")  # (B, G*H): h_{t-1} W_h + b_hh
    if rnn.cell == "elman":  # h_t = phi(xw + hw)
        return g.op(phi_op, g.op("Add", xw, hw)), None
    H = rnn.hidden_size
    if rnn.cell == "lstm":  # c_t = sig(f) * c + sig(i) * tanh(g); h_t = sig(o) * tanh(c_t)
        i, f, gg, o = g.op("Split", g.op("Add", xw, hw), g.const(f"split4.l{k}", [H] * 4), axis=1, outputs=4)
        c = g.op("Add", g.op("Mul", g.op("Sigmoid", f), c), g.op("Mul", g.op("Sigmoid", i), g.op("Tanh", gg)))
        return g.op("Mul", g.op("Sigmoid", o), g.op("Tanh", c)), c
    sizes = g.const(f"split3.l{k}", [H] * 3)
    x_r, x_z, x_n = g.op("Split", xw, sizes, axis=1, outputs=3)
    h_r, h_z, h_n = g.op("Split", hw, sizes, axis=1, outputs=3)
    r = g.op("Sigmoid", g.op("Add", x_r, h_r))
    z = g.op("Sigmoid", g.op("Add", x_z, h_z))
    n = g.op("Tanh", g.op("Add", x_n, g.op("Mul", r, h_n)))
    one_minus_z = g.op("Sub", g.const(f"one.l{k}", torch.ones(())), z)
    return g.op("Add", g.op("Mul", one_minus_z, n), g.op("Mul", z, h)), None  # h_t = (1 - z) * n + z * h


def _scanned_step(g: _Graph, cell: str, k: int, xw: str, h: str, H: int) -> str:
    """One step of minGRU or minLSTM, as ``rnr.core.cells.scanned_gates``: h_t = a * h_{t-1} + b. xw (B, G*H)."""
    if cell == "mingru":  # z = sig(xw_z), h_t = (1 - z) * h + z * h~
        z, h_new = g.op("Split", xw, g.const(f"split2.l{k}", [H] * 2), axis=1, outputs=2)
        z = g.op("Sigmoid", z)
        one_minus_z = g.op("Sub", g.const(f"one.l{k}", torch.ones(())), z)
        return g.op("Add", g.op("Mul", one_minus_z, h), g.op("Mul", z, h_new))
    # f' = sig(d), i' = sig(-d), d = log sig(xw_f) - log sig(xw_i) = softplus(-xw_i) - softplus(-xw_f)
    f, i, h_new = g.op("Split", xw, g.const(f"split3.l{k}", [H] * 3), axis=1, outputs=3)
    d = g.op("Sub", g.op("Softplus", g.op("Neg", i)), g.op("Softplus", g.op("Neg", f)))
    return g.op("Add", g.op("Mul", g.op("Sigmoid", d), h), g.op("Mul", g.op("Sigmoid", g.op("Neg", d)), h_new))


def _stack(g: _Graph, states: list[str], name: str) -> str:
    """(B, H) per layer -> (L, B, H) named ``name``."""
    axis0 = g.const(f"axis0.{name}", [0])
    rows = [g.op("Unsqueeze", s, axis0, name=name if len(states) == 1 else None) for s in states]
    return rows[0] if len(rows) == 1 else g.op("Concat", *rows, axis=0, name=name)


def _rnn_step(g: _Graph, rnn, x: str, last: str | None) -> str:
    """All layers of one step: reads the graph inputs h (and c), writes h_out (and c_out); returns the last h_t,
    named ``last`` when given."""
    phi_op = _PHI_OPS[rnn.phi] if rnn.cell == "elman" else None
    lstm = rnn.cell == "lstm"
    hs, cs = [], []
    for k in range(rnn.num_layers):
        layer = g.const(f"layer{k}", k)  # a scalar index: Gather drops the layer axis
        h = g.op("Gather", "h", layer, axis=0)  # (B, H)
        c = g.op("Gather", "c", layer, axis=0) if lstm else None
        x, c = _cell_step(g, rnn, k, x, h, c, phi_op)
        hs.append(x)
        cs.append(c)
    _stack(g, hs, "h_out")
    if lstm:
        _stack(g, cs, "c_out")
    return g.op("Identity", x, name=last) if last else x


def _check_model(model):
    """The RNN inside ``model`` and the model's class name, or a TypeError/ValueError that says what to do."""
    if isinstance(model, CharLM):
        if not hasattr(model, "net_"):
            raise ValueError("model must be fitted to be exported, got an unfitted CharLM; call model.fit(text) "
                             "first, or load a saved one with rnr.load(path)")
        rnn = model.net_.rnn
    elif isinstance(model, ManyToManySync):
        rnn = model.rnn
    elif isinstance(model, RNN):
        rnn = model
    else:
        raise TypeError(f"model must be an rnr.RNN, an rnr.ManyToManySync or a fitted rnr.CharLM, got "
                        f"{type(model).__name__}; for another torch.nn.Module use torch.onnx.export")
    if rnn.bidirectional:
        raise ValueError(f"model must be unidirectional to run one step at a time (its backward direction reads "
                         f"the future), got bidirectional=True in {type(model).__name__}; train it with "
                         f"bidirectional=False to export it")
    if any(d != 1 for d in rnn.dilation):
        raise ValueError(f"model must have dilation 1 to be exported one step at a time, got dilation={rnn.dilation} "
                         f"in {type(model).__name__}; train it with dilation=1 to export it")
    if rnn.cell == "elman" and rnn.phi not in _PHI_OPS:
        phi = getattr(rnn.nonlinearity, "__name__", rnn.nonlinearity)
        raise ValueError(f"nonlinearity must be one of {sorted(PHIS)} to be exported (an ONNX graph "
                         f"holds no Python code), got the callable {phi!r}; train with a built-in name, e.g. "
                         f"nonlinearity='tanh'")
    return rnn, type(model).__name__


def export_onnx(model, path, opset: int = 17) -> Path:
    """Write one time step of ``model`` as an ONNX graph with the recurrent state as input and output.

    Args:
        model: a unidirectional ``rnr.RNN`` (Elman with a built-in nonlinearity, LSTM, GRU, minGRU or minLSTM, any
            number of layers), an ``rnr.ManyToManySync`` around one, or a fitted ``rnr.CharLM``.
        path: the file to write (``.onnx``); parent folders are made, and the write is atomic.
        opset: the ONNX operator set, from 13 to the installed onnx's newest.

    Returns the path written. Inputs and outputs are listed in the module docstring; a step of the graph equals
    one step of ``model`` in eval mode (dropout off) on float32.

    Example:
        >>> rnn = RNN(3, 16, cell="gru", num_layers=2)
        >>> export_onnx(rnn, "step.onnx")        # inputs x (B, 3), h (2, B, 16); outputs y (B, 16), h_out
    """
    onnx = _import_onnx()
    rnn, kind = _check_model(model)
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest} (the installed onnx's newest), got "
                         f"{opset!r}; the default, 17, runs on onnxruntime >= 1.13")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}; pass e.g. 'model.onnx'")

    helper, FLOAT, INT64 = onnx.helper, onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    g = _Graph(onnx)
    L, H = rnn.num_layers, rnn.hidden_size
    state = ["h", "c"] if rnn.cell == "lstm" else ["h"]
    meta = {"rnr_version": __version__, "class": kind, "cell": rnn.cell, "input_size": str(rnn.input_size),
            "hidden_size": str(H), "num_layers": str(L)}
    if rnn.cell == "elman":
        meta["nonlinearity"] = _PHI_OPS[rnn.phi].lower()
    if kind == "CharLM":
        net = model.net_
        x_info = helper.make_tensor_value_info("ids", INT64, ["B"])
        x = g.op("Gather", g.const("embedding.weight", net.embedding.weight), "ids", axis=0)  # (B, E)
        _linear(g, _rnn_step(g, rnn, x, None), net.head.weight, net.head.bias, "head", name="logits")
        y_info = helper.make_tensor_value_info("logits", FLOAT, ["B", net.head.out_features])
        meta["vocab"] = json.dumps(model.vocab_, ensure_ascii=False)
    elif kind == "ManyToManySync":
        if model.embedding is not None:
            x_info = helper.make_tensor_value_info("ids", INT64, ["B"])
            x = g.op("Gather", g.const("embedding.weight", model.embedding.weight), "ids", axis=0)  # (B, I)
        else:
            x_info, x = helper.make_tensor_value_info("x", FLOAT, ["B", rnn.input_size]), "x"
        _linear(g, _rnn_step(g, rnn, x, None), model.head.weight, model.head.bias, "head", name="y")
        y_info = helper.make_tensor_value_info("y", FLOAT, ["B", model.head.out_features])
        meta["output_size"] = str(model.head.out_features)
    else:
        x_info = helper.make_tensor_value_info("x", FLOAT, ["B", rnn.input_size])
        _rnn_step(g, rnn, "x", "y")
        y_info = helper.make_tensor_value_info("y", FLOAT, ["B", H])
    inputs = [x_info] + [helper.make_tensor_value_info(s, FLOAT, [L, "B", H]) for s in state]
    outputs = [y_info] + [helper.make_tensor_value_info(f"{s}_out", FLOAT, [L, "B", H]) for s in state]
    meta["inputs"] = ",".join(v.name for v in inputs)
    meta["outputs"] = ",".join(v.name for v in outputs)

    graph = helper.make_graph(g.nodes, f"rnr_{kind}_step", inputs, outputs, g.weights,
                              doc_string=f"One step of an rnr {kind} ({rnn.cell}); feed h_out back as h.")
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="rnr", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return _safefile.write_bytes(path, proto.SerializeToString())
