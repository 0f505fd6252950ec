"""Plots of forecasts and their errors. Each function takes ``ax=None`` and returns the axes it drew on.

matplotlib is imported inside the functions, so ``import rnr`` does not need it.
"""
import numpy as np
import pandas as pd


def _axes(ax, n: int = 1, figsize=(10, 3)):
    import matplotlib.pyplot as plt  # heavy: only to draw (the Agg backend where there is no display)

    if ax is not None:
        return ax
    _, axes = plt.subplots(n, 1, figsize=(figsize[0], figsize[1] * n), squeeze=False)
    return axes[:, 0] if n > 1 else axes[0, 0]


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, uid, ax=None, id_col: str = "unique_id",
                  time_col: str = "ds", target: str = "y", last: int | None = None, actual: pd.DataFrame | None = None):
    """One series: its history (the ``last`` steps), the forecast ``y_hat`` and the widest quantile interval.

    ``actual`` (optional) holds what really happened over the forecast window, drawn dotted for comparison
    (``split_at_forecast`` takes it from a frame that runs past the training data). The y axis is named after
    ``target``, the x axis after ``time_col``; the legend sits to the right of the axes, off the data.
    """
    own = ax is None
    ax = _axes(ax)
    h = history[history[id_col] == uid].sort_values(time_col)
    if last:
        h = h.tail(last)
    f = forecast[forecast[id_col] == uid].sort_values(time_col)
    if h.empty and f.empty:
        raise ValueError(f"uid {uid!r} is in neither history nor forecast; pick one of "
                         f"{list(pd.unique(history[id_col]))[:5]}")
    ax.plot(h[time_col], h[target], color="0.2", lw=1, label="history")
    if actual is not None:
        a = actual[actual[id_col] == uid].sort_values(time_col)
        if not a.empty:
            ax.plot(a[time_col], a[target], color="0.2", lw=1.2, ls=":", label="actual")
    ax.plot(f[time_col], f["y_hat"], color="C0", lw=1.5, label="forecast")
    q = sorted(c for c in f.columns if c.startswith("y_hat_q"))
    if len(q) >= 2:
        ax.fill_between(f[time_col], f[q[0]], f[q[-1]], color="C0", alpha=0.2,
                        label=f"{q[0][7:]}-{q[-1][7:]}% interval")
    ax.set_title(str(uid))
    ax.set_xlabel(time_col)
    ax.set_ylabel(target)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8, frameon=False)
    if own:
        ax.figure.tight_layout()  # room for the legend beside the axes
    return ax


def split_at_forecast(data: pd.DataFrame, forecast: pd.DataFrame, id_col: str = "unique_id", time_col: str = "ds"):
    """``data`` cut where each series' forecast starts: (history, actual).

    history holds the rows before the series' first forecast time (all rows of a series with no forecast), actual
    the rows at the forecast times (from the first to the last), None where there are none; rows past the forecast
    window are left out.
    """
    times = forecast.groupby(id_col)[time_col]
    start, end = data[id_col].map(times.min()), data[id_col].map(times.max())
    t = data[time_col]
    before = start.isna() | (t < start)
    within = start.notna() & (t >= start) & (t <= end)
    actual = data[within.to_numpy(bool)]
    return data[before.to_numpy(bool)], (actual if len(actual) else None)


def plot_error_by_horizon(errors: pd.DataFrame, ax=None, ylabel: str = "mean absolute error",
                          title: str = "forecast error by steps ahead"):
    """Lines of error against steps ahead, one per model: ``errors`` indexed by step, a column per model."""
    ax = _axes(ax, figsize=(7, 4))
    for i, model in enumerate(errors.columns):
        ax.plot(errors.index, errors[model], marker="o", ms=3, lw=2 if model == "rnr" else 1, label=model,
                color=f"C{i}")
    ax.set_xlabel("steps ahead")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def save_forecast_plots(path, history, forecast, uids, actual=None, last: int | None = None, **kw):
    """A PNG with one panel per id in ``uids`` (``plot_forecast`` each); returns the figure, closed."""
    axes = np.atleast_1d(_axes(None, n=len(uids)))
    for ax, uid in zip(axes, uids):
        plot_forecast(history, forecast, uid, ax=ax, actual=actual, last=last, **kw)
    fig = axes[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt  # heavy: loaded only to draw

    plt.close(fig)
    return fig
