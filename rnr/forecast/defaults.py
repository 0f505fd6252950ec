"""What the forecaster chooses from the data when its arguments leave the choice to it (``"auto"``, ``None``).

- The frequency: the panel's (``Panel.freq``: read from the timestamps, a pandas offset alias such as ``"h"``, or
  the step of an integer time axis).
- The seasonal periods, from the frequency: a day and a week of steps for data measured within a day (hourly: 24
  and 168; every 30 minutes: 48 and 336), a week for daily data (7), 5 for business days, 52 for weekly, 12 for
  monthly and 4 for quarterly data; none for yearly data or an integer time axis. A period is kept only where the
  series are long enough to show it: a median length of at least two full periods.
- The base the network forecasts relative to, where there is a season: where every training value is positive
  (smoothing is multiplicative) and the strategy is direct, two networks whose forecasts are averaged (``bases``),
  one relative to per-series exponential smoothing learned with it (``rnr.forecast.smoothing``, the hybrid of
  ES-RNN, Smyl 2020) and one relative to the seasonal naive forecast (the value one shortest period back);
  otherwise the seasonal naive forecast alone. None without a season. Neither base wins everywhere (M4 Hourly
  OWA: smoothing 0.523, seasonal naive 0.606, the two averaged 0.505; AirPassengers MASE: 0.83, 0.59, ...).
- The scaler: "meanabs" with smoothing (a scale alone keeps values positive), "standard" otherwise.
- How long to train: at least ``MIN_EPOCHS`` passes over the data and at least ``MIN_UPDATES`` optimizer updates,
  so a single short series (one update a pass) trains as long as a large panel does.

``choose`` returns only the settings it chose; the estimator keeps its arguments as given (``"auto"``) and the
choices in ``chosen_``, shown by its ``repr``, saved with it, and printed by ``rnr fit forecast``.
"""
import math
import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

MIN_EPOCHS = 20      # passes over every series, at least
MIN_UPDATES = 300    # optimizer updates, at least (a pass over one short series is one update)
# seasonal periods of offsets that are not fixed spans of time (their rule code, without anchors such as "-SUN")
CALENDAR_SEASONS = {"D": (7,), "B": (5,), "W": (52,), "M": (12,), "MS": (12,), "ME": (12,), "SM": (24,), "SMS": (24,),
                    "Q": (4,), "QS": (4,), "QE": (4,), "BQ": (4,), "BQS": (4,), "BQE": (4,), "BM": (12,),
                    "BMS": (12,), "BME": (12,)}


def seasonal_periods(freq) -> tuple[int, ...]:
    """The candidate seasonal periods of data on ``freq`` (a pandas offset alias; an int step gives none)."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return ()
    offset = to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):  # a fixed span: the steps in a day and in a week
        step = pd.Timedelta(offset).total_seconds()
        spans = (86_400 / step, 7 * 86_400 / step)
        return tuple(int(m) for m in spans if m >= 2 and m == int(m))
    periods = CALENDAR_SEASONS.get(offset.rule_code.split("-")[0], ())
    n = offset.n
    return tuple(m // n for m in periods if m % n == 0 and m // n >= 2)


def choose(params: dict, freq, lengths: np.ndarray, positive: bool = False, nonnegative: bool = False) -> dict:
    """The settings left to the data: ``season``, ``extra_seasons``, ``relative_to`` and ``scaler`` where they are
    "auto", ``nonnegative`` where it is None. ``positive``: every observed training target is > 0 (what
    multiplicative smoothing needs); ``nonnegative``: every one is >= 0."""
    chosen = {"freq": int(freq) if isinstance(freq, (int, np.integer)) else freq}
    if params["season"] == "auto":
        median = float(np.median(lengths)) if len(lengths) else 0.0
        periods = [m for m in seasonal_periods(freq) if median >= 2 * m]
        chosen["season"] = periods[0] if periods else None
        if not params["extra_seasons"]:
            chosen["extra_seasons"] = tuple(periods[1:])
    if params["relative_to"] == "auto":
        season = chosen.get("season", params["season"])
        smooths = (positive and params.get("strategy", "direct") == "direct" and not params.get("base_input")
                   and params.get("scaler", "auto") in ("auto", "meanabs", None))
        chosen["relative_to"] = ("smoothing" if smooths else "seasonal_naive") if season else None
        if season and smooths:  # and a second network relative to the seasonal naive, the two averaged
            chosen["bases"] = ("smoothing", "seasonal_naive")
    if params.get("scaler") == "auto":  # smoothing divides by a level: a scale alone keeps values positive
        relative = chosen.get("relative_to", params["relative_to"])
        chosen["scaler"] = "meanabs" if relative == "smoothing" else "standard"
    if params.get("nonnegative", False) is None and nonnegative:  # shown only where it clips
        chosen["nonnegative"] = True
    return chosen


def season_of(df: pd.DataFrame, id_col: str, time_col: str, freq=None) -> int | None:
    """The seasonal period "auto" would choose for the long frame ``df``: its shortest kept period, or None."""
    lengths = df.groupby(id_col, sort=False).size()
    if freq is None and len(lengths) and pd.api.types.is_datetime64_any_dtype(df[time_col]):
        longest = df.loc[df[id_col] == lengths.idxmax(), time_col].sort_values()
        with warnings.catch_warnings():  # pandas 3 announces that infer_freq will return an offset
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(longest) if len(longest) >= 3 else None
    chosen = choose({"season": "auto", "extra_seasons": (), "relative_to": None}, freq, lengths.to_numpy())
    return chosen["season"]


def epochs_for(updates_per_epoch: int) -> int:
    """Passes over the data for ``epochs=None``: at least MIN_EPOCHS, and at least MIN_UPDATES updates."""
    return max(MIN_EPOCHS, math.ceil(MIN_UPDATES / max(updates_per_epoch, 1)))


def describe(chosen: dict) -> str:
    """The choices in words, for the command's summary line: ``freq 'h'; seasons 24, 168; ...``."""
    parts = []
    if "freq" in chosen:
        parts.append(f"freq {chosen['freq']!r}")
    if "season" in chosen:
        periods = [m for m in (chosen["season"], *chosen.get("extra_seasons", ())) if m]
        parts.append(f"seasons {', '.join(map(str, periods))}" if periods else "no season")
    if "relative_to" in chosen:
        parts.append(f"relative to {chosen['relative_to'] or 'nothing'}")
    if "bases" in chosen:
        parts.append(f"averaged with a network relative to {chosen['bases'][1]}")
    if "scaler" in chosen:
        parts.append(f"scaler {chosen['scaler']}")
    if "epochs" in chosen:
        parts.append(f"{chosen['epochs']} epochs ({chosen['updates']} updates)")
    return "; ".join(parts)
