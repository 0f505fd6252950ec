"""The rnr command beyond forecasting: fit classify (texts, long-format sequences, .ts), fit text, evaluate,
generate and export from model folders, plot forecast, progress bars, and Ctrl-C during rnr fit."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from rnr.__main__ import main
from rnr.data import tasks

SMALL = ["--set", "model.hidden_size=8", "--quiet"]


def reviews(n=80, seed=0):
    rng = np.random.default_rng(seed)
    good, bad, filler = ["great", "fine", "lovely"], ["awful", "dull", "poor"], ["the", "film", "was", "plot", "a"]
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(filler, 4)) + [rng.choice(good if label == "pos" else bad)]
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "sentiment": label})
    return pd.DataFrame(rows)


def test_fit_classify_texts_then_predict_evaluate_and_info(tmp_path, capsys):
    reviews().to_csv(tmp_path / "train.csv", index=False)
    reviews(40, seed=1).to_csv(tmp_path / "test.csv", index=False)
    assert main(["fit", "classify", "--data", str(tmp_path / "train.csv"), "--text", "review", "--label", "sentiment",
                 "--set", "model.epochs=15", *SMALL, "--out", str(tmp_path / "clf")]) == 0
    assert main(["evaluate", str(tmp_path / "clf"), "--data", str(tmp_path / "test.csv"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["examples"] == 40 and scores["accuracy"] >= 0.9  # one word decides the label
    new = reviews(6, seed=2)[["review"]]  # no label column at prediction
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "clf"), "--data", str(tmp_path / "new.csv"), "--out",
                 str(tmp_path / "labels.csv")]) == 0
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["id", "sentiment", "p_neg", "p_pos"] and len(labels) == 6  # the user's names
    assert np.allclose(labels[["p_neg", "p_pos"]].sum(axis=1), 1, atol=1e-5)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "clf"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["task"] == "classify" and info["classes"] == ["neg", "pos"] and info["examples"] == 80


def test_fit_classify_long_format_sequences_and_ts_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):  # the label is whether the sequence rises; lengths 5 to 12, steps listed out of order
        T = int(rng.integers(5, 13))
        slope = 1.0 if i % 2 else -1.0
        for t in rng.permutation(T):
            rows.append({"seq": f"q{i}", "t": int(t), "x": slope * t + rng.normal(0, 0.3),
                         "kind": ["down", "up"][i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "seqs.csv", index=False)
    assert main(["fit", "classify", "--data", str(tmp_path / "seqs.csv"), "--id", "seq", "--time", "t", "--label",
                 "kind", "--set", "model.epochs=20", *SMALL, "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "seqs.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.9
    X, y = tasks.ragged_sums(40, seed=1)  # written as a .ts file: one channel, label = sign of the sum
    lines = ["@problemName sums", "@univariate true", "@classLabel true neg pos", "@data"]
    lines += [",".join(f"{v:.4f}" for v in x[:, 0].tolist()) + (":pos" if float(s) > 0 else ":neg")
              for x, s in zip(X, Y_sum(y))]
    (tmp_path / "sums.ts").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["fit", "classify", "--data", str(tmp_path / "sums.ts"), "--set", "model.epochs=2", *SMALL,
                 "--out", str(tmp_path / "ts")]) == 0
    assert main(["predict", str(tmp_path / "ts"), "--data", str(tmp_path / "sums.ts"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["labels"]) == 40


def Y_sum(y):
    return [float(v.reshape(-1)[0]) for v in y]


def test_label_that_changes_within_a_sequence_is_an_input_error(tmp_path, capsys):
    pd.DataFrame({"seq": [1, 1, 2], "x": [0.0, 1.0, 2.0], "label": ["a", "b", "a"]}).to_csv(tmp_path / "d.csv")
    assert main(["fit", "classify", "--data", str(tmp_path / "d.csv"), "--id", "seq", "--out", str(tmp_path / "m")]) \
        == 2
    assert "label column 'label' must be constant within each sequence; it changes within [1]" in \
        capsys.readouterr().err


TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 20


def test_fit_text_then_generate_evaluate_and_export_onnx(tmp_path, capsys):
    pytest.importorskip("onnx")
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["fit", "text", "--data", str(tmp_path / "corpus.txt"), "--val", str(tmp_path / "corpus.txt"),
                 "--set", "model.epochs=2", "--set", "model.batch_size=4", "--set", "model.seq_len=32",
                 "--set", "model.embedding_dim=8", *SMALL, "--out", str(tmp_path / "lm")]) == 0
    metrics = pd.read_csv(tmp_path / "lm" / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2] and "val_bits" in metrics
    assert main(["generate", str(tmp_path / "lm"), "--length", "40", "--seed", "3", "--json"]) == 0
    text = json.loads(capsys.readouterr().out)["text"]
    assert len(text) == 40 and set(text) <= set(TEXT)
    assert main(["evaluate", str(tmp_path / "lm"), "--data", str(tmp_path / "corpus.txt"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["chars"] == len(TEXT) - 1 and 0 < scores["bits"] < np.log2(len(set(TEXT)))
    assert main(["export", str(tmp_path / "lm"), "--onnx", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    import onnx

    model = onnx.load(out["out"])
    meta = {p.key: p.value for p in model.metadata_props}
    assert out["out"].endswith("lm/model.onnx") and json.loads(meta["vocab"]) == sorted(set(TEXT))
    assert [i.name for i in model.graph.input] == ["ids", "h", "c"]  # CharLM's default cell is an LSTM


@pytest.fixture(scope="module")
def forecast_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    tasks.ice_cream(n_shops=3, days=60).to_csv(root / "sales.csv", index=False)
    assert main(["fit", "forecast", "--data", str(root / "sales.csv"), "--horizon", "7", "--set", "model.epochs=1",
                 "--set", "model.quantiles=[0.1, 0.9]", *SMALL, "--out", str(root / "model")]) == 0
    return root


def test_plot_forecast_draws_history_forecast_and_interval(forecast_folder, capsys):
    import matplotlib.image

    png = forecast_folder / "fc.png"
    assert main(["plot", "forecast", str(forecast_folder / "model"), "--data", str(forecast_folder / "sales.csv"),
                 "--series", "shop_01,shop_02", "--last", "30", "--out", str(png), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == ["shop_01", "shop_02"]
    pixels = matplotlib.image.imread(png)[..., :3]
    colours = {tuple(p) for p in (pixels.reshape(-1, 3) * 255).astype(int)[::7]}
    assert len(colours) > 20 and (pixels < 0.95).any(axis=-1).mean() > 0.01  # lines and a shaded band, not blank


def test_progress_bars_show_on_a_terminal_only(forecast_folder, tmp_path, capsys, monkeypatch):
    argv = ["fit", "forecast", "--data", str(forecast_folder / "sales.csv"), "--horizon", "7", "--set",
            "model.epochs=1", "--set", "model.hidden_size=8", "--out", str(tmp_path / "m")]
    assert main(argv) == 0
    err = capsys.readouterr().err  # pytest's stderr is not a terminal: a line per epoch, no bar
    assert "%|" not in err and re.search(r"^rnr fit: epoch 1/1: train_loss [\d.]+; [\d.]+ s$", err, re.M), err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main([*argv, "--force"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "rnr fit: epoch" not in err
    assert main([*argv, "--force", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def interrupt_then_resume(argv: list[str], out, use) -> None:
    """Run ``rnr fit`` (``argv``, with model.epochs=400) in a subprocess, Ctrl-C it once its first epoch is logged,
    check the saved model with ``use(out)``, then run it again with --resume for two more epochs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch is done
    proc.send_signal(signal.SIGINT)
    said, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert said.startswith("stopped by Ctrl-C after") and "--resume` continues" in said and "fitted" not in said
    assert "stopped by Ctrl-C after" not in err  # one message, on standard output
    info = json.loads((out / "info.json").read_text())
    assert info["interrupted"] and 1 <= info["epochs_done"] < 400
    use(out)  # usable as it is
    argv[argv.index("model.epochs=400")] = f"model.epochs={info['epochs_done'] + 2}"
    done = subprocess.run([*argv, "--resume", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert not result["interrupted"] and result["epochs_done"] == info["epochs_done"] + 2
    assert len(pd.read_csv(out / "metrics.csv")) == info["epochs_done"] + 2


def test_ctrl_c_during_fit_saves_a_usable_model_and_resume_finishes_the_run(forecast_folder, tmp_path):
    def use(out):
        assert main(["predict", str(out), "--quiet", "--out", str(tmp_path / "fc.csv")]) == 0
        assert len(pd.read_csv(tmp_path / "fc.csv")) == 3 * 7

    interrupt_then_resume([sys.executable, "-m", "rnr", "fit", "forecast", "--data", str(forecast_folder / "sales.csv"),
                           "--horizon", "7", "--set", "model.epochs=400", "--set", "model.hidden_size=8", "--set",
                           "model.batch_size=1", "--out", str(tmp_path / "m")], tmp_path / "m", use)


def test_ctrl_c_during_fit_text_saves_the_model_and_resume_finishes_the_run(tmp_path):
    def use(out):
        assert main(["generate", str(out), "--length", "20", "--quiet"]) == 0

    (tmp_path / "corpus.txt").write_text(TEXT * 5, encoding="utf-8")
    interrupt_then_resume([sys.executable, "-m", "rnr", "fit", "text", "--data", str(tmp_path / "corpus.txt"), "--set",
                           "model.epochs=400", "--set", "model.hidden_size=8", "--set", "model.seq_len=16", "--set",
                           "model.batch_size=4", "--out", str(tmp_path / "lm")], tmp_path / "lm", use)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A classify folder, a text folder and their data, for the error messages below."""
    root = tmp_path_factory.mktemp("models")
    reviews(40).to_csv(root / "reviews.csv", index=False)
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    pd.DataFrame({"seq": [1, 1, 2, 2], "x": ["a", "b", "c", "d"], "label": [0, 0, 1, 1]}).to_csv(root / "words.csv")
    assert main(["fit", "classify", "--data", str(root / "reviews.csv"), "--text", "review", "--label", "sentiment",
                 "--set", "model.epochs=1", *SMALL, "--out", str(root / "clf")]) == 0
    assert main(["fit", "text", "--data", str(root / "corpus.txt"), "--set", "model.epochs=1", "--set",
                 "model.batch_size=4", *SMALL, "--out", str(root / "lm")]) == 0
    pd.DataFrame({"review": ["great film"], "sentiment": ["meh"]}).to_csv(root / "unseen.csv", index=False)
    return root


MESSAGES = [  # argv (after "rnr"), the message; each exits with 2
    (["fit", "text", "--data", "{r}/corpus.txt", "--nproc", "2", "--out", "{t}/m"],
     r"--nproc applies to rnr fit forecast; rnr fit text trains in one process"),
    (["fit", "forecast", "--data", "{r}/x.csv", "--horizon", "3", "--nproc", "0", "--out", "{t}/m"],
     r"--nproc must be >= 1, got 0"),
    (["predict", "{r}/clf"], r"rnr predict with a classify model needs --data, the sequences or texts to label"),
    (["predict", "{r}/lm"], r"rnr predict labels with classify models .* holds a CharLM \(use rnr generate"),
    (["evaluate", "{r}/clf", "--data", "{r}/unseen.csv"], r"has labels the model never saw: \['meh'\]; it knows"),
    (["evaluate", "{r}/lm", "--data", "{r}/missing.txt"], r"--data '.*missing.txt' does not exist; pass a UTF-8 text"),
    (["plot", "hidden", "{r}/lm", "--out", "{t}/v"], r"rnr plot hidden reads one of --text TEXT or --text-file FILE"),
    (["plot", "forecast", "{r}/lm", "--data", "{r}/x.csv", "--out", "{t}/f.png"],
     r"rnr plot forecast reads RNNForecaster models; .* holds a CharLM"),
    (["fit", "classify", "--data", "{r}/words.csv", "--id", "seq", "--set", "data.features=['x']", "--out", "{t}/m"],
     r"feature columns must be numeric, got \['x'\]"),
    (["generate", "{r}/clf"], r"rnr generate reads CharLM models; .* holds a RNNClassifier"),
]


@pytest.mark.parametrize("argv,match", MESSAGES, ids=[f"message{i}" for i in range(len(MESSAGES))])
def test_command_errors_name_the_fix(models, tmp_path, capsys, argv, match):
    import re

    assert main([a.format(r=models, t=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err


def test_parquet_without_rows_or_with_missing_ids_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    from rnr.forecast.parquet import ParquetPanel

    pd.DataFrame({"unique_id": pd.Series([], dtype="int64"), "ds": pd.Series([], dtype="int64"),
                  "y": pd.Series([], dtype="float64")}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(ValueError, match="the Parquet data holds no rows"):
        ParquetPanel(tmp_path / "empty.parquet")
    pd.DataFrame({"unique_id": ["a", None], "ds": [1, 2], "y": [1.0, 2.0]}).to_parquet(tmp_path / "holes.parquet")
    with pytest.raises(ValueError, match=r"id column 'unique_id' holds 1 missing values; every row needs"):
        ParquetPanel(tmp_path / "holes.parquet")
