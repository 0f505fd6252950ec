"""The pictures the command draws, looked at as a reader would: hidden.gif from ``rnr plot hidden`` (small, each
step under its character), forecast.png from ``rnr plot forecast`` (legend off the data, the target named, what
happened drawn dotted) and error_by_horizon.png from ``rnr demo`` (a title)."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import rnr.cli.demo
import rnr.cli.forecast
from rnr.__main__ import main
from rnr.data import tasks
from rnr.forecast.plots import plot_error_by_horizon
from rnr.io import save
from rnr.sequences.charlm import CharLM

LINE = "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak!\n"  # 80 characters
FAST = ["--set", "model.epochs=1", "--set", "model.hidden_size=8", "--set", "model.head_size=8"]


def _frame(gif, i: int) -> np.ndarray:
    gif.seek(i)
    return np.array(gif.convert("RGB")).astype(int)  # (height, width, 3)


def _has_text(pixels: np.ndarray) -> bool:
    return bool((pixels.sum(axis=2) < 200).any())  # text is drawn in near-black


def _coloured(pixels: np.ndarray) -> int:
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())  # red or blue cells, not grey or white


def test_hidden_gif_of_a_line_of_text_is_under_a_megabyte_and_fills_one_character_a_frame(tmp_path, capsys):
    lm = CharLM(hidden_size=256, embedding_dim=8, seq_len=40, batch_size=4, epochs=1, progress=False).fit(LINE * 4)
    save(lm, tmp_path / "lm.safetensors")
    assert main(["plot", "hidden", str(tmp_path / "lm.safetensors"), "--text", LINE, "--out", str(tmp_path / "view"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["characters"] == 80
    path = tmp_path / "view" / "hidden.gif"
    assert path.stat().st_size < 1_000_000  # was 5.1 MB: a frame per step, each redrawn in full
    gif = Image.open(path)
    assert gif.n_frames == 80 and gif.size[0] <= 14 * 80 and gif.size[1] <= 8 * 80
    first, last = _frame(gif, 0), _frame(gif, 79)
    height, width = first.shape[:2]
    assert _has_text(first[: height // 12]) and _has_text(first[-height // 8:])  # the title, the characters below
    left = slice(0, width // 2)  # the colour bar is on the right
    assert _coloured(last[:, left]) > 10 * _coloured(first[:, left])  # the first frame holds one step, the last all


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    """A panel whose last week is held out: the model is fitted without it through the command."""
    root = tmp_path_factory.mktemp("pictures")
    panel = tasks.ice_cream(n_shops=2, days=60)
    future = panel.groupby("unique_id").tail(7)
    panel.drop(future.index).rename(columns={"y": "sales"}).to_csv(root / "train.csv", index=False)
    panel.rename(columns={"y": "sales"}).to_csv(root / "all.csv", index=False)
    assert main(["fit", "forecast", "--data", str(root / "train.csv"), "--target", "sales", "--horizon", "7",
                 "--quiet", "--set", "model.quantiles=[0.1, 0.9]", *FAST, "--out", str(root / "model")]) == 0
    return root, future


@pytest.fixture
def drawn(monkeypatch):
    """The figures ``rnr plot forecast`` saves, kept for a look."""
    figures = []
    save_plots = rnr.cli.forecast.save_forecast_plots
    monkeypatch.setattr(rnr.cli.forecast, "save_forecast_plots", lambda *a, **kw: figures.append(save_plots(*a, **kw)))
    return figures


def test_forecast_png_draws_data_past_the_training_end_as_actuals(shops, drawn, capsys):
    root, future = shops
    assert main(["plot", "forecast", str(root / "model"), "--data", str(root / "all.csv"), "--last", "20",
                 "--out", str(root / "f.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["actual_rows"] == 14  # a week of each of the two shops
    assert Image.open(root / "f.png").format == "PNG"
    (fig,) = drawn
    starts = future.groupby("unique_id")["ds"].min()
    for ax in fig.axes:
        lines = {line.get_label(): line for line in ax.lines}
        assert sorted(lines) == ["actual", "forecast", "history"] and ax.get_ylabel() == "sales"
        assert ax.get_xlabel() == "ds"
        assert lines["actual"].get_linestyle() == ":" and len(lines["actual"].get_xdata()) == 7
        start = starts[ax.get_title()]
        assert pd.Series(lines["actual"].get_xdata()).min() == start
        assert pd.Series(lines["history"].get_xdata()).max() < start and len(lines["history"].get_xdata()) == 20
        legend, plotted = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.x0 >= plotted.x1  # beside the axes, off the data
        assert legend.x1 <= fig.bbox.x1  # and inside the picture


def test_forecast_png_without_data_past_the_training_end_has_no_actuals(shops, drawn, capsys):
    root, _ = shops
    assert main(["plot", "forecast", str(root / "model"), "--data", str(root / "train.csv"), "--out",
                 str(root / "g.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["actual_rows"] == 0
    assert all(sorted(line.get_label() for line in ax.lines) == ["forecast", "history"] for ax in drawn[0].axes)


def test_error_by_horizon_png_has_a_title(tmp_path, monkeypatch, capsys):
    axes = []
    plot = rnr.cli.demo.plot_error_by_horizon
    monkeypatch.setattr(rnr.cli.demo, "plot_error_by_horizon", lambda *a, **kw: axes.append(plot(*a, **kw)) or axes[-1])
    assert main(["demo", "--shops", "3", "--days", "90", "--epochs", "1", "--windows", "1", "--out",
                 str(tmp_path)]) == 0
    assert (tmp_path / "error_by_horizon.png").stat().st_size > 0
    (ax,) = axes
    assert ax.get_title() == "forecast error by steps ahead" and ax.get_xlabel() == "steps ahead"
    other = plot_error_by_horizon(pd.DataFrame({"rnr": [1.0, 2.0]}, index=[1, 2]), title="MASE")
    assert other.get_title() == "MASE"
