"""Faults in rnr.fit: NaN/inf losses, gradients and weights (on_nonfinite), gradient clipping, and checkpoints
that survive a kill at any moment (leftover temporary files, the newest good file, bench/kill_resume.py)."""
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import rnr
from rnr.data import tasks
from rnr.training import checkpoint

N, BS = 16, 4  # 16 examples in batches of 4: 4 steps per epoch
QUIET = dict(batch_size=BS, progress=False)
ROOT = Path(__file__).resolve().parents[2]


def sums(n=N, seed=0):
    return tasks.ragged_sums(n, max_len=6, seed=seed)


def many_to_one(seed=0):
    torch.manual_seed(seed)
    return rnr.ManyToOne(1, 1, hidden_size=8)


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def finite(w: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in w.values())


def spy(model, fault=None):
    """Wrap ``model.loss`` (and ``loss_and_state``, which tbptt calls once per chunk): record the weights before
    each call (1-based) and apply ``fault(call, loss)``. Faults come from the model, not the data: rnr.data refuses
    NaN and inf in the examples."""
    before = {}

    def wrap(method):
        def call(*args):
            before[len(before) + 1] = weights(model)
            out = method(*args)
            loss, rest = (out[0], out[1:]) if isinstance(out, tuple) else (out, None)
            loss = loss if fault is None else fault(len(before), loss)
            return loss if rest is None else (loss, *rest)
        return call

    model.loss = wrap(model.loss)
    if hasattr(model, "loss_and_state"):
        model.loss_and_state = wrap(model.loss_and_state)
    return before


def nan_loss_at(*calls):
    return lambda call, loss: loss * math.nan if call in calls else loss


def nan_grad_at(model, *calls):
    """A finite loss (unchanged) whose gradient is NaN: d sqrt(u)/du = inf at u = 0, times du/dw = 0."""
    w = next(model.parameters())
    return lambda call, loss: loss + torch.sqrt(0.0 * w.sum()) if call in calls else loss


# ---------------------------------------------------------------- on_nonfinite="error"


