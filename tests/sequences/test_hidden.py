"""The hidden-state view: states, heatmap, GIF, interpretable units, and the HTML page in a headless browser."""
import itertools
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from rnr.core.rnn import RNN
from rnr.sequences.charlm import CharLM
from rnr.sequences.hidden import (
    animate,
    animation_figure,
    char_html,
    hidden_states,
    interpretable_units,
    text_features,
    write_view,
)

TEXT = 'To be, or not to be: "that" is\nthe question (whether tis nobler).\n' * 3


@pytest.fixture(scope="module")
def lm():
    return CharLM(hidden_size=16, embedding_dim=8, seq_len=32, batch_size=4, epochs=1, progress=False).fit(TEXT)


def test_hidden_states_of_an_rnn_are_its_outputs():
    torch.manual_seed(0)
    rnn = RNN(3, 5, cell="gru")
    x = torch.randn(7, 3)
    with torch.no_grad():
        out, _ = rnn(x[None])
    np.testing.assert_allclose(hidden_states(rnn, x), out[0].numpy())
    with pytest.raises(ValueError, match=r"x must be one sequence, \(T, I\) or \(1, T, I\), got shape \(2, 7, 3\)"):
        hidden_states(rnn, torch.randn(2, 7, 3))
    with pytest.raises(TypeError, match="model must be an rnr.RNN or a fitted rnr.CharLM, got Linear"):
        hidden_states(torch.nn.Linear(2, 2), x)


def test_a_unit_that_tracks_the_line_position_is_found():
    rng = np.random.default_rng(0)
    states = rng.normal(0, 0.3, (len(TEXT), 6))
    states[:, 4] = np.tanh(text_features(TEXT)["position in line"] / 20)  # a planted line-position unit
    (unit, name, corr), *_ = interpretable_units(TEXT, states, k=2)
    assert (unit, name) == (4, "position in line") and corr > 0.9


def test_write_view_makes_heatmap_gif_and_html(lm, tmp_path):
    paths = write_view(lm, TEXT[:60], tmp_path / "view", k=3)
    assert sorted(paths) == ["gif", "heatmap", "html"]
    assert Image.open(paths["heatmap"]).size[0] > 100
    gif = Image.open(paths["gif"])
    assert gif.n_frames == 60  # one frame per character read
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("<section>") == 3 and page.count("<span") == 3 * 60 and ">&quot;</span>" in page  # characters are escaped


def _frames(path) -> list[np.ndarray]:
    gif = Image.open(path)
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.array(gif.convert("RGB")).astype(int))
    return frames


def test_gif_frames_fill_step_by_step(tmp_path):
    states = np.linspace(-1, 1, 60).reshape(20, 3)
    frames = _frames(animate(states, tmp_path / "a.gif"))
    assert len(frames) == 20
    changed = [np.flatnonzero((a != b).any(axis=(0, 2))) for a, b in itertools.pairwise(frames)]
    assert all(c.size for c in changed)  # every frame adds a step
    assert [c.min() for c in changed] == sorted(c.min() for c in changed)  # from left to right
    width = frames[0].shape[1]
    assert all(c.max() - c.min() < width / 8 for c in changed)  # one step's column (and its box) at a time


