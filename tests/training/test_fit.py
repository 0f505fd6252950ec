"""rnr.fit: the History, every setting's effect, determinism, checkpoints and resume, divergence, bad settings."""
import csv
import json
import math
import re
import warnings

import pytest
import torch

import rnr
from rnr import weights as _safefile
from rnr.data import tasks
from rnr.training.train import TrainConfig

N, BS = 16, 4  # 16 examples in batches of 4: 4 optimizer steps per epoch
QUIET = dict(batch_size=BS, progress=False)


def sums(n=N, seed=0):
    return tasks.ragged_sums(n, max_len=6, seed=seed)


def many_to_one(seed=0, **kwargs):
    torch.manual_seed(seed)
    return rnr.ManyToOne(1, 1, **{"hidden_size": 8, **kwargs})


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def trained(init=0, data=None, model_kwargs=None, **settings):
    """Weights of a ManyToOne built after torch.manual_seed(init) and fitted (2 epochs) on ragged sums."""
    model = many_to_one(init, **(model_kwargs or {}))
    rnr.fit(model, data or sums(), **{**QUIET, "epochs": 2, **settings})
    return weights(model)


def param_norm(w: dict) -> float:
    return float(torch.sqrt(sum((v.double() ** 2).sum() for v in w.values())))


# ---------------------------------------------------------------- the History


def test_fit_returns_a_history_with_one_row_per_epoch():
    model = many_to_one()
    history = rnr.fit(model, sums(), val=sums(8, seed=1), epochs=3, **QUIET)
    assert isinstance(history, rnr.History) and len(history) == 3
    assert [list(r) for r in history.rows] == [["epoch", "steps", "updates", "train_loss", "val_loss", "lr", "clipped",
                                                "seconds"]] * 3
    assert history["epoch"] == [1, 2, 3]
    assert history["steps"] == [4, 8, 12]  # cumulative optimizer steps
    assert history["lr"] == [1e-3] * 3
    assert history["train_loss"] == [r["train_loss"] for r in history.rows]
    assert all(isinstance(v, float) and v > 0 for v in history["train_loss"] + history["val_loss"])
    assert all(r["seconds"] >= 0 for r in history.rows)
    assert history.monitor == "val_loss" and history.best_epoch == min(
        range(1, 4), key=lambda e: history.rows[e - 1]["val_loss"])
    assert not history.stopped_early and not model.training
    assert history[0] is history.rows[0] and "3 epochs" in repr(history)


def test_without_val_there_is_no_val_column_and_train_loss_is_monitored():
    history = rnr.fit(many_to_one(), sums(), epochs=2, **QUIET)
    assert "val_loss" not in history.rows[0] and history["val_loss"] == [None, None]
    assert history.monitor == "train_loss"


def test_train_and_val_loss_decrease_on_a_learnable_task():
    X, Y = sums(48)
    history = rnr.fit(many_to_one(), (X[:32], Y[:32]), val=(X[32:], Y[32:]), epochs=15, lr=2e-2, batch_size=8,
                      progress=False)
    assert history["train_loss"][-1] < 0.2 * history["train_loss"][0]
    assert history["val_loss"][-1] < 0.2 * history["val_loss"][0]