def test_a_nan_loss_names_epoch_batch_and_step_and_keeps_the_last_good_weights(tmp_path):
    model = many_to_one()
    before = spy(model, nan_loss_at(7))  # the 7th step: epoch 2, batch 3
    with pytest.raises(FloatingPointError, match=re.escape(
            "training diverged: the loss became nan at epoch 2, batch 3 of the epoch (optimizer step 7); the model "
            "keeps its weights from before this update. Lower lr (now 0.001), set clip_grad_norm, or check the data "
            "for extreme values; on_nonfinite='skip' drops such batches instead; the last checkpoint, ")) as err:
        rnr.fit(model, sums(), epochs=3, checkpoint_dir=str(tmp_path), checkpoint_every=2, **QUIET)
    assert "ckpt-000000006.safetensors', is intact" in str(err.value)
    got = weights(model)
    assert same(got, before[7]) and finite(got) and not same(got, before[1])
    # the newest checkpoint reads back whole (sha256) and holds those same weights: step 6, before the bad step 7
    assert [p.name for p in checkpoint.files(tmp_path)] == ["ckpt-000000004.safetensors", "ckpt-000000006.safetensors"]
    tensors, state, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-000000006.safetensors" and state["step"] == 6
    assert same({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, got)


@pytest.mark.parametrize("clip", [1.0, None])
def test_a_nan_gradient_with_a_finite_loss_never_reaches_the_optimizer(tmp_path, clip):
    model = many_to_one()
    before = spy(model, nan_grad_at(model, 2))
    with pytest.raises(FloatingPointError, match=re.escape(
            "training diverged: the gradient norm became nan at epoch 1, batch 2 of the epoch (optimizer step 2); "
            "the model keeps its weights from before this update.")):
        rnr.fit(model, sums(), epochs=2, clip_grad_norm=clip, checkpoint_dir=str(tmp_path), checkpoint_every=1,
                **QUIET)
    assert same(weights(model), before[2]) and finite(weights(model))
    tensors, state, _ = checkpoint.latest(tmp_path)
    assert state["step"] == 1 and float(tensors["optim.0.step"]) == 1  # Adam took the first step only


def test_an_update_that_makes_the_weights_non_finite_is_undone_and_always_stops():
    model = many_to_one()
    # a finite loss and gradient (~1e16: its norm stays in float32 range), a finite lr: the step overflows to inf
    before = spy(model, lambda call, loss: loss * 1e16 if call == 1 else loss)
    with pytest.raises(FloatingPointError, match=r"training diverged: the update made the weights non-finite "
                                                 r"\(gradient norm [0-9.e+]+\) at epoch 1, batch 1 of the epoch "
                                                 r"\(optimizer step 1\); the model keeps its weights from before this "
                                                 r"update\. Lower lr \(now 1e\+25\), set clip_grad_norm, or check the "
                                                 r"data for extreme values$") as err:
        rnr.fit(model, sums(), epochs=1, optimizer="sgd", lr=1e25, clip_grad_norm=None, on_nonfinite="skip",
                **QUIET)
    assert "on_nonfinite" not in str(err.value)  # not a bad batch: skipping would not help
    assert same(weights(model), before[1]) and finite(weights(model))


def echo(n, T=6):
    X = torch.randn(n, T, 1)
    return X, X.roll(1, 1)


def test_tbptt_names_the_chunk():
    torch.manual_seed(0)
    model = rnr.ManyToManySync(1, 1, hidden_size=8)
    spy(model, nan_loss_at(2))  # chunks of 3 steps: the second chunk of the first batch
    with pytest.raises(FloatingPointError, match=re.escape(
            "the loss became nan at epoch 1, batch 1 of the epoch (optimizer step 2, tbptt chunk 2); the model keeps "
            "its weights from before this update")):
        rnr.fit(model, echo(4), epochs=1, tbptt=3, **QUIET)
    assert finite(weights(model))


# ---------------------------------------------------------------- on_nonfinite="skip"


def test_skip_drops_the_batch_counts_it_and_warns_each_epoch():
    X, Y = sums(8)
    model = many_to_one()
    spy(model, nan_loss_at(6, 14))  # the 6th example: batch 6 of 8 batches of 1 (no shuffling) in both epochs
    settings = dict(epochs=2, batch_size=1, shuffle=False, progress=False)
    with pytest.warns(UserWarning) as caught:
        history = rnr.fit(model, (X, Y), on_nonfinite="skip", **settings)
    assert [str(w.message) for w in caught] == [
        f"epoch {e}: skipped 1 of 8 batches whose loss or gradient was not finite (on_nonfinite='skip'): batch 6: "
        f"the loss became nan" for e in (1, 2)]
    assert list(history.rows[0]) == ["epoch", "steps", "updates", "train_loss", "lr", "clipped", "skipped", "seconds"]
    assert history["skipped"] == [1, 1] and history["steps"] == [8, 16]
    # the skipped batch changed nothing: the same as training on the 7 other examples
    keep = [i for i in range(8) if i != 5]
    clean = many_to_one()
    clean_history = rnr.fit(clean, ([X[i] for i in keep], Y[keep]), **settings)
    assert same(weights(model), weights(clean)) and finite(weights(model))
    assert history["train_loss"] == clean_history["train_loss"]


def test_skip_a_nan_gradient_and_a_wholly_skipped_epoch():
    model = many_to_one()
    spy(model, nan_grad_at(model, 2, 5, 6, 7, 8))  # epoch 1: batch 2; epoch 2: all four
    with pytest.warns(UserWarning) as caught:
        history = rnr.fit(model, sums(), epochs=3, on_nonfinite="skip", **QUIET)
    nan = "the gradient norm became nan"
    assert [str(w.message) for w in caught] == [  # one warning per epoch with skips, naming the first three
        f"epoch 1: skipped 1 of 4 batches whose loss or gradient was not finite (on_nonfinite='skip'): batch 2: {nan}",
        f"epoch 2: skipped 4 of 4 batches whose loss or gradient was not finite (on_nonfinite='skip'): batch 1: {nan}; "
        f"batch 2: {nan}; batch 3: {nan}; ..."]
    assert history["skipped"] == [1, 4, 0]
    assert math.isfinite(history["train_loss"][0]) and math.isnan(history["train_loss"][1])  # no batch to average
    assert finite(weights(model))


def test_skip_in_tbptt_skips_the_rest_of_the_batch():
    torch.manual_seed(0)
    model = rnr.ManyToManySync(1, 1, hidden_size=8)
    before = spy(model, nan_loss_at(2))  # chunk 2 of batch 1: chunk 1 has updated the weights, chunk 2 will not
    with pytest.warns(UserWarning, match=re.escape("skipped 1 of 2 batches whose loss or gradient was not finite "
                                                   "(on_nonfinite='skip'): batch 1: the loss became nan")):
        history = rnr.fit(model, echo(8, T=9), epochs=1, tbptt=3, on_nonfinite="skip", **QUIET)
    assert len(before) == 5  # batch 1: chunks 1 and 2 (its 3rd never runs); batch 2: all three chunks
    assert not same(before[2], before[1]) and same(before[3], before[2])
    assert history["skipped"] == [1] and math.isfinite(history["train_loss"][0]) and finite(weights(model))


def test_skipped_batches_are_kept_across_a_resume(tmp_path):
    settings = dict(epochs=2, on_nonfinite="skip", checkpoint_every=1, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = many_to_one()
        spy(a, nan_loss_at(2, 7))  # batch 2 of epoch 1 and batch 3 of epoch 2
        want = rnr.fit(a, sums(), checkpoint_dir=str(tmp_path / "a"), **settings)
        first = many_to_one()
        spy(first, nan_loss_at(2))
        rnr.fit(first, sums(), checkpoint_dir=str(tmp_path / "b"), max_steps=3, **settings)  # past the first skip
        b = many_to_one(seed=1)
        spy(b, nan_loss_at(4))  # the resumed run's 4th step is step 7
        got = rnr.fit(b, sums(), checkpoint_dir=str(tmp_path / "b"), resume=True, **settings)
    assert got["skipped"] == want["skipped"] == [1, 1]
    assert got["train_loss"] == want["train_loss"] and same(weights(a), weights(b))


def test_on_nonfinite_is_validated():
    with pytest.raises(ValueError, match=re.escape("on_nonfinite must be one of ['error', 'skip'], got 'ignore': "
                                                   "'error' stops at a NaN or inf loss or gradient, 'skip' drops "
                                                   "that batch and goes on")):
        rnr.fit(many_to_one(), sums(), on_nonfinite="ignore", **QUIET)
    assert "skipped" not in rnr.fit(many_to_one(), sums(), epochs=1, **QUIET).rows[0]  # only with "skip"


# ---------------------------------------------------------------- exploding gradients


def test_exploding_gradients_are_clipped_and_counted():
    def spike(call, loss):
        return loss * 1e6 if call in (2, 5) else loss  # epoch 1 batch 2, epoch 2 batch 1

    lr, clip = 1e-2, 10.0
    model = many_to_one()
    before = spy(model, spike)
    history = rnr.fit(model, sums(), epochs=2, optimizer="sgd", momentum=0.0, lr=lr, clip_grad_norm=clip, **QUIET)
    assert history["clipped"] == [1, 1]  # the spikes only: the ordinary gradients stay under 10
    assert finite(weights(model))

    def moved(a, b):
        return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in a)))

    assert moved(before[2], before[3]) <= lr * clip * (1 + 1e-5)  # a clipped SGD step moves at most lr * clip
    free = many_to_one()
    unclipped = spy(free, spike)
    rnr.fit(free, sums(), epochs=1, optimizer="sgd", momentum=0.0, lr=lr, clip_grad_norm=None, **QUIET)
    assert moved(unclipped[2], unclipped[3]) > 1e3 * lr * clip


