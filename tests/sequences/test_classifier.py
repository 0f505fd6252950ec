"""RNNClassifier: scikit-learn conventions, ragged sequences, model files, errors; the .ts loader."""
import numpy as np
import pytest
import torch

import rnr
from rnr.data.datasets import load_ts, load_uea
from rnr.sequences.classifier import RNNClassifier

FAST = dict(hidden_size=12, epochs=15, batch_size=16, lr=1e-2)


def rising_or_falling(n=120, seed=0):
    """Ragged 2-feature sequences labelled by whether the first feature rises ('up') or falls ('down')."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        T = int(rng.integers(3, 15))
        slope = 1.0 if i % 2 else -1.0
        first = slope * np.arange(T) / T + rng.normal(0, 0.1, T)
        X.append(np.stack([first, rng.normal(0, 1, T)], axis=1).astype(np.float32))
        y.append("up" if i % 2 else "down")
    return X, np.array(y)


@pytest.fixture(scope="module")
def data():
    return rising_or_falling(), rising_or_falling(60, seed=1)


@pytest.fixture(scope="module")
def fitted(data):
    (X, y), _ = data
    return RNNClassifier(**FAST).fit(X, y)


def test_learns_ragged_sequences_with_string_labels(data, fitted):
    _, (Xt, yt) = data
    assert fitted.classes_.tolist() == ["down", "up"] and fitted.n_features_in_ == 2
    assert fitted.score(Xt, yt) >= 0.95
    proba = fitted.predict_proba(Xt)
    assert proba.shape == (60, 2) and np.allclose(proba.sum(1), 1, atol=1e-6)
    assert set(fitted.predict(Xt)) <= {"down", "up"}


def test_validation_data_and_early_stopping(data):
    (X, y), (Xt, yt) = data
    flipped = np.where(yt == "up", "down", "up")  # held-out labels the training makes ever more wrong
    clf = RNNClassifier(**dict(FAST, epochs=40), patience=2, embedding_dropout=0.1).fit(X, y, Xt, flipped)
    rows = clf.history_.rows
    assert {"val_loss", "val_accuracy"} <= set(rows[0])
    assert len(rows) < 40 and clf.history_.stopped_early  # stopped once the held-out loss stopped falling
    best = clf.history_.best_epoch
    assert best < len(rows) and rows[best - 1]["val_loss"] == min(r["val_loss"] for r in rows)
    held_out = rnr.SequenceData(clf._inputs(Xt), torch.from_numpy(clf._codes(flipped)))
    assert rnr.evaluate(clf.model_, held_out)["loss"] == pytest.approx(rows[best - 1]["val_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="give both X_val and y_val, or neither"):
        RNNClassifier(**FAST).fit(X, y, Xt)
    with pytest.raises(ValueError, match=r"y_val holds labels the training labels lack, e.g. 'sideways'; known: "
                                         r"\['down', 'up'\]"):
        RNNClassifier(**FAST).fit(X, y, Xt[:2], ["up", "sideways"])


def test_fit_returns_self_and_params_round_trip():
    clf = RNNClassifier(hidden_size=8, cell="lstm")
    assert clf.get_params()["hidden_size"] == 8 and clf.set_params(epochs=3) is clf and clf.epochs == 3
    assert repr(clf) == "RNNClassifier(hidden_size=8, cell='lstm', epochs=3)"
    with pytest.raises(ValueError, match=r"RNNClassifier has no parameter 'hiden'; known: \['hidden_size'"):
        clf.set_params(hiden=3)


def test_same_seed_same_model_and_every_setting_matters(data):
    (X, y), (Xt, _) = data
    a = RNNClassifier(**{**FAST, "epochs": 2}).fit(X, y).predict_proba(Xt)
    b = RNNClassifier(**{**FAST, "epochs": 2}).fit(X, y).predict_proba(Xt)
    assert np.array_equal(a, b)
    for change in [dict(random_state=1), dict(pooling="mean"), dict(bidirectional=False), dict(cell="elman"),
                   dict(standardize=False), dict(num_layers=2)]:
        other = RNNClassifier(**{**FAST, "epochs": 2, **change}).fit(X, y).predict_proba(Xt)
        assert not np.allclose(a, other), change


def test_sklearn_clone_and_grid_search_with_ragged_X(data):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV

    (X, y), _ = data
    clf = RNNClassifier(**{**FAST, "epochs": 3})
    assert is_classifier(clf) and clone(clf).get_params() == clf.get_params()
    search = GridSearchCV(clf, {"hidden_size": [4, 8]}, cv=2).fit(X, y)
    assert search.best_params_["hidden_size"] in (4, 8) and len(search.cv_results_["mean_test_score"]) == 2
    assert sklearn.__version__


def test_save_and_load_give_the_same_predictions(tmp_path, data, fitted):
    _, (Xt, _) = data
    other = rnr.load(rnr.save(fitted, tmp_path / "clf.safetensors"))
    assert np.array_equal(other.predict_proba(Xt), fitted.predict_proba(Xt))
    assert other.classes_.tolist() == ["down", "up"] and other.get_params() == fitted.get_params()


def test_integer_labels_and_a_3d_array(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 5, 3)).astype(np.float32)
    y = np.arange(20) % 3 + 10
    clf = RNNClassifier(hidden_size=4, epochs=1).fit(X, y)
    assert clf.predict(X).dtype == y.dtype and set(clf.predict(X)) <= {10, 11, 12}
    again = rnr.load(rnr.save(clf, tmp_path / "c.safetensors"))
    assert np.array_equal(again.predict(X), clf.predict(X))


@pytest.mark.parametrize("X, y, error, match", [
    ([np.zeros((3, 2)), np.zeros((4, 3))], ["a", "b"], ValueError,
     r"X\[1\] has 3 features, but the first sequence has 2; every sequence needs the same features"),
    ([np.zeros((0, 2))], ["a"], ValueError, r"X\[0\] must be a \(T, F\) array with T >= 1, got shape \(0, 2\)"),
    ([np.full((3, 2), np.nan)], ["a"], ValueError, r"X\[0\] holds NaN or inf"),
    ("abc", ["a"], TypeError, r"X must be a non-empty list of \(T_i, F\) arrays"),
    ([np.zeros((3, 2))] * 2, ["a"], ValueError, r"y must hold one label per sequence of X \(2\), got shape \(1,\)"),
    ([np.zeros((3, 2))] * 2, ["a", "a"], ValueError, r"y must hold at least two classes, got only \['a'\]"),
])
def test_bad_input_is_a_clear_error(X, y, error, match):
    with pytest.raises(error, match=match):
        RNNClassifier(epochs=1).fit(X, y)


def test_predict_checks_fitted_and_feature_count(fitted):
    with pytest.raises(ValueError, match=r"not fitted yet; call fit\(X, y\) first"):
        RNNClassifier().predict([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"X\[0\] has 5 features, but the model was fitted on 2"):
        fitted.predict([np.zeros((3, 5))])


def test_ts_loader_reads_ragged_multichannel_cases(tmp_path):
    path = tmp_path / "tiny.ts"
    path.write_text("# a comment\n@problemName tiny\n@univariate false\n@data\n"
                    "1,2,3:4,5,6:a\n7,8:9,?:b\n")
    X, y = load_ts(path)
    assert [x.shape for x in X] == [(3, 2), (2, 2)] and y.tolist() == ["a", "b"]
    assert X[0][:, 1].tolist() == [4, 5, 6] and np.isnan(X[1][1, 1])
    bad = tmp_path / "bad.ts"
    bad.write_text("@data\n1,2:3:a\n")
    with pytest.raises(ValueError, match=r"line 2 has channels of different lengths \[2, 1\]"):
        load_ts(bad)
    empty = tmp_path / "empty.ts"
    empty.write_text("@problemName x\n")
    with pytest.raises(ValueError, match=r"holds no cases: a .ts file needs an '@data' line"):
        load_ts(empty)


def test_japanese_vowels_loads_with_the_published_shape():
    data = load_uea("JapaneseVowels")
    if data is None:
        pytest.skip("JapaneseVowels absent: set RNR_DATA or place it at ../shared/data/japanese_vowels")
    X, y, Xt, yt = data
    assert (len(X), len(Xt)) == (270, 370) and {x.shape[1] for x in X + Xt} == {12}
    assert min(len(x) for x in X + Xt) == 7 and max(len(x) for x in X + Xt) == 29
    assert sorted(set(y)) == [str(i) for i in range(1, 10)]
    assert torch.get_num_threads() >= 1


def test_training_length_and_batch_size_follow_the_number_of_sequences(tmp_path):
    from rnr.sequences import classifier

    assert classifier.training_length(36, None, None) == {"batch_size": 8, "epochs": 200, "updates": 1000}
    assert classifier.training_length(2000, None, None) == {"batch_size": 32, "epochs": 20, "updates": 1260}
    assert classifier.training_length(36, 4, 7) == {}  # explicit arguments win
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(rng.integers(3, 9)), 2)).astype(np.float32) for _ in range(24)]
    y = np.arange(24) % 2
    clf = RNNClassifier(hidden_size=4, conv=False, n_models=1, random_state=0).fit(X, y)
    assert clf.chosen_ == {"batch_size": 8, "epochs": 334, "updates": 1002}
    assert len(clf.history_.rows) == 334 and clf.history_.rows[-1]["steps"] == 1002
    assert repr(clf) == "RNNClassifier(hidden_size=4, conv=False, n_models=1; chose batch_size=8, epochs=334)"
    back = rnr.load(rnr.save(clf, tmp_path / "c.safetensors"))
    assert back.chosen_ == clf.chosen_ and repr(back) == repr(clf)
    explicit = dict(epochs=2, batch_size=16, conv=True, n_models=2)
    assert RNNClassifier(hidden_size=4, **explicit).fit(X, y).chosen_ == {}  # explicit arguments win


def test_the_holdout_is_stratified_and_keeps_a_member_of_every_class():
    from rnr.sequences.classifier import holdout

    codes = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3])
    held = holdout(codes, 0.2, seed=0)
    assert [int(held[codes == c].sum()) for c in range(4)] == [10, 2, 1, 0]  # a lone member stays in training
    assert (holdout(codes, 0.2, seed=0) == held).all() and not (holdout(codes, 0.2, seed=1) == held).all()


def test_numeric_sequences_get_the_conv_front_end_and_large_sets_a_validation_split(monkeypatch, tmp_path):
    from rnr.sequences import classifier

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(rng.integers(3, 9)), 2)).astype(np.float32) for _ in range(40)]
    y = np.array(["a", "b"] * 20)
    monkeypatch.setattr(classifier, "VALIDATION_MIN", 40)
    clf = RNNClassifier(hidden_size=4, epochs=3, n_models=1, random_state=0).fit(X, y)
    assert clf.chosen_ == {"batch_size": 8, "conv": True, "validation": 8, "patience": 10}
    assert clf.model_.front is not None and "val_loss" in clf.history_.rows[0]
    assert repr(clf) == ("RNNClassifier(hidden_size=4, n_models=1, epochs=3; chose batch_size=8, conv=True, "
                         "validation=8, patience=10)")
    back = rnr.load(rnr.save(clf, tmp_path / "c.safetensors"))
    assert (back.predict_proba(X) == clf.predict_proba(X)).all()
    # explicit arguments win: the user's validation data, no split, no front end
    mine = RNNClassifier(hidden_size=4, epochs=3, conv=False, n_models=1, patience=2,
                         random_state=0).fit(X, y, X[:6], y[:6])
    assert mine.chosen_ == {"batch_size": 8} and mine.model_.front is None
    none = RNNClassifier(hidden_size=4, epochs=2, validation_fraction=None, random_state=0).fit(X, y)
    assert "validation" not in none.chosen_ and "val_loss" not in none.history_.rows[0]
    monkeypatch.setattr(classifier, "VALIDATION_MIN", 41)
    assert "validation" not in RNNClassifier(hidden_size=4, epochs=2, random_state=0).fit(X, y).chosen_
    text = RNNClassifier(hidden_size=4, epochs=2, random_state=0).fit(["good film", "bad film"] * 10, [1, 0] * 10)
    assert text.chosen_["conv"] is False and text.model_.front is None


def _small_set(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(int(rng.integers(5, 12)), 2)).astype(np.float32) for _ in range(n)]
    y = np.arange(n) % 2
    for x, label in zip(X, y):
        x[:, 0] += 1.5 * label  # learnable
    return X, y


def test_an_ensemble_averages_its_networks_and_survives_a_file(tmp_path):
    X, y = _small_set()
    clf = RNNClassifier(hidden_size=4, epochs=3, n_models=3, random_state=5).fit(X, y)
    assert len(clf.models_) == 3 and clf.model_ is clf.models_[0]
    one = [RNNClassifier(hidden_size=4, epochs=3, n_models=1, random_state=5 + i).fit(X, y) for i in range(3)]
    for member, alone in zip(clf.models_, one):  # network i is the network of random_state + i
        for a, b in zip(member.parameters(), alone.model_.parameters()):
            assert torch.equal(a, b)
    mean = np.mean([m.predict_proba(X) for m in one], axis=0)
    np.testing.assert_allclose(clf.predict_proba(X), mean, rtol=1e-5, atol=1e-6)
    back = rnr.load(rnr.save(clf, tmp_path / "e.safetensors"))
    assert len(back.models_) == 3 and (back.predict_proba(X) == clf.predict_proba(X)).all()


def test_auto_ensemble_follows_the_budget_and_the_validation_loss(monkeypatch):
    from rnr.sequences import classifier

    X, y = _small_set()
    assert RNNClassifier(hidden_size=4, epochs=2, max_minutes=None).fit(X, y).chosen_["n_models"] == 1
    assert RNNClassifier(hidden_size=4, epochs=2).fit(X, y).chosen_["n_models"] == classifier.ENSEMBLE_MAX
    clock = iter([0.0, 0.0, 100.0, 250.0])  # the first network takes 100 s, the second 150: a third would not fit
    monkeypatch.setattr(classifier, "perf_counter", lambda: next(clock))
    assert RNNClassifier(hidden_size=4, epochs=2, max_minutes=5).fit(X, y).chosen_["n_models"] == 2
    monkeypatch.undo()
    monkeypatch.setattr(RNNClassifier, "_ensemble_helps", lambda self, val: False)
    clf = RNNClassifier(hidden_size=4, epochs=2).fit(X[:16], y[:16], X[16:], y[16:])
    assert len(clf.models_) == 1 and clf.chosen_["n_models"] == 1  # validation said no: the first network alone
    monkeypatch.undo()
    clf = RNNClassifier(hidden_size=4, epochs=2).fit(X[:16], y[:16], X[16:], y[16:])
    val = classifier.SequenceData(clf._inputs(X[16:]), torch.as_tensor(y[16:]))
    assert (len(clf.models_) > 1) == clf._ensemble_helps(val) or len(clf.models_) == 1


def test_augmentation_acts_in_training_only_and_on_numbers_only():
    from rnr.nn.augment import Augment

    X, y = _small_set()
    clf = RNNClassifier(hidden_size=4, epochs=2, n_models=1, augment=True).fit(X, y)
    assert isinstance(clf.model_.augment, Augment)
    assert RNNClassifier(hidden_size=4, epochs=1, n_models=1).fit(X, y).model_.augment is None  # off by default
    x = torch.from_numpy(np.stack([s[:5] for s in X[:4]]))
    clf.model_.eval()
    assert torch.equal(clf.model_(x), clf.model_(x))  # evaluation sees the data unchanged
    with pytest.raises(ValueError, match="augment=True applies to numeric sequences"):
        RNNClassifier(hidden_size=4, epochs=1, augment=True).fit(["a b", "b c"] * 6, [0, 1] * 6)
    with pytest.raises(ValueError, match="augment applies to numeric sequences"):
        rnr.ManyToOne(4, 2, vocab_size=10, augment=True)


def test_augment_keeps_a_window_of_each_sequence_and_its_padding_zero():
    from rnr.nn.augment import Augment

    torch.manual_seed(0)
    x = torch.arange(1, 101, dtype=torch.float32).repeat(3, 1)[..., None]  # steps numbered 1..100
    lengths = torch.tensor([100, 50, 10])
    x[1, 50:], x[2, 10:] = 0, 0
    out, kept = Augment(window=0.9, scale=0.0, jitter=0.0).train()(x, lengths)
    assert kept.tolist() == [90, 45, 9] and out.shape == (3, 90, 1)
    for row, n, full in zip(out[..., 0], kept.tolist(), lengths.tolist()):
        window = row[:n]
        assert (window.diff() == 1).all() and window[0] >= 1 and window[-1] <= full  # consecutive steps of the sequence
        assert (row[n:] == 0).all()
    noisy, _ = Augment(window=1.0, scale=0.1, jitter=0.1).train()(x, lengths)
    assert (noisy[2, 10:] == 0).all() and not torch.equal(noisy[0], x[0])
    assert Augment().eval()(x, lengths)[0] is x
    with pytest.raises(ValueError, match="window must be in"):
        Augment(window=0)
