"""rnr.export.export_onnx: one step in onnxruntime, fed its own state, equals rnr's forward over the sequence."""
import json
import os
import sys

import numpy as np
import pytest
import torch

from rnr import RNN, CharLM, ManyToManySync
from rnr.export import export_onnx

ort = pytest.importorskip("onnxruntime")

CELLS = [("elman", "tanh"), ("elman", "relu"), ("lstm", "tanh"), ("gru", "tanh"), ("mingru", "tanh"),
         ("minlstm", "tanh")]
TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 6


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def zero_state(cell, L, B, H):
    h = torch.zeros(L, B, H)
    return (h, h.clone()) if cell == "lstm" else h


def run_steps(sess, x, state, x_name="x"):
    """Feed x (B, T, ...) one step at a time, the state fed back: outputs (B, T, ...) and the final state."""
    names = ["h", "c"] if isinstance(state, tuple) else ["h"]
    state = [s.numpy() for s in state] if isinstance(state, tuple) else [state.numpy()]
    ys = []
    for t in range(x.shape[1]):
        y, *state = sess.run(None, {x_name: x[:, t].numpy(), **dict(zip(names, state))})
        ys.append(torch.from_numpy(y))
    state = [torch.from_numpy(s) for s in state]
    return torch.stack(ys, dim=1), (tuple(state) if len(state) == 2 else state[0])


def assert_states_close(actual, expected):
    for a, e in zip(*[s if isinstance(s, tuple) else (s,) for s in (actual, expected)]):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell, phi", CELLS, ids=[f"{c}-{p}" for c, p in CELLS])
def test_rnn_steps_match_the_sequence(tmp_path, cell, phi, num_layers):
    rnn = RNN(4, 6, cell=cell, nonlinearity=phi, num_layers=num_layers).eval()
    path = export_onnx(rnn, tmp_path / "rnn.onnx")
    x = torch.randn(3, 10, 4)
    h0 = zero_state(cell, num_layers, 3, 6)
    h0 = tuple(torch.randn_like(s) for s in h0) if cell == "lstm" else torch.randn_like(h0)  # a carried state
    with torch.no_grad():
        out, h_n = rnn(x, h0)
    ys, state = run_steps(session(path), x, h0)
    torch.testing.assert_close(ys, out, atol=1e-5, rtol=1e-5)
    assert_states_close(state, h_n)


def test_graph_inputs_outputs_and_metadata(tmp_path):
    sess = session(export_onnx(RNN(4, 6, cell="lstm", num_layers=2), tmp_path / "m.onnx", opset=13))
    assert [(i.name, i.type, i.shape) for i in sess.get_inputs()] == [
        ("x", "tensor(float)", ["B", 4]), ("h", "tensor(float)", [2, "B", 6]), ("c", "tensor(float)", [2, "B", 6])]
    assert [o.name for o in sess.get_outputs()] == ["y", "h_out", "c_out"]
    meta = sess.get_modelmeta().custom_metadata_map
    assert {k: meta[k] for k in ("class", "cell", "hidden_size", "num_layers", "inputs", "outputs")} == {
        "class": "RNN", "cell": "lstm", "hidden_size": "6", "num_layers": "2", "inputs": "x,h,c",
        "outputs": "y,h_out,c_out"}
    assert meta["rnr_version"] == __import__("rnr").__version__


@pytest.mark.parametrize("batch", [1, 5])
def test_batch_size_is_dynamic(tmp_path, batch):
    rnn = RNN(2, 5, cell="gru", num_layers=2)
    path = export_onnx(rnn, tmp_path / "gru.onnx")
    x, h0 = torch.randn(batch, 4, 2), torch.zeros(2, batch, 5)
    with torch.no_grad():
        out, h_n = rnn(x)
    ys, state = run_steps(session(path), x, h0)
    torch.testing.assert_close(ys, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, h_n, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "minlstm"])
