"""The model folder rnr fit writes (rnr.cli.folder): a run owns its checkpoints, --resume refuses other data or
settings, --force replaces only rnr's own files, links are not followed, and one writer at a time."""
import json
import os

import pytest

from rnr.__main__ import main
from rnr.cli import folder as model_folder
from rnr.data import tasks

FAST = ["--quiet", "--horizon", "7", "--set", "model.epochs=2", "--set", "model.hidden_size=4",
        "--set", "model.head_size=4"]


@pytest.fixture
def data(tmp_path):
    tasks.ice_cream(n_shops=2, days=50, seed=0).to_csv(tmp_path / "a.csv", index=False)
    tasks.ice_cream(n_shops=2, days=50, seed=1).to_csv(tmp_path / "b.csv", index=False)
    return tmp_path


def fit(data, name: str, out, *extra) -> int:
    return main(["fit", "forecast", "--data", str(data / name), *FAST, "--out", str(out), *extra])


def killed(out) -> None:
    """What a run killed before it saved its model leaves: its checkpoints and run.json."""
    for name in ("model.safetensors", "info.json"):
        (out / name).unlink()


def test_a_new_run_never_takes_over_the_checkpoints_of_another(data, capsys):
    out = data / "r"
    assert fit(data, "a.csv", out) == 0
    run_a = json.loads((out / "run.json").read_text())["run_id"]
    killed(out)
    assert fit(data, "b.csv", out) == 2
    assert "already holds the checkpoints of an unfinished run; pass --force" in capsys.readouterr().err
    assert fit(data, "b.csv", out, "--force") == 0
    run_b = json.loads((out / "run.json").read_text())
    assert run_b["run_id"] != run_a and run_b["data"]["sha256"] == model_folder.fingerprint(data / "b.csv")["sha256"]
    assert json.loads((out / "info.json").read_text())["run_id"] == run_b["run_id"]
    assert not (out / ".rnr-replaced").exists()
    killed(out)
    assert fit(data, "b.csv", out, "--resume", "--set", "model.epochs=3") == 0  # B continues, a longer run allowed
    info = json.loads((out / "info.json").read_text())
    assert info["run_id"] == run_b["run_id"] and info["resumed"] and info["epochs_done"] == 3


@pytest.mark.parametrize("change, message", [
    (["--data", "b.csv"], "--data is another file (its size or content changed)"),
    (["--set", "model.hidden_size=8"], "model.hidden_size was 4, now 8"),
    (["--set", "data.id=shop"], "data.id was 'unique_id', now 'shop'"),
])
def test_resume_with_other_data_or_settings_names_what_differs(data, capsys, change, message):
    out = data / "r"
    assert fit(data, "a.csv", out) == 0
    name = change[1] if change[0] == "--data" else "a.csv"
    extra = [] if change[0] == "--data" else change
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert fit(data, name, out, "--resume", *extra) == 2
    err = capsys.readouterr().err
    assert "--resume: this command differs from the run in" in err and message in err, err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before


def test_resume_on_a_folder_without_a_run_is_refused(data, capsys):
    assert fit(data, "a.csv", data / "empty", "--resume") == 2
    assert "has no checkpoint of a run to continue; drop --resume" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["info.json", "metrics.csv", "model.safetensors"])
def test_the_users_own_files_are_never_written_over(data, capsys, name):
    out = data / "mine"
    out.mkdir()
    (out / name).write_text("my own file")
    for extra in ([], ["--force"]):
        assert fit(data, "a.csv", out, *extra) == 2
        assert "which rnr did not write there (no run.json)" in capsys.readouterr().err
        assert (out / name).read_text() == "my own file"


def test_a_link_in_the_folder_is_not_followed(data, capsys):
    out = data / "r"
    assert fit(data, "a.csv", out) == 0
    elsewhere = data / "precious.json"
    elsewhere.write_text("keep me")
    (out / "info.json").unlink()
    (out / "info.json").symlink_to(elsewhere)
    assert fit(data, "a.csv", out, "--force") == 2
    assert "'info.json' there is a symbolic link" in capsys.readouterr().err
    assert elsewhere.read_text() == "keep me"


def test_one_writer_at_a_time_and_a_dead_writers_lock_is_taken_over(data, capsys):
    out = data / "r"
    out.mkdir()
    (out / ".rnr-lock").write_text(str(os.getpid()))  # a live process holds it
    assert fit(data, "a.csv", out) == 2
    assert f"is in use by another rnr fit (process {os.getpid()})" in capsys.readouterr().err
    (out / ".rnr-lock").write_text("999999999")  # no such process
    assert fit(data, "a.csv", out) == 0
    assert not (out / ".rnr-lock").exists()


def test_a_forced_run_that_fails_puts_back_what_it_replaced(data, capsys):
    out = data / "r"
    assert fit(data, "a.csv", out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = data / "bad.csv"
    bad.write_text((data / "a.csv").read_text().replace(",", ",x", 1))  # a column name the run does not know
    assert fit(data, "bad.csv", out, "--force", "--set", "data.target=nope") == 2
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
