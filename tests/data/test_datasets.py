"""Where the shared data is found: ``$RNR_DATA``, else ``../shared/data`` beside the repository, whatever the
current directory."""
from pathlib import Path

import pytest

import rnr
from rnr.data.datasets import data_dir

REPO = Path(rnr.__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "data").resolve()


def test_the_repository_root_is_where_the_package_sits():
    assert (REPO / "pyproject.toml").is_file()


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data folder at {SHARED} (set RNR_DATA to run)")
def test_data_dir_finds_the_shared_folder_beside_the_repository_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("RNR_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_dir() == SHARED


def test_rnr_data_wins_and_a_missing_folder_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("RNR_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("RNR_DATA", str(tmp_path / "nope"))
    assert data_dir() is None