def test_val_loss_is_evaluate_on_the_final_model():
    model = many_to_one()
    val = sums(8, seed=1)
    history = rnr.fit(model, sums(), val=val, epochs=2, **QUIET)
    assert rnr.evaluate(model, val, batch_size=BS) == {"loss": history["val_loss"][-1]}
    # evaluate weighs each batch by its size, so the batch size only changes the rounding
    assert rnr.evaluate(model, val, batch_size=3)["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)
    X, Y = val
    with torch.no_grad():
        by_hand = torch.cat([(model(x[None]) - y) ** 2 for x, y in zip(X, Y)]).mean()
    assert rnr.evaluate(model, val)["loss"] == pytest.approx(float(by_hand), rel=1e-5)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_history_csv_is_written_after_each_epoch_and_to_csv_writes_the_same(tmp_path):
    path = tmp_path / "logs" / "history.csv"
    history = rnr.fit(many_to_one(), sums(), val=sums(8, seed=1), epochs=3, history_csv=str(path), **QUIET)
    rows = _read_csv(path)
    assert list(rows[0]) == ["epoch", "steps", "updates", "train_loss", "val_loss", "lr", "clipped", "seconds"]
    assert len(rows) == 3
    for row, want in zip(rows, history.rows):
        assert {k: float(v) for k, v in row.items()} == {k: float(v) for k, v in want.items()}
    again = history.to_csv(tmp_path / "again.csv")
    assert again == tmp_path / "again.csv" and again.read_text() == path.read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.csv"]  # no temporary file left


# ---------------------------------------------------------------- determinism and the seed


def test_same_seed_gives_bitwise_identical_weights():
    kwargs = dict(model_kwargs=dict(num_layers=2, dropout=0.3), seed=5)
    assert same(trained(**kwargs), trained(**kwargs))


def test_seed_drives_the_shuffle():
    assert not same(trained(seed=0), trained(seed=1))
    # without shuffling (and no dropout) nothing random is left for the seed to change
    assert same(trained(seed=0, shuffle=False), trained(seed=1, shuffle=False))


def test_seed_drives_dropout():
    dropout = dict(model_kwargs=dict(num_layers=2, dropout=0.3), shuffle=False)
    assert not same(trained(seed=0, **dropout), trained(seed=1, **dropout))


def test_shuffle_changes_the_order_of_the_batches():
    assert not same(trained(shuffle=True), trained(shuffle=False))


def test_fit_seeds_itself_so_the_global_rng_before_fit_does_not_matter():
    model_a, model_b = many_to_one(), many_to_one()
    torch.manual_seed(123)
    rnr.fit(model_a, sums(), epochs=1, **QUIET)
    torch.manual_seed(456)
    rnr.fit(model_b, sums(), epochs=1, **QUIET)
    assert same(weights(model_a), weights(model_b))


def test_different_initial_weights_give_different_results():
    assert not same(trained(init=0), trained(init=1))


# ---------------------------------------------------------------- optimizer settings


def test_optimizers_differ():
    adam, adamw, sgd = (trained(optimizer=o, lr=1e-2, weight_decay=0.1) for o in ("adam", "adamw", "sgd"))
    assert not same(adam, adamw) and not same(adam, sgd) and not same(adamw, sgd)
    # without weight decay AdamW is Adam: decoupling the decay is their only difference
    assert same(trained(optimizer="adam", lr=1e-2), trained(optimizer="adamw", lr=1e-2))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_weight_decay_shrinks_the_weights(optimizer):
    norms = [param_norm(trained(optimizer=optimizer, lr=1e-2, weight_decay=wd)) for wd in (0.0, 0.1, 1.0)]
    assert norms[0] > norms[1] > norms[2]


def test_momentum_changes_sgd():
    plain, heavy = trained(optimizer="sgd", momentum=0.0), trained(optimizer="sgd", momentum=0.9)
    assert not same(plain, heavy)
    # momentum is an SGD setting; Adam ignores it
    assert same(trained(optimizer="adam", momentum=0.0), trained(optimizer="adam", momentum=0.9))


def test_lr_changes_the_weights():
    assert not same(trained(lr=1e-3), trained(lr=1e-2))


def test_clip_grad_norm_counts_clipped_steps():
    tiny = rnr.fit(many_to_one(), sums(), epochs=2, clip_grad_norm=1e-6, **QUIET)
    assert tiny["clipped"] == [4, 4]  # every step of each epoch
    never = rnr.fit(many_to_one(), sums(), epochs=2, clip_grad_norm=None, **QUIET)
    assert never["clipped"] == [0, 0]
    huge = rnr.fit(many_to_one(), sums(), epochs=2, clip_grad_norm=1e6, **QUIET)
    assert huge["clipped"] == [0, 0]
    assert not same(trained(clip_grad_norm=1e-6, optimizer="sgd"), trained(clip_grad_norm=None, optimizer="sgd"))
    # a threshold no gradient reaches changes nothing
    assert same(trained(clip_grad_norm=1e6), trained(clip_grad_norm=None))


def test_batch_size_sets_the_number_of_steps():
    history = rnr.fit(many_to_one(), sums(), epochs=2, batch_size=5, progress=False)
    assert history["steps"] == [4, 8]  # ceil(16 / 5) = 4 batches per epoch, the last one of 1
    history = rnr.fit(many_to_one(), sums(), epochs=2, batch_size=16, progress=False)
    assert history["steps"] == [1, 2]


def test_device_auto_uses_the_available_device():
    model = many_to_one()
    rnr.fit(model, sums(), epochs=1, device="auto", **QUIET)
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert all(p.device.type == want for p in model.parameters())


# ---------------------------------------------------------------- LR schedules


def test_without_a_schedule_the_lr_stays():
    history = rnr.fit(many_to_one(), sums(), epochs=3, lr=0.01, **QUIET)
    assert history["lr"] == [0.01] * 3


def test_cosine_schedule_anneals_to_zero_over_the_epochs(tmp_path):
    E, lr = 4, 0.01
    history = rnr.fit(many_to_one(), sums(), epochs=E, lr=lr, lr_schedule="cosine", checkpoint_dir=str(tmp_path),
                      **QUIET)
    want = [lr * (1 + math.cos(math.pi * e / E)) / 2 for e in range(E)]  # the LR each epoch trained with
    assert history["lr"] == pytest.approx(want, rel=1e-9)
    assert history["lr"][0] == lr and history["lr"][-1] < 0.15 * lr
    # after the last epoch the schedule has reached zero (what a resumed run would continue from)
    _, meta = _safefile.read(sorted(tmp_path.iterdir())[-1])
    assert json.loads(meta["state"])["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_step_schedule_decays_by_lr_gamma_every_lr_step_epochs():
    history = rnr.fit(many_to_one(), sums(), epochs=5, lr=0.01, lr_schedule="step", lr_step=2, **QUIET)
    assert history["lr"] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])
    history = rnr.fit(many_to_one(), sums(), epochs=3, lr=0.01, lr_schedule="step", lr_step=1, lr_gamma=0.1,
                      **QUIET)
    assert history["lr"] == pytest.approx([0.01, 0.001, 0.0001])


