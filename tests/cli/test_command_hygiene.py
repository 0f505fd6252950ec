"""The rnr command as users meet it (issue 20): where a bad setting came from, --help-keys and "did you mean", a
closed pipe, warnings, Ctrl-C said once, rnr.load on a model folder, no folder left by a failed plot, one number
format in the tables, a line per epoch where no progress bar shows."""
import inspect
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

import rnr
from rnr.__main__ import main
from rnr.cli import config as cfg
from rnr.data import tasks
from rnr.training import core

FAST = ["--set", "model.epochs=1", "--set", "model.hidden_size=8", "--set", "model.head_size=8"]
TINY_LM = ["--set", "model.epochs=1", "--set", "model.hidden_size=8", "--set", "model.seq_len=16", "--set",
           "model.batch_size=4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A sales CSV, a forecast model folder fitted on it, a text and a character model folder."""
    root = tmp_path_factory.mktemp("hygiene")
    tasks.ice_cream(n_shops=3, days=60).to_csv(root / "sales.csv", index=False)
    assert main(["fit", "forecast", "--data", str(root / "sales.csv"), "--horizon", "7", "--quiet", *FAST,
                 "--out", str(root / "model")]) == 0
    (root / "corpus.txt").write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    assert main(["fit", "text", "--data", str(root / "corpus.txt"), "--quiet", *TINY_LM, "--out",
                 str(root / "lm")]) == 0
    return root


def fit_error(argv, capsys) -> str:
    """The message of an ``rnr fit`` that must fail with exit code 2."""
    assert main(argv) == 2
    return capsys.readouterr().err


# ------------------------------------------------------------------ where a bad setting came from (item 8)
def test_a_set_item_is_named_as_the_source_not_the_config_file(made, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'[data]\npath = "{(made / "sales.csv").as_posix()}"\n[model]\nhorizon = 3\n', encoding="utf-8")
    err = fit_error(["fit", "forecast", "--config", str(toml), "--set", "model.epochs=many", "--out",
                     str(tmp_path / "m")], capsys)
    assert "model.epochs (--set model.epochs=many) must be an integer, got 'many'" in err and "run.toml" not in err


def test_a_toml_key_is_named_with_its_file_and_line(made, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'[data]\npath = "{(made / "sales.csv").as_posix()}"\n\n[model]\nhorizon = 3\nepochs = "many"\n',
                    encoding="utf-8")
    err = fit_error(["fit", "forecast", "--config", str(toml), "--out", str(tmp_path / "m")], capsys)
    assert f"model.epochs ({toml}:6) must be an integer, got 'many'" in err
    toml.write_text(f'[data]\npath = "{(made / "sales.csv").as_posix()}"\n[model]\nhorizon = 3\nlr = nan\n',
                    encoding="utf-8")
    err = fit_error(["fit", "forecast", "--config", str(toml), "--out", str(tmp_path / "m")], capsys)
    assert re.search(rf"lr must be a finite number > 0, got float nan.*\(model.lr came from {re.escape(str(toml))}:5\)",
                     err), err


@pytest.mark.parametrize("given,said", [
    (["--horizon", "0"], "(model.horizon came from --horizon)"),
    (["--horizon", "3", "--set", "model.season=twelve"], "got 'twelve' (model.season came from --set "
                                                         "model.season=twelve)"),
])
def test_the_estimators_messages_name_the_flag_or_set_item(made, tmp_path, capsys, given, said):
    err = fit_error(["fit", "forecast", "--data", str(made / "sales.csv"), *given, "--out", str(tmp_path / "m")],
                    capsys)
    assert said in err, err


def test_key_lines_finds_tables_dotted_keys_and_inline_tables():
    text = '# a comment\nmodel.horizon = 3\ndata = {path = "x.csv", id = "s"}\n[model]\n"cell" = "gru"\n'
    assert cfg.key_lines(text) == {("model", "horizon"): 2, ("data", None): 3, ("data", "path"): 3,
                                   ("data", "id"): 3, ("model", None): 4, ("model", "cell"): 5}


# ------------------------------------------------------------------ finding the keys (item 9)
@pytest.mark.parametrize("task,typo,meant", [("forecast", "model.hiden_size", "model.hidden_size"),
                                             ("classify", "model.tokeniser", "model.tokenizer"),
                                             ("text", "data.val_pth", "data.val_path")])
def test_a_mistyped_set_key_gets_did_you_mean(made, tmp_path, capsys, task, typo, meant):
    horizon = ["--horizon", "3"] if task == "forecast" else []
    err = fit_error(["fit", task, "--data", str(made / "sales.csv"), *horizon, "--set", f"{typo}=8", "--out",
                     str(tmp_path / "m")], capsys)
    assert f"unknown key '{typo}' (--set {typo}=8), did you mean '{meant}'?" in err, err
    assert f"rnr fit {task} --help-keys" in err


def test_a_mistyped_toml_key_gets_did_you_mean_and_its_line(made, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'[data]\npath = "{(made / "sales.csv").as_posix()}"\n[model]\nhorizon = 3\nhiden_size = 8\n',
                    encoding="utf-8")
    err = fit_error(["fit", "forecast", "--config", str(toml), "--out", str(tmp_path / "m")], capsys)
    assert f"unknown key 'model.hiden_size' ({toml}:5), did you mean 'model.hidden_size'?" in err, err


@pytest.mark.parametrize("task", ["forecast", "classify", "text"])
def test_help_keys_lists_every_key_with_the_estimators_default(task, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", task, "--help-keys"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    keys = cfg.schema(task)
    for table, known in keys.items():
        assert f"[{table}]" in out
        for key in known:
            assert re.search(rf"^  {key} = ", out, re.M), f"{table}.{key} is not listed"
    signature = inspect.signature(cfg.ESTIMATORS[task].__init__).parameters
    assert f"  hidden_size = {signature['hidden_size'].default} " in out  # the estimator's own default
    assert f'  cell = "{signature["cell"].default}" ' in out
    assert not re.search(r"^  (progress|log_dir|checkpoint_dir|resume) = ", out, re.M)  # the command sets those
    assert ("horizon = (required) --horizon" in out) == (task == "forecast")


def test_help_keys_says_what_keys_mean():
    text = cfg.describe("text")
    assert re.search(r"seq_len = 128 +characters per chunk: gradients flow back at most this far", text)
    assert re.search(r'path = \(required\) --data +the UTF-8 text file to learn from', text)
    assert "tokenizer" in cfg.describe("classify") and "horizon" not in text


def test_fit_help_groups_the_flags_by_task(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    sections = {part.splitlines()[0]: part for part in out.split("\n\n")}
    assert "--horizon" in sections["rnr fit forecast only:"] and "--nproc" in sections["rnr fit forecast only:"]
    assert "--text" in sections["rnr fit classify only:"] and "--val" in sections["rnr fit classify and text:"]
    assert "--id" in sections["rnr fit forecast and classify:"]
    assert "--data" in sections["every task:"] and "--horizon" not in sections["every task:"]
    assert "rnr fit forecast --help-keys" in out.split("examples:")[1]


# ------------------------------------------------------------------ the rough edges (item 10)
def test_a_reader_that_leaves_early_ends_predict_quietly(made):
    proc = subprocess.Popen([sys.executable, "-m", "rnr", "predict", str(made / "model")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # as `| head -1` does once it has its line: the command meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""


def test_a_python_warning_reads_rnr_warning_without_its_source_line(made, tmp_path):
    df = pd.read_csv(made / "sales.csv")
    df.loc[df.unique_id == "shop_01", "y"] = 5.0  # no spread: the standard scaler warns
    df.to_csv(tmp_path / "flat.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "rnr", "fit", "forecast", "--data", str(tmp_path / "flat.csv"),
                          "--horizon", "7", *FAST, "--set", "model.scaler=standard", "--set", "model.relative_to=last",
                          "--quiet", "--out", str(tmp_path / "m")], capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert re.search(r"^rnr: warning: Scaler\('standard'\): 1 series have no spread", run.stderr, re.M), run.stderr
    assert ".py:" not in run.stderr and "UserWarning" not in run.stderr and "Scaler(c.scaler)" not in run.stderr


def test_ctrl_c_during_fit_is_said_once_on_standard_output(made, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    monkeypatch.setattr(core, "stop_requested", lambda: (out / "metrics.csv").exists())  # Ctrl-C in epoch 2
    argv = ["fit", "forecast", "--data", str(made / "sales.csv"), "--horizon", "7", "--set", "model.epochs=3",
            "--set", "model.hidden_size=8", "--set", "model.head_size=8", "--out", str(out)]
    assert main(argv) == 130
    said = capsys.readouterr()
    assert re.fullmatch(rf"stopped by Ctrl-C after 1 of 3 epochs; saved the model trained so far to "
                        rf"{re.escape(str(out))}/ \(rnr predict reads it\); `rnr fit forecast .* --out "
                        rf"{re.escape(str(out))} --resume` continues the run\n", said.out), said.out
    assert "fitted" not in said.out and "stopped by Ctrl-C" not in said.err


def test_rnr_load_reads_a_model_folder_written_by_the_command(made):
    model = rnr.load(made / "model")
    assert isinstance(model, rnr.RNNForecaster)
    same = rnr.load(made / "model" / "model.safetensors")
    assert list(model.panel_info_["ids"]) == list(same.panel_info_["ids"])


def test_a_failed_plot_hidden_leaves_no_folder_it_made(made, tmp_path, capsys):
    argv = ["plot", "hidden", str(made / "lm"), "--text", "the cat saw Zorro"]  # Z, o, r: characters it never saw
    assert main([*argv, "--out", str(tmp_path / "new" / "view")]) == 2
    assert "never had" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main([*argv, "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"  # a folder that was there stays


def test_backtest_prints_its_table_with_four_decimals(made, capsys):
    assert main(["backtest", "forecast", "--data", str(made / "sales.csv"), "--horizon", "7", "--windows", "1",
                 *FAST]) == 0
    out = capsys.readouterr().out
    numbers = re.findall(r"\d+\.\d+", out)
    assert numbers and all(len(n.split(".")[1]) == 4 for n in numbers), out


def test_a_line_per_epoch_where_no_bar_shows_and_none_with_quiet(made, tmp_path, capsys):
    argv = ["fit", "text", "--data", str(made / "corpus.txt"), *TINY_LM, "--set", "model.epochs=2", "--out",
            str(tmp_path / "lm")]
    assert main(argv) == 0
    err = capsys.readouterr().err  # pytest's stderr is not a terminal
    assert re.findall(r"^rnr fit: epoch (\d)/2: train_loss [\d.]+; [\d.]+ s$", err, re.M) == ["1", "2"], err
    assert main([*argv, "--force", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
