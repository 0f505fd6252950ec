"""Every option of every estimator, checked in one place against its table (``OPTIONS``, see ``rnr.base.Option``):
the table covers every argument, every default passes its own rule, and values of the wrong type or out of range
are refused by ``fit`` before anything is learned, with a message that names the estimator, the option, the rule,
the value and the default."""
import inspect
import math

import numpy as np
import pandas as pd
import pytest

import rnr
from rnr.base import Option, check_options

ESTIMATORS = {rnr.RNNClassifier: {}, rnr.CharLM: {}, rnr.Seq2Seq: {}, rnr.RNNForecaster: {"horizon": 2},
              rnr.Transcriber: {}}


def bad_values(option: Option) -> list:
    """Values the rule must refuse ("any": the estimator checks it itself, tested beside it)."""
    if option.kind == "any":
        return []
    if option.kind == "bool":
        return ["no", 1, 0.0] + ([] if option.none else [None])
    if option.kind == "choice":
        return ["nonsense", 3] + ([True] if True not in option.choices else [])
    if option.kind == "seed":
        return [-1, 2**64, 2.5, "x", True, None]
    if option.kind == "path":
        return [3, True]
    wrong = ["1", True, [1]] + ([] if option.none else [None])
    if option.kind == "int":
        wrong += [2.5]
    wrong += [math.nan, math.inf]
    if option.low is not None:
        wrong += [option.low if option.open_low else option.low - 1]
    if option.high is not None:
        wrong += [option.high if option.open_high else option.high + 1]
    return wrong


CASES = [(cls, name, value) for cls in ESTIMATORS for name, option in cls.OPTIONS.items()
         for value in bad_values(option)]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_the_table_covers_every_argument_and_every_default_passes(cls):
    assert set(cls.OPTIONS) == set(cls._param_names()), "an argument without a rule, or a rule without an argument"
    check_options(cls(**ESTIMATORS[cls]))  # the defaults


@pytest.mark.parametrize("cls, name, value", CASES, ids=[f"{c.__name__}-{n}-{v!r}" for c, n, v in CASES])
def test_a_bad_value_is_refused_naming_the_option_the_rule_and_the_default(cls, name, value):
    est = cls(**{**ESTIMATORS[cls], name: value})
    with pytest.raises((TypeError, ValueError)) as err:
        check_options(est)
    message = str(err.value)
    assert message.startswith(f"{cls.__name__}: {name} must be {cls.OPTIONS[name].rule()}, got ")
    default = inspect.signature(cls.__init__).parameters[name].default
    if default is not inspect.Parameter.empty:
        assert f"the default is {name}={default!r}" in message


def test_good_values_at_the_edges_pass():
    Option("real", 0, 1, open_high=True).check("dropout", 0.0, "E")
    Option("int", 1, none=True).check("epochs", None, "E")
    Option("seed").check("random_state", 2**63 - 1, "E")
    Option("real", 0, 1, open_high=True, none=True, also=("auto",)).check("validation_fraction", "auto", "E")
    Option("choice", choices=(None, "cosine")).check("lr_schedule", None, "E")
    with pytest.raises(ValueError, match="must be one of None, 'cosine'"):
        Option("choice", choices=(None, "cosine")).check("lr_schedule", 0, "E")  # 0 == False is not None


def test_fit_checks_the_options_before_it_learns_anything(tmp_path):
    X = [np.ones((3, 1), np.float32), np.zeros((4, 1), np.float32)]
    fits = [
        (rnr.RNNClassifier(bidirectional="no"), lambda m: m.fit(X, [0, 1]), "bidirectional must be True or False"),
        (rnr.RNNClassifier(min_count=2.5), lambda m: m.fit(["a b", "c"], [0, 1]), "min_count must be an int >= 1"),
        (rnr.RNNClassifier(embedding_dim=2.5), lambda m: m.fit(["a b", "c"], [0, 1]), "embedding_dim must be an int"),
        (rnr.RNNClassifier(standardize="no"), lambda m: m.fit(X, [0, 1]), "standardize must be True or False"),
        (rnr.CharLM(clip_grad_norm=-1), lambda m: m.fit("abc" * 50), "clip_grad_norm must be a finite number > 0"),
        (rnr.CharLM(clip_grad_norm=0), lambda m: m.fit("abc" * 50), "clip_grad_norm must be a finite number > 0"),
        (rnr.CharLM(clip_grad_norm="1"), lambda m: m.fit("abc" * 50), "clip_grad_norm must be a finite number > 0"),
        (rnr.CharLM(lr=math.inf), lambda m: m.fit("abc" * 50), "lr must be a finite number > 0"),
        (rnr.Seq2Seq(weight_decay=-1), lambda m: m.fit(["a"], ["b"]), "weight_decay must be a finite number >= 0"),
        (rnr.Seq2Seq(random_state=2**64), lambda m: m.fit(["a"], ["b"]), r"random_state must be an int in \[0"),
        (rnr.RNNForecaster(2, progress="no"), lambda m: m.fit(_panel()), "progress must be True or False or None"),
        (rnr.RNNForecaster(2, base_input="no"), lambda m: m.fit(_panel()), "base_input must be True or False"),
        (rnr.RNNForecaster(2, random_state=2.5), lambda m: m.fit(_panel()), r"random_state must be an int in \[0"),
    ]
    for model, fit, message in fits:
        with pytest.raises((TypeError, ValueError), match=message):
            fit(model)
        assert not any(k.endswith("_") and not k.startswith("_") for k in vars(model)), "fit learned something"


@pytest.mark.parametrize("device, message", [
    ("tpu", "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'tpu'"),
    ("cuda:99", "device='cuda:99', but"),
])
def test_a_device_this_torch_cannot_use_is_named(device, message):
    with pytest.raises(ValueError, match=message):
        rnr.CharLM(device=device).fit("abc" * 50)
    with pytest.raises(ValueError, match=message):
        rnr.RNNForecaster(2, device=device).fit(_panel())


def _panel() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020", periods=30, freq="D"),
                         "y": np.arange(30.0) + 1})


def test_save_refuses_an_option_set_after_fit_and_load_an_edited_one(tmp_path):
    X = [np.ones((3, 1), np.float32), np.zeros((4, 1), np.float32)]
    clf = rnr.RNNClassifier(hidden_size=2, epochs=1, conv=False).fit(X, [0, 1])
    clf.set_params(bidirectional="no")
    with pytest.raises(TypeError, match="RNNClassifier: bidirectional must be True or False, got str 'no'"):
        rnr.save(clf, tmp_path / "c.safetensors")
    assert not (tmp_path / "c.safetensors").exists()
