"""No command writes over a file it reads or a file of a model folder (one guard: ``rnr.cli.common.writable``).

Each case is a reproduction from the probe that found it: the command exits 2 with a message naming the flag, the
path and what it would destroy, and the file is byte for byte what it was.
"""
import os

import pytest

import rnr
from rnr.__main__ import main
from rnr.data import tasks

SMALL = ["--set", "model.epochs=1", "--set", "model.hidden_size=4", "--quiet"]
TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 20


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    tasks.ice_cream(n_shops=2, days=40).to_csv(root / "sales.csv", index=False)
    assert main(["fit", "forecast", "--data", str(root / "sales.csv"), "--horizon", "7", "--set", "model.head_size=4",
                 *SMALL, "--out", str(root / "m")]) == 0
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["fit", "text", "--data", str(root / "corpus.txt"), "--set", "model.batch_size=4", *SMALL,
                 "--out", str(root / "lm")]) == 0
    tasks.toy_reviews(40).to_csv(root / "reviews.csv", index=False)
    assert main(["fit", "classify", "--data", str(root / "reviews.csv"), "--text", "review", "--label", "sentiment",
                 *SMALL, "--out", str(root / "clf")]) == 0
    return root


CASES = [  # argv with {r} for the folder, the file that must stay as it was, the message
    (["predict", "{r}/m", "--out", "{r}/m/model.safetensors"], "m/model.safetensors",
     r"--out '.*model.safetensors' is 'model.safetensors' of the model folder '.*m' \(the model\); writing there "
     r"would destroy the model"),
    (["predict", "{r}/m", "--out", "{r}/m/info.json"], "m/info.json", r"is 'info.json' of the model folder"),
    (["predict", "{r}/m", "--out", "{r}/m/metrics.csv"], "m/metrics.csv", r"is 'metrics.csv' of the model folder"),
    (["predict", "{r}/m/model.safetensors", "--out", "{r}/m/model.safetensors"], "m/model.safetensors",
     r"is the file that the model reads"),
    (["generate", "{r}/lm", "--length", "5", "--out", "{r}/lm/model.safetensors"], "lm/model.safetensors",
     r"is 'model.safetensors' of the model folder"),
    (["export", "{r}/lm", "--onnx", "--out", "{r}/lm/model.safetensors"], "lm/model.safetensors",
     r"is 'model.safetensors' of the model folder"),
    (["backtest", "forecast", "--data", "{r}/sales.csv", "--horizon", "3", "--windows", "1", "--set",
      "model.epochs=1", "--out", "{r}/sales.csv"], "sales.csv", r"--out '.*sales.csv' is the file that --data reads"),
    (["predict", "{r}/clf", "--data", "{r}/reviews.csv", "--out", "{r}/reviews.csv"], "reviews.csv",
     r"is the file that --data reads"),
    (["plot", "forecast", "{r}/m", "--data", "{r}/sales.csv", "--out", "{r}/sales.csv"], "sales.csv",
     r"is the file that --data reads"),
]


@pytest.mark.parametrize("argv, kept, match", CASES, ids=[f"{c[0][0]}-{c[1]}" for c in CASES])
def test_no_command_writes_over_what_it_reads(folders, capsys, argv, kept, match):
    import re

    before = (folders / kept).read_bytes()
    assert main([a.format(r=folders) for a in argv]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert (folders / kept).read_bytes() == before


def test_a_link_to_a_model_file_is_refused_too(folders, capsys):
    link = folders / "innocent.csv"
    link.symlink_to(folders / "m" / "model.safetensors")
    before = (folders / "m" / "model.safetensors").read_bytes()
    assert main(["predict", str(folders / "m"), "--out", str(link)]) == 2
    assert "of the model folder" in capsys.readouterr().err
    assert (folders / "m" / "model.safetensors").read_bytes() == before
    assert isinstance(rnr.load(folders / "m" / "model.safetensors"), rnr.RNNForecaster)
    os.unlink(link)


def test_other_paths_in_a_model_folder_are_fine(folders):
    assert main(["predict", str(folders / "m"), "--quiet", "--out", str(folders / "m" / "forecast.csv")]) == 0
    assert (folders / "m" / "forecast.csv").stat().st_size > 0
