"""Panel.from_frame reads a float32 column of a frame without copying it, and never writes to the frame."""
import numpy as np
import pandas as pd
import pytest

from rnr.forecast.panel import Panel


def frame(nan_y=False, nan_past=False):
    n = 12
    df = pd.DataFrame({"unique_id": np.repeat(np.array([7, 3, 5], np.int32), 4),
                       "ds": np.tile(pd.date_range("2024-01-01", periods=4, freq="D").to_numpy(), 3),
                       "y": np.arange(n, dtype=np.float32) + 1, "visits": np.linspace(0, 1, n, dtype=np.float32),
                       "price": np.ones(n, np.float32), "holiday": np.zeros(n)})
    if nan_y:
        df.loc[[1, 6], "y"] = np.nan
    if nan_past:
        df.loc[[2, 9], "visits"] = np.nan
    return df


def test_a_float32_column_is_read_in_place_and_kept_read_only():
    df = frame()
    p = Panel.from_frame(df, past=["visits"], future=["price", "holiday"])
    assert np.shares_memory(p.y, df["y"].to_numpy()) and np.shares_memory(p.past, df["visits"].to_numpy())
    assert not p.y.flags.writeable and not p.past.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        p.y[0, 0] = 1.0
    assert p.y.shape == (12, 1) and p.future.shape == (12, 2) and p.ids.tolist() == [7, 3, 5]


@pytest.mark.parametrize("missing", ["mask", "ffill", "interpolate"])
def test_missing_values_are_filled_in_a_copy_and_the_frame_is_left_as_it_was(missing):
    df = frame(nan_y=True, nan_past=True)
    before = df.copy()
    p = Panel.from_frame(df, past=["visits"], future=["price", "holiday"], missing=missing)
    pd.testing.assert_frame_equal(df, before)
    assert np.isfinite(p.y).all() and np.isfinite(p.past).all()
    assert (p.observed is not None) == (missing == "mask")
    # the same panel as from a frame whose columns are float64 (always copied)
    q = Panel.from_frame(df.astype({"y": "float64", "visits": "float64"}), past=["visits"],
                         future=["price", "holiday"], missing=missing)
    for a, b in ((p.y, q.y), (p.past, q.past), (p.future, q.future), (p.offsets, q.offsets)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ids", [[7, 7, 3, 3, 3, 5], [7, 7, 3, 3, 7, 5]])  # grouped; one id in two runs
def test_integer_ids_read_without_codes_give_the_panel_of_factorized_ids(ids):
    df = pd.DataFrame({"unique_id": np.array(ids, np.int32), "ds": [0, 1, 0, 1, 2, 0], "y": np.arange(6.0)})
    p = Panel.from_frame(df, freq=1)
    q = Panel.from_frame(df.astype({"unique_id": str}), freq=1)  # strings: always through pd.factorize
    assert p.ids.dtype == np.int32 and p.ids.tolist() == [int(i) for i in q.ids]
    np.testing.assert_array_equal(p.offsets, q.offsets)
    np.testing.assert_array_equal(p.time, q.time)
    np.testing.assert_array_equal(p.y, q.y)
