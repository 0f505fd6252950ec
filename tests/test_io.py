"""rnr.save / rnr.load: round trips for every topology and cell, no pickle, pinned errors, atomic writes."""
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import rnr
from rnr import weights as _safefile
from rnr.io import FORMAT_VERSION

CELLS = ["elman", "lstm", "gru"]
B, T, I, O, H = 3, 5, 3, 2, 8
LENGTHS = torch.tensor([5, 2, 4])

# name -> (constructor keywords besides the cell, forward call); non-default settings so the config matters.
# A new topology adds one line here.
TOPOLOGY_CASES = {
    "OneToOne": (dict(input_size=I, output_size=O, hidden_size=H, num_layers=2),
                 lambda m, x: m(x[:, 0])),
    "OneToMany": (dict(input_size=I, output_size=O, hidden_size=H, steps=4, num_layers=2),
                  lambda m, x: m(x[:, 0])),
    "ManyToOne": (dict(input_size=I, output_size=O, hidden_size=H, bidirectional=True, pooling="mean"),
                  lambda m, x: m(x, LENGTHS)),
    "EncoderDecoder": (dict(input_size=I, output_size=O, hidden_size=H, attention="additive", teacher_forcing=0.5),
                       lambda m, x: m(x, LENGTHS, steps=4)),
    "ManyToManySync": (dict(input_size=I, output_size=O, hidden_size=H, num_layers=2, task="classification"),
                       lambda m, x: m(x, LENGTHS)),
}


def _x():
    return torch.randn(B, T, I, generator=torch.Generator().manual_seed(1))


def _model_file(tmp_path, name="model.safetensors"):
    model = rnr.ManyToOne(I, O, hidden_size=H, cell="gru")
    return model, rnr.save(model, tmp_path / name)


def _rewrite(path, tensors=None, **meta_changes):
    """Rewrite an rnr file with edited tensors or metadata (the digest recomputed, so only the edit is wrong)."""
    old_tensors, meta = _safefile.read(path)
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    meta.update(meta_changes)
    _safefile.write(path, old_tensors if tensors is None else tensors, meta)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name", list(TOPOLOGY_CASES))