def test_charlm_logits_match_its_net(tmp_path, cell):
    lm = CharLM(hidden_size=16, embedding_dim=8, seq_len=16, batch_size=4, epochs=1, cell=cell, num_layers=2,
                progress=False).fit(TEXT)
    sess = session(export_onnx(lm, tmp_path / "lm" / "lm.onnx"))
    meta = sess.get_modelmeta().custom_metadata_map
    vocab = json.loads(meta["vocab"])
    assert vocab == lm.vocab_ and meta["class"] == "CharLM"
    ids = torch.tensor([[lm.index_[ch] for ch in TEXT[:12]], [lm.index_[ch] for ch in TEXT[20:32]]])  # (2, 12)
    lm.net_.eval()
    with torch.no_grad():
        logits, final = lm.net_(ids)
    steps, state = run_steps(sess, ids, zero_state(cell, 2, 2, 16), x_name="ids")
    torch.testing.assert_close(steps, logits, atol=1e-5, rtol=1e-5)
    assert_states_close(state, final)
    # the metadata vocabulary turns the graph's ids back into text
    assert "".join(vocab[i] for i in ids[0].tolist()) == TEXT[:12]


@pytest.mark.parametrize("vocab_size", [None, 7])
def test_many_to_many_sync(tmp_path, vocab_size):
    model = ManyToManySync(3, 2, hidden_size=8, cell="lstm", num_layers=2, vocab_size=vocab_size).eval()
    path = export_onnx(model, tmp_path / "m2m.onnx")
    x = torch.randint(0, 7, (3, 10)) if vocab_size else torch.randn(3, 10, 3)
    with torch.no_grad():
        y, h_n = model(x, return_state=True)
    ys, state = run_steps(session(path), x, zero_state("lstm", 2, 3, 8), x_name="ids" if vocab_size else "x")
    torch.testing.assert_close(ys, y, atol=1e-5, rtol=1e-5)
    assert_states_close(state, h_n)
    assert session(path).get_modelmeta().custom_metadata_map["output_size"] == "2"


def test_dropout_is_left_out(tmp_path):
    """A model exported in training mode still computes its eval-mode step."""
    rnn = RNN(3, 5, num_layers=2, dropout=0.5).train()
    x = torch.randn(2, 6, 3)
    ys, _ = run_steps(session(export_onnx(rnn, tmp_path / "d.onnx")), x, torch.zeros(2, 2, 5))
    with torch.no_grad():
        torch.testing.assert_close(ys, rnn.eval()(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model, error, match", [
    (RNN(3, 4, bidirectional=True), ValueError, r"model must be unidirectional.*bidirectional=True in RNN.*"
                                                r"bidirectional=False to export"),
    (ManyToManySync(3, 1, bidirectional=True), ValueError, r"bidirectional=True in ManyToManySync"),
    (CharLM(), ValueError, r"model must be fitted.*unfitted CharLM; call model.fit\(text\)"),
    (torch.nn.LSTM(3, 4), TypeError, r"model must be an rnr.RNN.*got LSTM; .*torch.onnx.export"),
    ("model.pt", TypeError, r"model must be .*got str"),
    (RNN(3, 4, nonlinearity=torch.nn.functional.softsign), ValueError,
     r"nonlinearity must be one of \['identity', 'relu', 'sigmoid', 'tanh'\].*got the callable 'softsign'.*"
     r"nonlinearity='tanh'"),
])
def test_errors_name_the_argument_and_the_fix(tmp_path, model, error, match):
    with pytest.raises(error, match=match):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [12, 999, "17", True])
def test_opset_is_checked(tmp_path, opset):
    with pytest.raises(ValueError, match=rf"opset must be an int from 13 to \d+.*got {opset!r}"):
        export_onnx(RNN(3, 4), tmp_path / "m.onnx", opset=opset)


def test_path_is_checked():
    with pytest.raises(TypeError, match="path must be a str or pathlib.Path, got int"):
        export_onnx(RNN(3, 4), 7)


def test_without_onnx_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'rnr\[export\]'"):
        export_onnx(RNN(3, 4), tmp_path / "m.onnx")


def test_writes_atomically(tmp_path, monkeypatch):
    path = tmp_path / "new" / "folder" / "m.onnx"
    assert export_onnx(RNN(3, 4), str(path)) == path  # parent folders made; a str path works
    assert os.listdir(path.parent) == ["m.onnx"]  # no temporary file left
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(RNN(3, 4, cell="gru"), path)
    assert path.read_bytes() == before and os.listdir(path.parent) == ["m.onnx"]  # old file kept, temp removed


def test_float64_model_exports_float32(tmp_path):
    rnn = RNN(3, 4, cell="gru").double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    ys, _ = run_steps(session(export_onnx(rnn, tmp_path / "m.onnx")), x.float(), torch.zeros(1, 2, 4))
    with torch.no_grad():
        torch.testing.assert_close(ys, rnn(x)[0].float(), atol=1e-5, rtol=1e-5)
