"""The rnr command: fit forecast, predict, info; configs, --set, --json, --quiet, exit codes and messages."""
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

import rnr
from rnr.__main__ import main
from rnr.cli.config import ConfigError, merge, parse_set, validate
from rnr.data import tasks

FAST = ["--set", "model.epochs=1", "--set", "model.hidden_size=8", "--set", "model.head_size=8"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A sales CSV and a model fitted on it through the command."""
    root = tmp_path_factory.mktemp("cli")
    tasks.ice_cream(n_shops=3, days=60).to_csv(root / "sales.csv", index=False)
    code = main(["fit", "forecast", "--data", str(root / "sales.csv"), "--horizon", "7", "--quiet",
                 "--set", "data.static=['size']", "--set", "model.quantiles=[0.1, 0.9]", *FAST,
                 "--out", str(root / "model")])
    assert code == 0
    return root


def test_fit_writes_a_model_folder_that_predict_and_info_read(folder, capsys):
    assert sorted(p.name for p in (folder / "model").iterdir()) == ["checkpoints", "info.json", "metrics.csv",
                                                                     "model.safetensors", "run.json"]
    assert len(pd.read_csv(folder / "model" / "metrics.csv")) == 1  # one row per epoch
    assert main(["predict", str(folder / "model"), "--out", str(folder / "fc.csv")]) == 0
    fc = pd.read_csv(folder / "fc.csv")
    assert list(fc.columns) == ["unique_id", "ds", "y_hat", "y_hat_q10", "y_hat_q90"]
    assert len(fc) == 3 * 7 and fc.y_hat.notna().all()
    capsys.readouterr()
    assert main(["info", str(folder / "model"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["task"] == "forecast" and info["series"] == 3 and info["data"]["static"] == ["size"]
    assert info["model"]["quantiles"] == [0.1, 0.9] and info["parameters"] > 0


def test_json_and_quiet(folder, capsys):
    assert main(["predict", str(folder / "model"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 21 and len(out["forecasts"]) == 21 and "_text" not in out
    assert main(["predict", str(folder / "model"), "--quiet", "--out", str(folder / "q.csv")]) == 0
    assert capsys.readouterr().out == ""


def test_config_file_and_set_override(folder, tmp_path, capsys):
    (tmp_path / "run.toml").write_text(
        f'[data]\npath = "{(folder / "sales.csv").as_posix()}"\n\n[model]\nhorizon = 5\ncell = "elman"\n'
        f'epochs = 1\nhidden_size = 4\nhead_size = 4\n', encoding="utf-8")
    assert main(["fit", "forecast", "--config", str(tmp_path / "run.toml"), "--set", "model.cell=lstm", "--json",
                 "--out", str(tmp_path / "m")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["cell"] == "lstm" and out["model"]["horizon"] == 5  # --set wins over the file


ERRORS = [  # (argv after "rnr", message pattern); every one exits with 2 and names what to fix
    (["fit", "forecast", "--data", "{d}/nope.csv", "--horizon", "7", "--out", "{t}/m"], r"data file .*nope.csv' does not exist"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--out", "{t}/m"], r"does not set model.horizon, .* pass --horizon N"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--horizon", "7", "--set", "model.hiden=3", "--out", "{t}/m"],
     r"unknown key 'model.hiden' \(--set model.hiden=3\), did you mean 'model.hidden_size'\? The keys of \[model\] "
     r"are \[.*'hidden_size'"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--horizon", "7", "--set", "model.epochs=many", "--out", "{t}/m"],
     r"model.epochs \(--set model.epochs=many\) must be an integer, got 'many'"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--horizon", "7", "--set", "epochs=3", "--out", "{t}/m"],
     r"--set key must be table.key .* got 'epochs'"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--horizon", "7", "--id", "store", "--out", "{t}/m"],
     r"--id column 'store' is not in .* its columns are \['unique_id', 'ds'"),
    (["fit", "forecast", "--data", "{d}/sales.csv", "--horizon", "7", "--out", "{d}/model"],
     r"already holds a model; pass --force"),
    (["fit", "forecast", "--config", "{t}/missing.toml", "--out", "{t}/m"], r"config file .* does not exist"),
    (["predict", "{t}"], r"is not a model folder \(no model.safetensors in it\)"),
    (["info", "{t}/nothing"], r"nothing' does not exist; pass the --out folder of rnr fit"),
    (["fit", "text", "--data", "{d}/sales.csv", "--horizon", "7", "--out", "{t}/m"],
     r"--horizon does not apply to rnr fit text; it applies to \['forecast'\]"),
    (["fit", "classify", "--data", "{d}/sales.csv", "--out", "{t}/m"],
     r"say how .*sales.csv' holds its examples: --text COLUMN .* or --id COLUMN"),
    (["fit", "classify", "--data", "{d}/sales.csv", "--text", "review", "--out", "{t}/m"],
     r"columns \['review', 'label'\] are not in .*its columns are"),
    (["plot", "forecast", "{d}/model", "--out", "{t}/f.png"], r"needs --data, the CSV of the history"),
    (["plot", "forecast", "{d}/model", "--data", "{d}/sales.csv", "--series", "x9", "--out", "{t}/f.png"],
     r"--series \['x9'\] are not series of the model"),
    (["plot", "forecast", "{d}/model", "--data", "{d}/sales.csv", "--out", "{t}/f.txt"], r"--out must name a .png"),
    (["export", "{d}/model", "--onnx"], r"rnr export reads CharLM models; .* holds a RNNForecaster"),
    (["predict", "{d}/model", "--data", "{d}/sales.csv"], r"--data applies to classify models"),
]


@pytest.mark.parametrize("argv,match", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_input_errors_exit_2_with_a_message(folder, tmp_path, capsys, argv, match):
    argv = [a.format(d=folder, t=tmp_path) for a in argv]
    before = (folder / "model" / "model.safetensors").read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert (folder / "model" / "model.safetensors").read_bytes() == before  # nothing saved was touched


def test_bad_toml_and_types_in_config(tmp_path):
    (tmp_path / "bad.toml").write_text("[model\nhorizon = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is not valid TOML: .*fix the line it names"):
        from rnr.cli.config import load_toml

        load_toml(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match=r"unknown table 'modle' \(in run.toml\), did you mean 'model'\? The tables "
                                          r"are \['data', 'model'\]"):
        validate({"modle": {}}, "run.toml")
    with pytest.raises(ConfigError, match=r"model.quantiles \(in run.toml\) must be a list, got 0.5"):
        validate({"data": {"path": "x.csv"}, "model": {"horizon": 3, "quantiles": 0.5}}, "run.toml")
    assert parse_set("model.lr=0.01") == (["model", "lr"], 0.01)
    assert parse_set("model.cell=lstm") == (["model", "cell"], "lstm")
    assert merge({"model": {"lr": 1}}, ["model.lr=2"]) == {"model": {"lr": 2}}


def test_console_script_usage_error_exits_2_and_help_has_examples():
    run = subprocess.run([sys.executable, "-m", "rnr", "fit", "forecast", "--horizon", "x", "--out", "m"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "invalid int value: 'x'" in run.stderr
    help_text = subprocess.run([sys.executable, "-m", "rnr", "fit", "--help"], capture_output=True, text=True).stdout
    assert "rnr fit forecast --data sales.csv" in help_text


def test_evaluate_scores_forecasts_against_what_happened(tmp_path, capsys):
    df = tasks.ice_cream(n_shops=3, days=60)
    last = df.groupby("unique_id").tail(7)
    df.drop(last.index).to_csv(tmp_path / "train.csv", index=False)
    last.to_csv(tmp_path / "actual.csv", index=False)
    assert main(["fit", "forecast", "--data", str(tmp_path / "train.csv"), "--horizon", "7", "--quiet",
                 "--set", "model.quantiles=[0.1, 0.9]", *FAST, "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "actual.csv"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 21 and out["series"] == 3
    assert out["mae"] > 0 and out["rmse"] >= out["mae"] and 0 <= out["coverage 10-90"] <= 1
    df.head(5).to_csv(tmp_path / "old.csv", index=False)  # rows from before the forecast: nothing to score
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "old.csv")]) == 2
    assert "has no row at the forecast times" in capsys.readouterr().err


def test_backtest_prints_rnr_beside_the_baselines(folder, tmp_path, capsys):
    assert main(["backtest", "forecast", "--data", str(folder / "sales.csv"), "--horizon", "7", "--windows", "2",
                 "--set", "model.season=7", *FAST, "--out", str(tmp_path / "scores.csv"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {row["model"] for row in out["table"]} >= {"rnr", "naive", "seasonal_naive", "lagged_ridge"}
    assert out["m"] == 7 and len(pd.read_csv(tmp_path / "scores.csv")) == 2 * len(out["table"])
    assert main(["backtest", "forecast", "--data", str(folder / "sales.csv"), "--horizon", "7", "--windows",
                 "0"]) == 2
    assert "--windows must be >= 1, got 0" in capsys.readouterr().err


def test_unreadable_time_column_is_named(tmp_path, capsys):
    pd.DataFrame({"unique_id": ["a", "a"], "ds": ["soon", "later"], "y": [1.0, 2.0]}).to_csv(tmp_path / "bad.csv",
                                                                                          index=False)
    assert main(["fit", "forecast", "--data", str(tmp_path / "bad.csv"), "--horizon", "1", "--out",
                 str(tmp_path / "m")]) == 2
    assert re.search(r"time column 'ds' of .*bad.csv' holds neither integers nor dates", capsys.readouterr().err)


def test_the_main_job_runs_end_to_end_small(tmp_path, capsys):
    """``make run`` is ``rnr demo``: a smaller panel and fewer epochs here, the same code path."""
    assert main(["demo", "--shops", "4", "--days", "120", "--epochs", "1", "--windows", "1", "--out",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "rnr" in out and "lagged_ridge" in out and "seasonal_naive" in out
    for name in ("forecast.png", "error_by_horizon.png", "forecaster.safetensors"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert isinstance(rnr.load(tmp_path / "out" / "forecaster.safetensors"), rnr.RNNForecaster)


def test_times_with_utc_offsets_read_as_utc_across_daylight_saving_and_time_zones(tmp_path, capsys):
    berlin = pd.date_range("2021-03-27 20:00", periods=30, freq="h", tz="Europe/Berlin")  # crosses 28 March 02:00
    york = pd.date_range("2021-01-01", periods=30, freq="h", tz="America/New_York")
    df = pd.concat([pd.DataFrame({"unique_id": uid, "ds": t.strftime("%Y-%m-%dT%H:%M:%S%z"), "y": range(1, 31)})
                    for uid, t in (("berlin", berlin), ("york", york))])
    df.to_csv(tmp_path / "tz.csv", index=False)
    assert main(["fit", "forecast", "--data", str(tmp_path / "tz.csv"), "--horizon", "2", "--quiet", *FAST,
                 "--out", str(tmp_path / "m")]) == 0
    assert "holds UTC offsets (e.g. '2021-03-27T20:00:00+0100'); read as UTC times" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "m"), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    out = pd.read_csv(tmp_path / "p.csv", parse_dates=["ds"]).set_index("unique_id")["ds"]
    assert out["berlin"].iloc[0] == berlin[-1].tz_convert(None) + pd.Timedelta(hours=1)  # the next hour, in UTC
    assert out["york"].iloc[0] == york[-1].tz_convert(None) + pd.Timedelta(hours=1)


def test_fill_gaps_from_the_command_and_the_api(tmp_path):
    df = tasks.ice_cream(n_shops=2, days=40)
    gappy = df.drop(index=df.index[[5, 6, 50]])
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    assert main(["fit", "forecast", "--data", str(tmp_path / "gappy.csv"), "--horizon", "3", "--quiet", *FAST,
                 "--set", "data.fill_gaps=true", "--set", "data.missing=mask", "--out", str(tmp_path / "m")]) == 0
    model = rnr.RNNForecaster(horizon=3, epochs=1, hidden_size=4, head_size=4)
    model.fit(gappy, fill_gaps=True, missing="mask")
    assert len(model.predict()) == 2 * 3