def test_animation_figure_names_steps_units_and_the_scale():
    fig = animation_figure(np.zeros((5, 3)), labels=list("a b\n\t"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "\u2423", "b", "\u21b5", "\u21e5"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step t: the character read", "hidden unit")
    assert ax.get_title() == "hidden state h_t of 3 units, step by step"
    assert fig.axes[1].get_ylabel() == "activation"  # the colour bar
    numeric = animation_figure(np.zeros((30, 3)), title="an RNN's state").axes[0]
    numeric.figure.canvas.draw()
    assert numeric.get_xlabel() == "step t" and numeric.get_title() == "an RNN's state"
    steps = [t for t in numeric.get_xticks() if 0.5 <= t <= 30.5]  # the step numbers shown, whole
    assert numeric.get_xlim() == (0.5, 30.5) and len(steps) > 3 and all(t == int(t) for t in steps)
    long = animation_figure(np.zeros((200, 3)), labels=["x"] * 200).axes[0]
    assert long.get_xlabel() == "step t"  # too many steps to name each by its character


def test_animate_arguments(tmp_path):
    states = np.random.default_rng(0).normal(size=(250, 4))
    gif = Image.open(animate(states, tmp_path / "a.gif", max_frames=50, ms_per_step=20, dpi=60))
    assert gif.n_frames == 50 and gif.info["duration"] == 100  # five steps a frame
    assert gif.size == (14 * 60, int(2.6 * 60))  # 14 inches wide at most, at dpi 60
    gif.seek(49)
    assert gif.info["duration"] == 2000  # the last frame stays
    with pytest.raises(ValueError, match=r"labels must name each of the 250 steps, got 3; pass list\(text\)"):
        animate(states, tmp_path / "b.gif", labels="abc")
    with pytest.raises(ValueError, match=r"states must be \(T, units\) with T, units >= 1, got shape \(0, 4\)"):
        animate(np.zeros((0, 4)), tmp_path / "b.gif")
    with pytest.raises(ValueError, match="max_frames must be >= 1, got 0"):
        animate(states, tmp_path / "b.gif", max_frames=0)


BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) on this machine; .ci/run installs it")
def test_html_page_renders_in_a_headless_browser_without_console_errors(lm, tmp_path):
    page = tmp_path / "hidden.html"
    page.write_text(char_html(TEXT[:80], hidden_states(lm, TEXT[:80]), k=2), encoding="utf-8")
    shot = tmp_path / "shot.png"
    run = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                          "--v=0", f"--screenshot={shot}", "--window-size=900,700", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    pixels = np.array(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20  # text and coloured characters, not a blank page
    assert (pixels != 255).any(axis=1).mean() > 0.01


def test_rnr_plot_hidden_command(lm, tmp_path, capsys):
    from rnr.__main__ import main
    from rnr.io import save

    save(lm, tmp_path / "lm.safetensors")
    assert main(["plot", "hidden", str(tmp_path / "lm.safetensors"), "--text", TEXT[:40], "--units", "1,2",
                 "--out", str(tmp_path / "view"), "--json"]) == 0
    assert sorted(p.name for p in (tmp_path / "view").iterdir()) == ["heatmap.png", "hidden.gif", "hidden.html"]
    assert main(["plot", "hidden", str(tmp_path / "lm.safetensors"), "--text", "x", "--units", "99",
                 "--out", str(tmp_path / "v2")]) == 2
    assert "--units must lie in [0, 16)" in capsys.readouterr().err
    assert main(["plot", "hidden", str(tmp_path / "lm.safetensors"), "--text", "\u00e9t\u00e9",
                 "--out", str(tmp_path / "v3")]) == 2
    assert "a character the training text never had" in capsys.readouterr().err


def test_rnr_generate_command(lm, tmp_path, capsys):
    from rnr.__main__ import main
    from rnr.io import save

    save(lm, tmp_path / "lm.safetensors")
    argv = ["generate", str(tmp_path / "lm.safetensors"), "--prime", "To be", "--length", "30", "--seed", "3",
            "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["text"] == first["text"]  # the same seed writes the same text
    assert first["length"] == len(first["text"]) and set(first["text"]) <= set(TEXT)
    assert main(["generate", str(tmp_path / "lm.safetensors"), "--length", "0"]) == 2
    assert "--length must be >= 1, got 0" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rnr_plot_hidden_input_errors(lm, tmp_path, capsys):
    from rnr.__main__ import main
    from rnr.io import save

    save(lm, tmp_path / "lm.safetensors")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    for extra, message in [(["--text", "To", "--units", "a,b"], "--units must be comma-separated integers, got 'a,b'"),
                           (["--text-file", str(tmp_path / "latin1.txt")], "is not UTF-8 text; save it as UTF-8"),
                           (["--text-file", str(tmp_path / "none.txt")], "none.txt' does not exist")]:
        assert main(["plot", "hidden", str(tmp_path / "lm.safetensors"), *extra, "--out", str(tmp_path / "v")]) == 2
        assert message in capsys.readouterr().err