# ---------------------------------------------------------------- checkpoints after a kill


def test_a_temp_file_left_by_a_killed_write_is_ignored_then_removed(tmp_path):
    uninterrupted = many_to_one()
    rnr.fit(uninterrupted, sums(), epochs=3, **QUIET)
    rnr.fit(many_to_one(), sums(), epochs=3, max_steps=6, checkpoint_dir=str(tmp_path), checkpoint_every=2, **QUIET)
    newest = tmp_path / "ckpt-000000006.safetensors"
    blob = newest.read_bytes()
    # what a kill inside the next write leaves: half of the temporary file, never renamed
    (tmp_path / ".ckpt-000000008.safetensors.k1ll3d00.tmp").write_bytes(blob[: len(blob) // 2])
    (tmp_path / ".ckpt-000000008.safetensors.wh0le000.tmp").write_bytes(blob)  # or all of it
    assert checkpoint.files(tmp_path) == [tmp_path / "ckpt-000000004.safetensors", newest]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is damaged: the temporary files are not checkpoints
        assert checkpoint.latest(tmp_path)[2] == newest
        resumed = many_to_one(seed=1)
        rnr.fit(resumed, sums(), epochs=3, checkpoint_dir=str(tmp_path), checkpoint_every=2, resume=True, **QUIET)
    assert same(weights(resumed), weights(uninterrupted))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000010.safetensors", "ckpt-000000012.safetensors"]


def test_latest_is_the_newest_good_checkpoint_by_step_number(tmp_path):
    model = many_to_one()
    opt = torch.optim.Adam(model.parameters())
    for step in (999_999_999, 1_000_000_000, 1_000_000_001):  # past 9 digits the names no longer sort as text
        checkpoint.write(tmp_path, step, model, opt, {"step": step}, keep=3)
    names = [p.name for p in checkpoint.files(tmp_path)]
    assert names == ["ckpt-999999999.safetensors", "ckpt-1000000000.safetensors", "ckpt-1000000001.safetensors"]
    newest = tmp_path / names[-1]
    newest.write_bytes(newest.read_bytes()[:-7])  # damaged (e.g. by a disk error: a kill cannot do this)
    (tmp_path / "ckpt-notes.safetensors").write_text("not a checkpoint")  # not a ckpt-{step} name: never read
    with pytest.warns(UserWarning, match=re.escape(f"checkpoint {str(newest)!r} is damaged")):
        tensors, state, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-1000000000.safetensors" and state["step"] == 1_000_000_000


@pytest.mark.parametrize("model", ["fit", "charlm"])
def test_kill_resume_bench_small(model):
    """bench/kill_resume.py: 3 SIGKILLs of a training process (some inside checkpoint writes), each resumed; the
    final weights are bitwise those of the uninterrupted run, for rnr.fit and for CharLM (whose streams' carried
    state must come back from the checkpoint too)."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "kill_resume.py"), "--quick", "--kills", "3",
                          "--model", model], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.rstrip().endswith("3/3 resumed, final weights bitwise identical: True"), out.stdout
    assert "temporary files left: []" in out.stdout
    assert "history (train_loss, val_loss per epoch) identical to the reference: True" in out.stdout
