"""The README's Python examples run as written (in a temporary folder, so their files land there)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert len(namespace) > 1  # the block defined something


CONSOLE = re.findall(r"```console\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("block", CONSOLE, ids=[f"console{i}" for i in range(len(CONSOLE))])
def test_readme_console_example_runs(block, tmp_path):
    """Each ``$ command`` line, in order, with this Python and its rnr first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert commands
    for command in commands:
        run = subprocess.run(command.replace("python ", f"{sys.executable} ", 1), shell=True, cwd=tmp_path,
                             env=env, capture_output=True, text=True)
        assert run.returncode == 0, f"{command}\n{run.stderr}"


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("```")[1]
    assert "make run" in head and "make test" in head


def test_readme_pictures_exist_and_are_small():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert len(pictures) >= 5
    for picture in pictures:
        path = README.parent / picture
        assert path.is_file(), f"{picture} is missing: run python docs/figures.py"
        assert 1_000 < path.stat().st_size < 1_000_000, picture