def test_lr_step_and_lr_gamma_do_nothing_without_a_schedule():
    assert same(trained(lr_step=1, lr_gamma=0.1), trained())


def test_plateau_schedule_decays_only_when_the_monitored_loss_stalls():
    # an LR of 1e-7 moves the loss by far less than the scheduler's 1e-4 relative threshold: a plateau
    stalled = rnr.fit(many_to_one(), sums(), val=sums(8, seed=1), epochs=6, lr=1e-7, lr_schedule="plateau",
                      lr_step=1, **QUIET)
    # lr_step=1 tolerates one epoch without improvement and decays after the second (torch's patience)
    assert stalled["lr"] == pytest.approx([1e-7, 1e-7, 1e-7, 5e-8, 5e-8, 2.5e-8])
    learning = rnr.fit(many_to_one(), sums(), val=sums(8, seed=1), epochs=6, lr=1e-2, lr_schedule="plateau",
                       lr_step=1, **QUIET)
    assert all(b < a for a, b in zip(learning["val_loss"], learning["val_loss"][1:]))
    assert learning["lr"] == [1e-2] * 6


# ---------------------------------------------------------------- early stopping


def _opposite(data):
    X, Y = data
    return X, -Y  # the better the model fits the training data, the worse it does here


def test_patience_stops_early_and_restores_the_best_weights():
    model = many_to_one()
    val = _opposite(sums())
    history = rnr.fit(model, sums(), val=val, epochs=10, lr=1e-2, patience=2, **QUIET)
    assert history.stopped_early and len(history) == 3  # the best epoch, then 2 without improvement
    assert history.best_epoch == 1
    losses = history["val_loss"]
    assert losses[0] < losses[1] < losses[2]
    assert rnr.evaluate(model, val, batch_size=BS)["loss"] == losses[0]  # the weights after epoch 1, not epoch 3
    assert not model.training


