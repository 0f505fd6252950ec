"""Draw the README's pictures into docs/: python docs/figures.py (about a minute on a CPU).

unrolled.png    the Elman network folded and unrolled over four steps, with its shared weights
topologies.png  the five input/output arrangements
memory.gif      a character model's hidden state filling as it reads a line, each step under its character
                (rnr.sequences.hidden.animate)
heatmap.png     the same state as units x steps (rnr.sequences.hidden.plot_heatmap)
forecast.png    forecasts with an 80% interval for two shops of the generated ice-cream panel
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

import rnr  # noqa: E402
from rnr.sequences.hidden import animate, hidden_states, plot_heatmap  # noqa: E402

DOCS = Path(__file__).resolve().parent
COLOURS = {"x": "#f4a6a6", "h": "#a6d8a6", "y": "#a6c8f4"}


def box(ax, x, y, kind, label=None, w=0.7, h=0.55):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=COLOURS[kind],
                                ec="0.25", lw=1.2))
    if label:
        ax.text(x, y, label, ha="center", va="center", fontsize=11)


def arrow(ax, a, b, label=None, rad=0.0, offset=(0.12, 0)):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="0.25",
                                 connectionstyle=f"arc3,rad={rad}"))
    if label:
        ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], label, fontsize=9, color="0.2")


def unrolled(path):
    fig, ax = plt.subplots(figsize=(10, 3.6))
    box(ax, 0, 0, "x", "$x_t$")
    box(ax, 0, 1.3, "h", "$h_t$")
    box(ax, 0, 2.6, "y", "$y_t$")
    arrow(ax, (0, 0.3), (0, 1.0), "$W_x$")
    arrow(ax, (0, 1.6), (0, 2.3), "$W_o$")
    arrow(ax, (0.36, 1.45), (0.36, 1.15), None, rad=-2.2)
    ax.text(0.75, 1.3, "$W_h$", fontsize=9, color="0.2", va="center")
    ax.text(1.1, 1.3, "=", fontsize=22, va="center", ha="center")
    for t in range(4):
        cx = 2.4 + 1.6 * t
        box(ax, cx, 0, "x", f"$x_{t + 1}$")
        box(ax, cx, 1.3, "h", f"$h_{t + 1}$")
        box(ax, cx, 2.6, "y", f"$y_{t + 1}$")
        arrow(ax, (cx, 0.3), (cx, 1.0), "$W_x$")
        arrow(ax, (cx, 1.6), (cx, 2.3), "$W_o$")
        arrow(ax, (cx - (1.25 if t else 0.85), 1.3), (cx - 0.37, 1.3), "$W_h$" if t else "$h_0$", offset=(-0.1, 0.12))
    ax.text(7.2, -0.75, "the same $W_x, W_h, W_o, b_h, b_o$ at every step", ha="center", fontsize=10)
    ax.set_xlim(-0.6, 8.0)
    ax.set_ylim(-1.0, 3.1)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def topologies(path):
    layouts = {  # per column: (input?, output?)
        "one to one": [(1, 1)],
        "one to many": [(1, 1), (0, 1), (0, 1)],
        "many to one": [(1, 0), (1, 0), (1, 1)],
        "many to many\n(delayed: encoder-decoder)": [(1, 0), (1, 0), (0, 1), (0, 1)],
        "many to many\n(synchronous)": [(1, 1), (1, 1), (1, 1)],
    }
    fig, axes = plt.subplots(1, 5, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 2.4, 2.4, 3.2, 2.4]})
    for ax, (title, cols) in zip(axes, layouts.items()):
        for i, (has_in, has_out) in enumerate(cols):
            cx = i * 0.9
            box(ax, cx, 1, "h", w=0.6, h=0.45)
            if has_in:
                box(ax, cx, 0, "x", w=0.6, h=0.45)
                arrow(ax, (cx, 0.25), (cx, 0.75))
            if has_out:
                box(ax, cx, 2, "y", w=0.6, h=0.45)
                arrow(ax, (cx, 1.25), (cx, 1.75))
            if i:
                arrow(ax, (cx - 0.6, 1), (cx - 0.3, 1))
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.5, 0.9 * max(len(cols) - 1, 0) + 0.5)
        ax.set_ylim(-0.4, 2.4)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.text(0.5, 0.02, "red: inputs   green: hidden state   blue: outputs", ha="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def memory(gif, heatmap):
    text = 'He said "to be or not to be" (twice), then left.\n'
    lm = rnr.CharLM(hidden_size=24, embedding_dim=8, seq_len=48, batch_size=8, epochs=30, progress=False)
    lm.fit(text * 40)
    line = 'He said "not to be" (twice).'
    states = hidden_states(lm, line)
    animate(states, gif, labels=list(line), dpi=110, title="a character model's hidden state as it reads a line")
    ax = plot_heatmap(states, labels=list(line))
    ax.figure.savefig(heatmap, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)


def forecast(path):
    from rnr.forecast.plots import save_forecast_plots

    df = rnr.data.tasks.ice_cream(n_shops=6, days=240)
    future = df.groupby("unique_id").tail(14)
    history = df.drop(future.index)
    f = rnr.RNNForecaster(horizon=14, season=7, quantiles=(0.1, 0.9), epochs=30, hidden_size=32, progress=False)
    f.fit(history, future=["temperature"], static=["size"])
    save_forecast_plots(path, history, f.predict(future_df=future), ["shop_00", "shop_03"], actual=future, last=60)


if __name__ == "__main__":
    unrolled(DOCS / "unrolled.png")
    topologies(DOCS / "topologies.png")
    memory(DOCS / "memory.gif", DOCS / "heatmap.png")
    forecast(DOCS / "forecast.png")
    print("wrote", ", ".join(p.name for p in sorted(DOCS.glob("*.png")) + sorted(DOCS.glob("*.gif"))))