def test_save_load_round_trip_gives_identical_outputs(tmp_path, name, cell):
    kwargs, call = TOPOLOGY_CASES[name]
    model = getattr(rnr, name)(cell=cell, **kwargs).eval()
    path = rnr.save(model, tmp_path / "m.safetensors")
    loaded = rnr.load(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert repr(loaded) == repr(model)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    x = _x()
    assert torch.equal(call(loaded, x), call(model, x))


def test_round_trip_of_a_token_model_with_embedding_and_beam_search(tmp_path):
    model = rnr.EncoderDecoder(4, 6, hidden_size=H, cell="lstm", task="classification", vocab_size=7, eos=5,
                               attention="dot", max_steps=6).eval()
    loaded = rnr.load(rnr.save(model, tmp_path / "m.safetensors"))
    x = torch.randint(0, 7, (B, T), generator=torch.Generator().manual_seed(2))
    out, lengths = model.generate(x, LENGTHS, beam_size=3)
    out2, lengths2 = loaded.generate(x, LENGTHS, beam_size=3)
    assert torch.equal(out, out2) and torch.equal(lengths, lengths2)


@pytest.mark.parametrize("cell", CELLS)
def test_rnn_round_trip(tmp_path, cell):
    model = rnr.RNN(I, H, cell=cell, num_layers=2, bidirectional=True, bias=cell != "gru", impl="loop")
    loaded = rnr.load(rnr.save(model, tmp_path / "rnn.safetensors"))
    assert type(loaded) is rnr.RNN and loaded.config == model.config
    out, h_n = model.eval()(_x(), lengths=LENGTHS)
    out2, h_n2 = loaded(_x(), lengths=LENGTHS)
    assert torch.equal(out, out2)
    for a, b in zip(h_n if cell == "lstm" else [h_n], h_n2 if cell == "lstm" else [h_n2]):
        assert torch.equal(a, b)


def test_rnn_with_a_named_nonlinearity_round_trips(tmp_path):
    model = rnr.RNN(I, H, nonlinearity="sigmoid")
    loaded = rnr.load(rnr.save(model, tmp_path / "rnn.safetensors"))
    assert loaded.config["nonlinearity"] == "sigmoid"
    assert torch.equal(loaded(_x())[0], model(_x())[0])


@settings(max_examples=8, deadline=None)
@given(hidden=st.integers(1, 6), layers=st.integers(1, 2), bidirectional=st.booleans(),
       cell=st.sampled_from(CELLS), pooling=st.sampled_from(["last", "mean", "max"]))
def test_save_then_load_gives_identical_predictions_for_any_config(hidden, layers, bidirectional, cell, pooling):
    model = rnr.ManyToOne(I, O, hidden_size=hidden, num_layers=layers, bidirectional=bidirectional, cell=cell,
                          pooling=pooling).eval()
    with tempfile.TemporaryDirectory() as d:
        loaded = rnr.load(rnr.save(model, Path(d) / "m.safetensors"))
    assert torch.equal(loaded(_x(), LENGTHS), model(_x(), LENGTHS))


def test_load_returns_a_model_in_eval_mode_on_the_device(tmp_path):
    model = rnr.ManyToManySync(I, O, hidden_size=H, num_layers=2, dropout=0.5).train()
    loaded = rnr.load(rnr.save(model, tmp_path / "m.safetensors"), device="cpu")
    assert not loaded.training and not any(m.training for m in loaded.modules())
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x = _x()
    assert torch.equal(loaded(x), loaded(x))  # dropout is off


def test_save_returns_the_path_and_creates_folders(tmp_path):
    model = rnr.OneToOne(I, O, hidden_size=H)
    path = rnr.save(model, tmp_path / "a" / "b" / "m.safetensors")
    assert path == tmp_path / "a" / "b" / "m.safetensors" and path.is_file()


# ---------------------------------------------------------------- what cannot be saved


def test_custom_nonlinearity_cannot_be_saved(tmp_path):
    model = rnr.ManyToOne(I, O, hidden_size=H, nonlinearity=lambda z: z.clamp(-1, 1))
    with pytest.raises(ValueError, match="cannot save ManyToOne with nonlinearity='<lambda>': a custom function is "
                                         "code, and rnr files hold no code"):
        rnr.save(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_a_plain_module_cannot_be_saved(tmp_path):
    with pytest.raises(TypeError, match=r"model must be one of \[.*'ManyToOne'.*\], got Linear"):
        rnr.save(torch.nn.Linear(2, 2), tmp_path / "m.safetensors")


# ---------------------------------------------------------------- the file itself


def test_file_is_plain_safetensors_without_pickle(tmp_path):
    model, path = _model_file(tmp_path)
    blob = path.read_bytes()
    header_len = int.from_bytes(blob[:8], "little")
    assert 0 < header_len < len(blob) - 8
    header = json.loads(blob[8 : 8 + header_len])  # the header is JSON: nothing to unpickle
    meta = header["__metadata__"]
    assert meta["format"] == "rnr" and meta["format_version"] == str(FORMAT_VERSION)
    assert meta["class"] == "ManyToOne" and json.loads(meta["config"]) == model.config
    assert meta["rnr_version"] == rnr.__version__ and len(meta["sha256"]) == 64
    assert blob[:2] != b"PK" and b"pickle" not in blob  # not a torch.save zip; the header parsed as JSON above
    tensors = load_file(path)  # safetensors' own reader, no rnr involved
    assert set(tensors) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(tensors[k], v)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such file: {str(tmp_path / 'nope.safetensors')!r}")):
        rnr.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 20, -1], ids=["empty", "in-length", "in-header", "last-byte-missing"])
def test_truncated_file(tmp_path, keep):
    _, path = _model_file(tmp_path)
    blob = path.read_bytes()
    path.write_bytes(blob[:keep] if keep >= 0 else blob[:keep])
    with pytest.raises(_safefile.DamagedFileError, match="is not a readable safetensors file .*it may be truncated"):
        rnr.load(path)