def test_without_patience_every_epoch_runs_and_the_last_weights_stay():
    model = many_to_one()
    val = _opposite(sums())
    history = rnr.fit(model, sums(), val=val, epochs=4, lr=1e-2, **QUIET)
    assert not history.stopped_early and len(history) == 4
    assert rnr.evaluate(model, val, batch_size=BS)["loss"] == history["val_loss"][-1]


def test_patience_without_val_monitors_the_train_loss():
    X, Y = sums()
    history = rnr.fit(many_to_one(), (X, Y), epochs=6, lr=1e-2, patience=1, **QUIET)
    assert history.monitor == "train_loss" and not history.stopped_early and len(history) == 6


# ---------------------------------------------------------------- max_steps


def test_max_steps_at_an_epoch_boundary():
    history = rnr.fit(many_to_one(), sums(), epochs=5, max_steps=8, **QUIET)
    assert history["steps"] == [4, 8]


def test_a_time_budget_skips_epochs_that_would_not_fit(monkeypatch):
    from rnr.training import core as train_module

    clock = iter(range(0, 10_000, 10))  # every reading of the clock is 10 s after the last
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: next(clock))
    history = rnr.fit(many_to_one(), sums(), epochs=50, max_minutes=1.0, **QUIET)
    # epochs read the clock twice each (start, end): 10 s long, starting 20 s apart; an epoch starting at
    # 40 s or later would end past 60 s by the longest so far, so three epochs run
    assert len(history) == 3 and history.out_of_time and not history.stopped_early
    assert not rnr.fit(many_to_one(), sums(), epochs=2, max_minutes=1.0, **QUIET).out_of_time
    with pytest.raises(ValueError, match="max_minutes must be a number > 0 or None, got 0"):
        rnr.fit(many_to_one(), sums(), max_minutes=0, **QUIET)


