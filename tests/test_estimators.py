"""One estimator contract, scikit-learn's, checked in one table for every estimator rnr has.

``__init__`` stores each argument unchanged (and validates nothing); ``get_params``/``set_params`` read and change
them; ``sklearn.base.clone`` copies them; the seed is ``random_state``; progress bars default to ``None`` (a
terminal only); the run options are keyword-only, never in the repr, never in a model file. A new estimator adds one
line to ESTIMATORS.
"""
import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import rnr
from rnr.base import RUN_OPTIONS, Estimator
from rnr.forecast.baselines import LaggedRidge, Naive, Naive2, SeasonalNaive

from conftest import FAST, seasonal_panel

# (class, the arguments it requires, whether it trains a network)
ESTIMATORS = [
    (rnr.RNNForecaster, dict(horizon=3), True),
    (rnr.RNNClassifier, {}, True),
    (rnr.CharLM, {}, True),
    (rnr.Seq2Seq, {}, True),
    (rnr.Transcriber, {}, True),
    (Naive, {}, False),
    (SeasonalNaive, dict(m=7), False),
    (Naive2, dict(m=7), False),
    (LaggedRidge, {}, False),
]
IDS = [cls.__name__ for cls, *_ in ESTIMATORS]


def signature(cls) -> dict[str, inspect.Parameter]:
    if cls.__init__ is object.__init__:  # no arguments at all
        return {}
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


@pytest.mark.parametrize("cls, required, trains", ESTIMATORS, ids=IDS)
def test_init_stores_every_argument_unchanged_and_get_params_reads_them(cls, required, trains):
    assert issubclass(cls, Estimator)
    params = signature(cls)
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params.values()), "no *args, **kwargs"
    sentinels = {name: object() for name in params}  # anything at all: __init__ validates nothing
    est = cls(**sentinels)
    assert list(est.get_params()) == list(params)
    assert all(est.get_params()[k] is v for k, v in sentinels.items())
    defaults = cls(**required).get_params()
    assert defaults == {**{k: p.default for k, p in params.items() if k not in required}, **required}


@pytest.mark.parametrize("cls, required, trains", ESTIMATORS, ids=IDS)
def test_set_params_and_clone(cls, required, trains):
    est = cls(**required)
    name = next(n for n in signature(cls) if n not in required) if len(signature(cls)) > len(required) else None
    if name is not None:
        value = ("any", "value")  # clone deep-copies: equal, not the same object
        assert est.set_params(**{name: value}) is est and est.get_params()[name] is value
        copy = clone(est)
        assert copy is not est and copy.get_params()[name] == value
    assert clone(cls(**required)).get_params() == cls(**required).get_params()
    with pytest.raises(ValueError, match=f"{cls.__name__} has no parameter 'nope'; known: "):
        est.set_params(nope=1)
    with pytest.raises(TypeError, match=rf"{cls.__name__} got unknown option\(s\) \['nope'\]; known: "):
        cls(**required, nope=1)


@pytest.mark.parametrize("cls, required, trains", ESTIMATORS, ids=IDS)
def test_seed_is_random_state_and_run_options_are_keyword_only_and_kept_out_of_the_repr(cls, required, trains):
    params = signature(cls)
    assert "seed" not in params
    if not trains:
        assert not set(RUN_OPTIONS) & set(params)
        return
    assert params["random_state"].default == 0 and params["on_nonfinite"].default == "error"
    assert set(RUN_OPTIONS) <= set(params)
    for name in RUN_OPTIONS:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, f"{name} must come after the model's settings"
    assert params["progress"].default is None  # a bar on a terminal only
    est = cls(**required, log_dir="runs/x", checkpoint_dir="runs/y", resume=True, progress=True)
    assert "runs/" not in repr(est) and "resume" not in repr(est) and "progress" not in repr(est)
    assert repr(cls(**required, random_state=7)).endswith("random_state=7)")


def test_the_repr_shows_required_and_changed_arguments():
    assert repr(rnr.RNNForecaster(horizon=7, season=7)) == "RNNForecaster(horizon=7, season=7)"
    assert repr(SeasonalNaive(7)) == "SeasonalNaive(m=7)"
    assert repr(rnr.RNNClassifier()) == "RNNClassifier()"


def test_an_unknown_option_suggests_the_closest_one():
    with pytest.raises(TypeError, match=r"Did you mean 'hidden_size' for 'hiden_size'\?"):
        rnr.RNNClassifier(hiden_size=3)


def test_grid_search_tunes_the_forecaster():
    """GridSearchCV fits each candidate on the history and scores it (``score``: minus MAE) on the steps after."""
    df = seasonal_panel(n=4, length=60, ragged=False)
    last = df.groupby("unique_id").cumcount(ascending=False) < 7  # the last 7 steps of each series
    split = [(np.flatnonzero(~last), np.flatnonzero(last))]
    search = GridSearchCV(rnr.RNNForecaster(horizon=7, **{**FAST, "epochs": 1}),
                          {"season": [None, 7], "hidden_size": [4, 8]}, cv=split).fit(df)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_ in search.cv_results_["params"]
    assert all(np.isfinite(search.cv_results_["mean_test_score"])) and max(search.cv_results_["mean_test_score"]) < 0
    best = search.best_estimator_
    assert best.get_params()["hidden_size"] == search.best_params_["hidden_size"] and hasattr(best, "net_")
    fitted = rnr.RNNForecaster(horizon=7, **{**FAST, "epochs": 1}).fit(df[~last])
    assert fitted.score(df[last]) == pytest.approx(
        -np.abs(fitted.predict().merge(df[last], on=["unique_id", "ds"]).eval("y - y_hat")).mean())
    with pytest.raises(ValueError, match="df has no row at the forecast times"):
        fitted.score(df[~last])
    assert isinstance(df, pd.DataFrame)
