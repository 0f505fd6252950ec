"""The documentation runs as written: every Python and console block of README.md and of each docs/*.md page.

A ```python block runs in this process, in a temporary folder, so the files it writes land there. A ```console
block runs each ``$ command`` line in order, in a temporary folder, with this Python and its rnr first on PATH.
A block whose fence names a file after its language (```toml run.toml) is written to that folder first, for every
block of its page. Blocks that must not run here (real data, minutes of work) are fenced ```bash or ```text.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
FENCE = re.compile(r"^```([\w-]*)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def fences(page: Path) -> list[tuple[str, str, str]]:
    """(language, file name or "", text) of each fenced block of ``page``, in order."""
    return FENCE.findall(page.read_text(encoding="utf-8"))


def blocks(language: str) -> list:
    params = []
    for page in PAGES:
        found = [text for lang, name, text in fences(page) if lang == language and not name]
        params += [pytest.param(page, text, id=f"{page.stem}-{language}{i}") for i, text in enumerate(found)]
    return params


def write_named_files(page: Path, folder: Path) -> None:
    for _, name, text in fences(page):
        if name:
            (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("page, code", blocks("python"))
def test_python_block_runs(page, code, tmp_path, monkeypatch):
    write_named_files(page, tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(page), "exec"), namespace)
    assert len(namespace) > 1  # the block defined something


@pytest.mark.parametrize("page, block", blocks("console"))
def test_console_block_runs(page, block, tmp_path):
    """Each ``$ command`` line, in order, with this Python and its rnr first on PATH."""
    write_named_files(page, tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert commands, f"a console block of {page.name} has no '$ ' line"
    for command in commands:
        run = subprocess.run(command.replace("python ", f"{sys.executable} ", 1), shell=True, cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{page.name}: {command}\n{run.stderr}"


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("```")[1]
    assert "make run" in head and "make test" in head


def test_readme_is_a_front_door():
    """Short, and linking every page of docs/."""
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md is over 300 lines: move the details to a page of docs/"
    for page in DOCS:
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"


def test_pictures_exist_and_are_small():
    count = 0
    for page in PAGES:
        for picture in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            path = page.parent / picture
            assert path.is_file(), f"{page.name}: {picture} is missing: run python docs/figures.py"
            assert 1_000 < path.stat().st_size < 1_000_000, picture
            count += 1
    assert len(re.findall(r"!\[", README.read_text())) >= 5
    assert count >= 5


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    heads = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_lead_somewhere(page):
    """Every relative link names a file of the repository, and every #anchor a heading of its page."""
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links {target}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name} links {target}: {file.name} has no such heading"