def test_max_steps_inside_an_epoch_stops_after_exactly_that_many_steps(tmp_path):
    model = many_to_one()
    history = rnr.fit(model, sums(), epochs=5, max_steps=6, checkpoint_dir=str(tmp_path), checkpoint_every=1,
                      **QUIET)
    assert history["steps"] == [4]  # the unfinished second epoch has no row
    newest = sorted(tmp_path.iterdir())[-1]
    assert newest.name == "ckpt-000000006.safetensors"
    tensors, meta = _safefile.read(newest)
    state = json.loads(meta["state"])
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (6, 1, 2)
    assert float(tensors["optim.0.step"]) == 6  # Adam took 6 steps
    assert same({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, weights(model))
    assert not same(trained(max_steps=5), trained(max_steps=6))


# ---------------------------------------------------------------- truncated BPTT


def echo(n=12):
    return tasks.delayed_echo(n, delay=2, min_len=4, max_len=9, seed=0)  # ragged, T <= 9


def sync_model(cell="gru"):
    torch.manual_seed(0)
    return rnr.ManyToManySync(1, 1, hidden_size=8, cell=cell)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_tbptt_on_ragged_sequences(cell):
    full, short = sync_model(cell), sync_model(cell)
    h_full = rnr.fit(full, echo(), epochs=2, **QUIET)
    h_short = rnr.fit(short, echo(), epochs=2, tbptt=3, **QUIET)
    assert all(math.isfinite(v) for v in h_short["train_loss"])
    assert h_short["steps"] == h_full["steps"]  # steps count batches
    assert not same(weights(full), weights(short))


def test_tbptt_at_least_as_long_as_the_sequences_is_full_bptt():
    full = sync_model()
    rnr.fit(full, echo(), epochs=2, **QUIET)
    for k in (9, 100):  # 9 = the longest sequence
        model = sync_model()
        rnr.fit(model, echo(), epochs=2, tbptt=k, **QUIET)
        assert same(weights(model), weights(full)), f"tbptt={k}"
    X = torch.randn(8, 6, 1)  # equal lengths: the batch carries no lengths
    a, b = sync_model(), sync_model()
    rnr.fit(a, (X, X.roll(1, 1)), epochs=2, **QUIET)
    rnr.fit(b, (X, X.roll(1, 1)), epochs=2, tbptt=6, **QUIET)
    assert same(weights(a), weights(b))


def test_tbptt_carries_the_detached_state_between_chunks(monkeypatch):
    model = sync_model()
    calls = []  # (chunk, state in, state out) of every chunk
    forward = model.loss_and_state

    def spy(chunk, state=None):
        loss, new = forward(chunk, state)
        calls.append((chunk, state, new))
        return loss, new

    monkeypatch.setattr(model, "loss_and_state", spy)
    X = [torch.randn(7, 1), torch.randn(3, 1), torch.randn(5, 1)]
    Y = [x.roll(1, 0) for x in X]
    rnr.fit(model, (X, Y), epochs=1, batch_size=3, shuffle=False, tbptt=3, progress=False)
    # steps 0-2 of all three; steps 3-5 of the first (3 left) and the third (2 left); step 6 of the first
    assert [tuple(c.x.shape) for c, _, _ in calls] == [(3, 3, 1), (2, 3, 1), (1, 1, 1)]
    assert [c.x_lengths.tolist() for c, _, _ in calls] == [[3, 3, 3], [3, 2], [1]]
    assert torch.equal(calls[1][0].x[0], X[0][3:6]) and torch.equal(calls[1][0].x[1, :2], X[2][3:5])
    assert torch.equal(calls[2][0].x[0], X[0][6:]) and torch.equal(calls[2][0].y[0], Y[0][6:])
    assert calls[0][1] is None
    assert torch.equal(calls[1][1], calls[0][2][:, [0, 2]].detach())  # each sequence's own state goes on
    assert torch.equal(calls[2][1], calls[1][2][:, [0]].detach())
    assert not calls[1][1].requires_grad and not calls[2][1].requires_grad  # truncated: no gradient flows back


def test_tbptt_needs_a_many_to_many_sync_model():
    with pytest.raises(ValueError, match=re.escape("tbptt applies to ManyToManySync models, whose state can be "
                                                   "carried between chunks; got ManyToOne: set tbptt=None")):
        rnr.fit(many_to_one(), sums(), tbptt=3, **QUIET)


# ---------------------------------------------------------------- checkpoints and resume

REVERSAL = tasks.reversal(8, min_len=3, max_len=5, seed=0)
REVERSAL_VAL = tasks.reversal(4, min_len=3, max_len=5, seed=1)
# 8 examples in batches of 2: 4 steps per epoch, 12 in all; checkpoints at steps 3, 4, 6, 8, 9, 12
RESUMABLE = dict(epochs=3, batch_size=2, progress=False, checkpoint_every=3, lr_schedule="cosine", lr=3e-3)


def seq2seq(init=0):
    """Dropout between layers and teacher forcing at 0.5: training draws random numbers at every step."""
    torch.manual_seed(init)
    return rnr.EncoderDecoder(27, 27, hidden_size=8, num_layers=2, dropout=0.3, task="classification",
                              vocab_size=27, eos=26, teacher_forcing=0.5, max_steps=8)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run_a")
    model = seq2seq()
    history = rnr.fit(model, REVERSAL, val=REVERSAL_VAL, checkpoint_dir=str(folder), **RESUMABLE)
    return weights(model), history, folder


def interrupted(folder, max_steps=7):
    model = seq2seq()
    rnr.fit(model, REVERSAL, val=REVERSAL_VAL, checkpoint_dir=str(folder), max_steps=max_steps, **RESUMABLE)
    return model


def resumed(folder):
    model = seq2seq(init=1)  # other initial weights: everything must come from the checkpoint
    history = rnr.fit(model, REVERSAL, val=REVERSAL_VAL, checkpoint_dir=str(folder), resume=True, **RESUMABLE)
    return weights(model), history


def test_only_the_last_two_checkpoints_are_kept(uninterrupted):
    _, history, folder = uninterrupted
    assert history["steps"] == [4, 8, 12]
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt-000000009.safetensors", "ckpt-000000012.safetensors"]


def test_resume_after_an_interruption_matches_the_uninterrupted_run(uninterrupted, tmp_path):
    want, want_history, _ = uninterrupted
    interrupted(tmp_path)  # stopped at step 7, between the checkpoints at 6 and 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000004.safetensors", "ckpt-000000006.safetensors"]
    assert not same(weights(seq2seq(init=1)), want)
    got, history = resumed(tmp_path)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert history["train_loss"] == want_history["train_loss"]
    assert history["val_loss"] == want_history["val_loss"]
    assert history["lr"] == want_history["lr"] == pytest.approx([3e-3, 2.25e-3, 7.5e-4])
    assert history["steps"] == want_history["steps"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_newest_checkpoint_warns_and_resumes_from_the_one_before(uninterrupted, tmp_path, damage):
    want, want_history, _ = uninterrupted
    interrupted(tmp_path)
    newest = tmp_path / "ckpt-000000006.safetensors"
    blob = bytearray(newest.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[int.from_bytes(blob[:8], "little") + 8 + 3] ^= 0xFF  # a byte of tensor data
    newest.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match=r"checkpoint '.*ckpt-000000006.safetensors' is damaged .*; trying the one "
                                         r"before it"):
        got, history = resumed(tmp_path)  # from ckpt-000000004, the end of epoch 1
    assert same(got, want)
    assert history["train_loss"] == want_history["train_loss"]


EARLY = dict(epochs=10, lr=1e-2, patience=2, checkpoint_every=3, **QUIET)  # stops after epoch 3, at step 12


def test_resume_keeps_the_early_stopping_state(tmp_path):
    val = _opposite(sums())
    a = many_to_one()
    want = rnr.fit(a, sums(), val=val, checkpoint_dir=str(tmp_path / "a"), **EARLY)
    assert want.stopped_early and len(want) == 3
    rnr.fit(many_to_one(), sums(), val=val, checkpoint_dir=str(tmp_path / "b"), max_steps=10, **EARLY)
    b = many_to_one(seed=1)
    got = rnr.fit(b, sums(), val=val, checkpoint_dir=str(tmp_path / "b"), resume=True, **EARLY)  # from step 9
    assert got.rows == [{**r, "seconds": g["seconds"]} for r, g in zip(want.rows, got.rows)]
    assert got.stopped_early and same(weights(b), weights(a))  # epoch 1's weights, kept in the checkpoint


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path):
    val = _opposite(sums())
    a = many_to_one()
    want = rnr.fit(a, sums(), val=val, checkpoint_dir=str(tmp_path), **EARLY)
    b = many_to_one(seed=1)
    got = rnr.fit(b, sums(), val=val, checkpoint_dir=str(tmp_path), resume=True, **EARLY)
    assert len(got) == len(want) == 3 and got.stopped_early
    assert same(weights(b), weights(a))


def test_resume_without_a_checkpoint_starts_from_scratch(tmp_path):
    a, b = many_to_one(), many_to_one()
    rnr.fit(a, sums(), epochs=2, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnr.fit(b, sums(), epochs=2, checkpoint_dir=str(tmp_path / "new"), resume=True, **QUIET)
    assert same(weights(a), weights(b))


def test_resume_with_changed_settings_warns(tmp_path):
    rnr.fit(many_to_one(), sums(), epochs=1, checkpoint_dir=str(tmp_path), **QUIET)
    with pytest.warns(UserWarning, match=re.escape("with settings that differ from the run that wrote it: "
                                                   "['batch_size']")):
        rnr.fit(many_to_one(), sums(), epochs=2, checkpoint_dir=str(tmp_path), resume=True, batch_size=8,
                progress=False)


def test_a_finished_run_resumed_with_more_epochs_continues(tmp_path):
    """Resuming with epochs=3 after 2 finished epochs trains one more, like a 3-epoch run."""
    three = many_to_one()
    h3 = rnr.fit(three, sums(), epochs=3, **QUIET)
    rnr.fit(many_to_one(), sums(), epochs=2, checkpoint_dir=str(tmp_path), **QUIET)
    more = many_to_one(seed=1)
    h = rnr.fit(more, sums(), epochs=3, checkpoint_dir=str(tmp_path), resume=True, **QUIET)
    assert h["train_loss"] == h3["train_loss"] and same(weights(more), weights(three))


# ---------------------------------------------------------------- divergence


def test_nan_loss_names_epoch_and_batch_and_leaves_checkpoints_intact(tmp_path):
    X, Y = sums(8)
    Y = Y.clone()
    Y[5] = float("nan")  # the 6th example, in the 6th batch of 1 without shuffling
    with pytest.raises(FloatingPointError, match=re.escape(
            "training diverged: the loss became nan at epoch 1, batch 6 of the epoch (optimizer step 6)")) as err:
        rnr.fit(many_to_one(), (X, Y), epochs=2, batch_size=1, shuffle=False, progress=False,
                checkpoint_dir=str(tmp_path), checkpoint_every=2)
    assert "ckpt-000000004.safetensors', is intact" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000002.safetensors", "ckpt-000000004.safetensors"]
    for path in tmp_path.iterdir():
        tensors, meta = _safefile.read(path)  # the digest still matches
        assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))