def test_truncated_data_is_a_value_error(tmp_path):
    """DamagedFileError is a ValueError, so callers catching bad input catch it."""
    _, path = _model_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError):
        rnr.load(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.safetensors"
    noise = torch.randint(0, 256, (1000,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    noise[0] = 7  # not the first byte of a pickle
    path.write_bytes(noise.numpy().tobytes())
    with pytest.raises(_safefile.DamagedFileError, match=r"is not a readable safetensors file \(1000 bytes"):
        rnr.load(path)


@pytest.mark.parametrize("zipfile", [True, False], ids=["torch-zip", "legacy-pickle"])
def test_torch_save_file_is_refused_without_unpickling(tmp_path, monkeypatch, zipfile):
    model = rnr.ManyToOne(I, O, hidden_size=H)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipfile)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("rnr.load must never unpickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    with pytest.raises(_safefile.DamagedFileError, match="looks like a pickle or torch.save file; rnr never unpickles"):
        rnr.load(path)


def test_safetensors_file_without_rnr_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file(dict(rnr.ManyToOne(I, O, hidden_size=H).state_dict()), path)
    with pytest.raises(ValueError, match="is a safetensors file but not an rnr model file"):
        rnr.load(path)


def test_newer_format_version(tmp_path):
    model = rnr.ManyToOne(I, O, hidden_size=H)
    path = tmp_path / "future.safetensors"
    _safefile.write(path, dict(model.state_dict()),
                    {"format": "rnr", "format_version": str(FORMAT_VERSION + 1), "class": "ManyToOne",
                     "config": json.dumps(model.config), "rnr_version": "9.0.0"})
    with pytest.raises(ValueError, match=re.escape(f"has format_version {FORMAT_VERSION + 1}, newer than this rnr "
                                                   f"reads ({FORMAT_VERSION}; written by rnr 9.0.0)")):
        rnr.load(path)


def test_unknown_class(tmp_path):
    _, path = _model_file(tmp_path)
    _rewrite(path, **{"class": "Transformer"})
    with pytest.raises(ValueError, match=r"holds a model of class 'Transformer', which this rnr does not know; "
                                         r"known classes: \[.*'ManyToOne'"):
        rnr.load(path)


def test_unknown_config_argument(tmp_path):
    model, path = _model_file(tmp_path)
    _rewrite(path, config=json.dumps({**model.config, "wormholes": 3}))
    with pytest.raises(ValueError, match=re.escape("configures ManyToOne with arguments ['wormholes'] that this rnr "
                                                   "does not take")):
        rnr.load(path)


def test_shape_mismatch(tmp_path):
    model, path = _model_file(tmp_path)
    tensors = dict(model.state_dict())
    tensors["head.weight"] = torch.zeros(O, H + 1)
    _rewrite(path, tensors)
    with pytest.raises(ValueError, match=re.escape(f"does not fit its ManyToOne: missing [], unexpected [], wrong "
                                                   f"shapes ['head.weight: file ({O}, {H + 1}) vs model ({O}, {H})']")):
        rnr.load(path)


def test_missing_tensor(tmp_path):
    model, path = _model_file(tmp_path)
    tensors = {k: v for k, v in model.state_dict().items() if k != "head.bias"}
    _rewrite(path, tensors)
    with pytest.raises(ValueError, match=re.escape("missing ['head.bias'], unexpected []")):
        rnr.load(path)


def test_flipped_byte_in_tensor_data_is_caught_by_the_digest(tmp_path):
    _, path = _model_file(tmp_path)
    blob = bytearray(path.read_bytes())
    header_len = int.from_bytes(blob[:8], "little")
    blob[8 + header_len + 5] ^= 0x10  # inside the first tensor's bytes; the file still parses
    path.write_bytes(bytes(blob))
    load_file(path)  # safetensors alone does not notice
    with pytest.raises(_safefile.DamagedFileError, match="is damaged: its tensors do not match the sha256"):
        rnr.load(path)


def test_digest_covers_scalar_and_empty_tensors(tmp_path):
    """0-dim tensors (an optimizer's step count) and empty ones are written and checked like any other."""
    tensors = {"step": torch.tensor(3.0), "empty": torch.zeros(0, 2), "w": torch.ones(2, 2)}
    path = _safefile.write(tmp_path / "t.safetensors", tensors, {"k": "v"})
    back, meta = _safefile.read(path)
    assert meta["k"] == "v" and all(torch.equal(back[k], v) for k, v in tensors.items())
    assert _safefile.digest({"step": torch.tensor(3.0)}) != _safefile.digest({"step": torch.tensor(4.0)})


# ---------------------------------------------------------------- atomic writes


def test_saving_over_a_file_replaces_it_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "m.safetensors"
    rnr.save(rnr.ManyToOne(I, O, hidden_size=H), path)
    newer = rnr.ManyToOne(I, O, hidden_size=H, cell="lstm")
    rnr.save(newer, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert rnr.load(path).config["cell"] == "lstm"


def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    old = rnr.ManyToOne(I, O, hidden_size=H)
    rnr.save(old, path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        rnr.save(rnr.ManyToOne(I, O, hidden_size=H, cell="gru"), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # the temporary file is gone
    assert path.read_bytes() == before
    loaded = rnr.load(path)
    assert loaded.config["cell"] == "elman"
    assert torch.equal(loaded(_x(), LENGTHS), old.eval()(_x(), LENGTHS))


# ---------------------------------------------------------------- files written before the packages moved

FILES = Path(__file__).parent / "files"


def test_model_files_written_by_rnr_0_1_before_the_move_still_load_and_predict_the_same():
    """tests/files/v0.1-*.safetensors were written by rnr 0.1.0 when its modules were one flat folder and its
    estimators' seed was ``seed``: the file names the class, not a module path, and ``seed`` reads as
    ``random_state``."""
    expected = json.loads((FILES / "v0.1-expected.json").read_text())
    X, Y = rnr.tasks.ragged_sums(20)
    f = rnr.load(FILES / "v0.1-forecaster.safetensors")
    assert f.random_state == 3 and f.get_params()["season"] == 7
    assert f.predict()["y_hat"].tolist() == pytest.approx(expected["forecaster"], rel=1e-5)
    clf = rnr.load(FILES / "v0.1-classifier.safetensors")
    assert clf.random_state == 2
    torch.testing.assert_close(torch.tensor(clf.predict_proba([x.numpy() for x in X[:3]])),
                               torch.tensor(expected["classifier"]), rtol=1e-5, atol=1e-7)
    lm = rnr.load(FILES / "v0.1-charlm.safetensors")
    assert lm.random_state == 1 and lm.evaluate("the cat")["nats"] == pytest.approx(expected["charlm"], rel=1e-5)
    s2s = rnr.load(FILES / "v0.1-seq2seq.safetensors")
    assert s2s.predict(["a b c"]) == expected["seq2seq"]
    m = rnr.load(FILES / "v0.1-many-to-one.safetensors")
    torch.testing.assert_close(m(torch.ones(1, 2, 1)), torch.tensor(expected["many_to_one"]), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- tensors checked on load

def _resave(src, dst, change):
    """The file at src written again with ``change(tensors)`` applied and a valid digest (or none: change -> None)."""
    tensors, meta = _safefile.read(src)
    meta = dict(meta)
    meta.pop("sha256", None)
    new = change(dict(tensors))
    if new is None:  # the same tensors, the digest left out
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst), metadata=meta)
    else:
        _safefile.write(dst, new, meta)
    return dst


def test_weights_of_the_wrong_dtype_or_not_finite_and_files_without_a_digest_are_refused(tmp_path):
    model = rnr.ManyToOne(2, 1, hidden_size=3)
    good = rnr.save(model, tmp_path / "good.safetensors")
    as_int = _resave(good, tmp_path / "int.safetensors", lambda t: {k: v.to(torch.int64) for k, v in t.items()})
    with pytest.raises(ValueError, match=r"holds tensors of the wrong dtype for its ManyToOne: \['.*: file "
                                         r"torch.int64 vs model torch.float32'"):
        rnr.load(as_int)
    as_f64 = _resave(good, tmp_path / "f64.safetensors", lambda t: {k: v.double() for k, v in t.items()})
    with pytest.raises(ValueError, match=r"file torch.float64 vs model torch.float32"):
        rnr.load(as_f64)
    nan = _resave(good, tmp_path / "nan.safetensors",
                  lambda t: {k: (v * float("nan") if k.endswith("weight_hh_l0") else v) for k, v in t.items()})
    with pytest.raises(ValueError, match=r"holds NaN or inf in \['rnn.weight_hh_l0'\]"):
        rnr.load(nan)
    unsigned = _resave(good, tmp_path / "unsigned.safetensors", lambda t: None)
    with pytest.raises(ValueError, match=r"has no sha256 of its tensors, which every file rnr writes has.*"
                                         r"rnr.load\(path, trust_unsigned=True\)"):
        rnr.load(unsigned)
    same = rnr.load(unsigned, trust_unsigned=True)
    x = torch.randn(2, 4, 2)
    torch.testing.assert_close(same(x), model(x))


def test_model_files_get_the_mode_of_any_file_the_user_writes(tmp_path):
    """Written atomically through a temporary file (mode 0600), then given 0666 less the umask, as open() would."""
    import os
    import stat

    import rnr

    path = rnr.save(rnr.ManyToOne(1, 1, hidden_size=2), tmp_path / "m.safetensors")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