def test_a_huge_lr_diverges_with_a_clear_error(tmp_path):
    with pytest.raises(FloatingPointError, match=r"training diverged: the (loss|gradient norm) became (inf|nan) at "
                                                 r"epoch \d+, batch \d+ of the epoch .*Lower lr \(now 1e\+03\)"):
        rnr.fit(many_to_one(), sums(), epochs=5, optimizer="sgd", lr=1e3, clip_grad_norm=None,
                checkpoint_dir=str(tmp_path), **QUIET)
    for path in tmp_path.iterdir():  # epoch-end checkpoints written before the divergence still read back
        _safefile.read(path)


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize("settings, exc, message", [
    (dict(epoch=3), TypeError, "fit got unknown settings ['epoch']; known settings: ['batch_size', "
                               "'bucket', 'checkpoint_dir', 'checkpoint_every', 'clip_grad_norm', 'device', 'epochs',"),
    (dict(optimizer="foo"), ValueError, "optimizer must be one of ['adam', 'adamw', 'sgd'], got 'foo'"),
    (dict(lr=-1), ValueError, "lr must be a finite number >= 0, got -1"),
    (dict(lr=0), ValueError, "lr must be > 0, got 0"),
    (dict(lr=float("nan")), ValueError, "lr must be a finite number >= 0, got nan"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be a finite number >= 0, got -0.1"),
    (dict(epochs=0), ValueError, "epochs must be >= 1, got 0"),
    (dict(epochs=2.5), TypeError, "epochs must be an int, got float 2.5"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(tbptt=0), ValueError, "tbptt must be >= 1, got 0"),
    (dict(max_steps=-1), ValueError, "max_steps must be >= 1, got -1"),
    (dict(lr_schedule="linear"), ValueError, "lr_schedule must be one of [None, 'cosine', 'step', 'plateau'], "
                                             "got 'linear'"),
    (dict(clip_grad_norm=0), ValueError, "clip_grad_norm must be > 0 or None, got 0"),
    (dict(resume=True), ValueError, "resume and checkpoint_every need checkpoint_dir: pass checkpoint_dir="),
    (dict(checkpoint_every=5), ValueError, "resume and checkpoint_every need checkpoint_dir"),
])
def test_bad_settings(settings, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        rnr.fit(many_to_one(), sums(), **settings)


def test_train_config_validates_on_its_own():
    assert TrainConfig().epochs == 10
    with pytest.raises(ValueError, match=re.escape("lr must be a finite number >= 0, got -1")):
        TrainConfig(lr=-1)


def test_bad_model_and_data():
    with pytest.raises(TypeError, match="model must be an rnr topology .*got Linear"):
        rnr.fit(torch.nn.Linear(1, 1), sums(), progress=False)
    with pytest.raises(TypeError, match=re.escape("train must be a SequenceData or an (X, Y) pair, got int")):
        rnr.fit(many_to_one(), 3, progress=False)
    with pytest.raises(TypeError, match=re.escape("val must be a SequenceData or an (X, Y) pair, got str")):
        rnr.fit(many_to_one(), sums(), val="val", progress=False)


# ---------------------------------------------------------------- progress


def test_progress_false_prints_nothing(capsys):
    rnr.fit(many_to_one(), sums(), epochs=2, **QUIET)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""


def test_progress_true_shows_a_bar_per_epoch(capsys):
    rnr.fit(many_to_one(), sums(), epochs=2, batch_size=BS, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
