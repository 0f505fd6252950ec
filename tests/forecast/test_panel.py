"""Panel: long frames in, contiguous float32 arrays with offsets out; every validation error pinned; splitting."""
import re

import numpy as np
import pandas as pd
import pytest

from rnr.forecast.panel import Panel, PanelColumns

NAN = np.nan


def frame(ids=("a", "a", "a", "b", "b"), start=("2020-01-01", "2020-01-03"), y=None, freq="D", **cols):
    """A long frame: each id's rows on consecutive steps of freq from its start."""
    ids = list(ids)
    names = list(dict.fromkeys(ids))
    ds = []
    for name, s in zip(names, start):
        ds += list(pd.date_range(s, periods=ids.count(name), freq=freq))
    df = pd.DataFrame({"unique_id": ids, "ds": ds, "y": np.arange(len(ids), dtype=float) if y is None else y})
    for k, v in cols.items():
        df[k] = v
    return df


def msg(text):
    return re.escape(text)


# reading --------------------------------------------------------------------------------------------------------
def test_arrays_offsets_and_dtypes():
    p = Panel.from_frame(frame())
    assert p.ids.tolist() == ["a", "b"] and len(p) == 2
    assert p.offsets.tolist() == [0, 3, 5] and p.offsets.dtype == np.int64
    assert p.lengths().tolist() == [3, 2] and p.series_index().tolist() == [0, 0, 0, 1, 1]
    assert p.y.dtype == np.float32 and p.y.shape == (5, 1) and p.y.flags.c_contiguous
    assert p.y[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert p.time.dtype == np.dtype("datetime64[ns]") and p.freq == "D"
    assert p.past.shape == (5, 0) and p.future.shape == (5, 0) and p.static.shape == (2, 0)
    assert p.observed is None and p.columns == PanelColumns()
    assert p.y[p.series(1), 0].tolist() == [3, 4] and p.series(-1) == p.series(1)
    assert repr(p) == "Panel(2 series, 5 rows, targets=['y'], freq='D')"


def test_ids_in_order_of_first_appearance_and_interleaved_rows_grouped():
    df = frame().iloc[[3, 0, 4, 1, 2]]  # rows of a and b interleaved, each id's rows in time order
    p = Panel.from_frame(df)
    assert p.ids.tolist() == ["b", "a"]
    assert p.y[:, 0].tolist() == [3, 4, 0, 1, 2]


def test_covariates_multiple_targets_and_statics():
    df = frame(y2=[10.0, 11, 12, 13, 14], temp=[1.0, 2, 3, 4, 5], price=[5.0, 5, 6, 7, 7],
               size=["big", "big", "big", "small", "small"], area=[3.5, 3.5, 3.5, 1.0, 1.0],
               region=pd.Categorical(["s", "s", "s", "n", "n"], categories=["s", "n", "w"]))
    p = Panel.from_frame(df, target=["y", "y2"], past="temp", future=["price"], static=["size", "area", "region"])
    assert p.y.shape == (5, 2) and p.y[:, 1].tolist() == [10, 11, 12, 13, 14]
    assert p.past[:, 0].tolist() == [1, 2, 3, 4, 5] and p.future[:, 0].tolist() == [5, 5, 6, 7, 7]
    # numeric statics first, then categorical codes: sorted categories, or a Categorical's own order
    assert p.columns.static == ("area", "size", "region")
    assert p.static.tolist() == [[3.5, 0, 0], [1.0, 1, 1]] and p.static.dtype == np.float32
    assert p.static_categories == {"size": ["big", "small"], "region": ["s", "n", "w"]}


def test_round_trip_to_frame():
    df = frame(y2=[10.0, NAN, 12, 13, 14], temp=[1.0, 2, 3, 4, 5], price=[5.0, 5, 6, 7, 7],
               area=[3.5, 3.5, 3.5, 1.0, 1.0], size=["big", "big", "big", "small", "small"])
    kw = dict(target=["y", "y2"], past=["temp"], future=["price"], static=["area", "size"], missing="mask")
    back = Panel.from_frame(df, **kw).to_frame()
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert Panel.from_frame(back, **kw).observed[:, 1].tolist() == [True, False, True, True, True]


def test_ragged_lengths_and_a_length_one_series_kept():
    df = frame(ids=["a"] * 4 + ["b"] + ["c"] * 2, start=("2020-01-01", "2020-01-09", "2020-01-02"))
    p = Panel.from_frame(df)
    assert p.lengths().tolist() == [4, 1, 2]
    assert p.y[p.series(1), 0].tolist() == [4.0]


def test_column_names_are_configurable():
    df = frame().rename(columns={"unique_id": "shop", "ds": "day", "y": "sales"})
    p = Panel.from_frame(df, id_col="shop", time_col="day", target="sales")
    assert p.columns == PanelColumns("shop", "day", ("sales",)) and p.ids.tolist() == ["a", "b"]
    assert list(p.to_frame().columns) == ["shop", "day", "sales"]


def test_integer_time_and_its_step():
    df = pd.DataFrame({"unique_id": [1, 1, 1, 2, 2], "ds": [0, 3, 6, 3, 6], "y": [1.0, 2, 3, 4, 5]})
    p = Panel.from_frame(df)
    assert p.time.dtype == np.int64 and p.freq == 3 and p.ids.tolist() == [1, 2]
    assert p.future_times(1, 2).tolist() == [9, 12]


def test_polars_like_frames_are_converted():
    class Polarsish:
        def to_pandas(self):
            return frame()

    assert Panel.from_frame(Polarsish()).y[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_from_frame_is_compact():
    S, T = 2000, 500
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(S), T),
                       "ds": np.tile(pd.date_range("2020-01-01", periods=T, freq="h").to_numpy(), S),
                       "y": np.random.default_rng(0).normal(size=S * T), "x": 1.0})
    p = Panel.from_frame(df, future=["x"])
    assert p.y.nbytes == S * T * 1 * 4 and p.future.nbytes == S * T * 4  # float32, no copies per window
    assert p.offsets.tolist() == list(range(0, S * T + 1, T)) and p.freq == "h"


# validation errors ----------------------------------------------------------------------------------------------
def test_missing_columns_list_the_available_ones():
    with pytest.raises(ValueError, match=msg("past column 'temp' is not in df; available: ['unique_id', 'ds', 'y']")):
        Panel.from_frame(frame(), past=["temp"])
    with pytest.raises(ValueError, match=msg("column 'y' is given twice (as target and past)")):
        Panel.from_frame(frame(), past=["y"])


def test_empty_frame():
    with pytest.raises(ValueError, match=msg("df is empty (0 rows)")):
        Panel.from_frame(frame().iloc[:0])


def test_non_numeric_columns_are_type_errors():
    with pytest.raises(TypeError, match=msg("future column 'day' must be numeric, got dtype")):
        Panel.from_frame(frame(day=list("mtwtf")), future=["day"])
    with pytest.raises(TypeError, match=msg("time column 'ds' must hold datetimes or integers, got dtype")):
        Panel.from_frame(frame().assign(ds=lambda d: d.ds.astype(str)))
    with pytest.raises(TypeError, match=msg("must hold time-zone-naive datetimes")):
        Panel.from_frame(frame().assign(ds=lambda d: d.ds.dt.tz_localize("UTC")))
    with pytest.raises(TypeError, match=msg("df must be a pandas or polars DataFrame, got dict")):
        Panel.from_frame({"y": [1]})


def test_missing_ids_and_times():
    with pytest.raises(ValueError, match=msg("time column 'ds' has missing values in rows 2; drop or fill them")):
        Panel.from_frame(frame().assign(ds=lambda d: d.ds.where(d.index != 2)))
    with pytest.raises(ValueError, match=msg("id column 'unique_id' has 1 missing values; every row needs an id")):
        Panel.from_frame(frame().assign(unique_id=["a", "a", "a", "b", None]))


def test_duplicate_id_time_pairs():
    df = pd.concat([frame(), frame().iloc[[4]]])
    with pytest.raises(ValueError, match=msg("timestamps in 'ds' are duplicated within an id: 'b' at 2020-01-04")):
        Panel.from_frame(df)


def test_unsorted_times_error_unless_sort():
    df = frame().iloc[[1, 0, 2, 4, 3]]
    with pytest.raises(ValueError, match=msg("timestamps in 'ds' are not increasing within each id: 'a' at "
                                             "2020-01-01, 'b' at 2020-01-03; pass sort=True")):
        Panel.from_frame(df)
    p = Panel.from_frame(df, sort=True)
    assert p.ids.tolist() == ["a", "b"] and p.y[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_gaps_error_naming_ids_and_the_first_gap():
    df = frame().drop(index=1)
    with pytest.raises(ValueError, match=msg("series must have no gaps in 'ds' (freq 'D'), but 'a' jumps from "
                                             "2020-01-01 to 2020-01-03 (1 missing); pass fill_gaps=True")):
        Panel.from_frame(df, freq="D")


def test_fill_gaps_inserts_nan_targets_the_policy_handles():
    df = frame(ids=["a"] * 5, y=[1.0, 2, 3, 4, 5], temp=[1.0, 2, 3, 4, 5], price=[10.0, 20, 30, 40, 50])
    df = df.drop(index=[1, 2])  # 2020-01-02 and 2020-01-03 are missing
    kw = dict(past=["temp"], future=["price"], fill_gaps=True, freq="D")
    p = Panel.from_frame(df, missing="mask", **kw)
    np.testing.assert_array_equal(p.time, pd.date_range("2020-01-01", periods=5).to_numpy())
    assert p.y[:, 0].tolist() == [1, 0, 0, 4, 5] and p.observed[:, 0].tolist() == [1, 0, 0, 1, 1]
    assert p.past[:, 0].tolist() == [1, 1, 1, 4, 5] and p.future[:, 0].tolist() == [10, 10, 10, 40, 50]
    p = Panel.from_frame(df, missing="interpolate", **kw)
    assert p.y[:, 0].tolist() == [1, 2, 3, 4, 5] and p.future[:, 0].tolist() == [10, 20, 30, 40, 50]
    with pytest.raises(ValueError, match=msg("fill_gaps=True inserts NaN targets, which missing='error' rejects")):
        Panel.from_frame(df, fill_gaps=True)


def test_fill_gaps_on_a_monthly_grid():
    df = pd.DataFrame({"unique_id": "m", "ds": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-05-01"]),
                       "y": [1.0, 2.0, 5.0]})
    p = Panel.from_frame(df, freq="MS", missing="interpolate", fill_gaps=True)
    assert len(p.time) == 5 and p.y[:, 0].tolist() == pytest.approx([1, 2, 2 + 29 / 90 * 3, 2 + 60 / 90 * 3, 5])


def test_inconsistent_frequencies_across_series():
    df = pd.concat([frame(ids="aaaa"), frame(ids="bbbb", start=("2020-01-05",), freq="W")])
    with pytest.raises(ValueError, match=msg("series must share one frequency in 'ds' (the panel's is 'D', "
                                             "inferred), but 'b' is 'W-SUN'; resample them")):
        Panel.from_frame(df)


def test_times_off_the_grid():
    df = frame(ids="aaa").assign(ds=pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03 12:00"], format="mixed"))
    with pytest.raises(ValueError, match=msg("timestamps in 'ds' must lie on a regular 'D' grid, but 'a' steps "
                                             "from 2020-01-02 to 2020-01-03 12:00:00")):
        Panel.from_frame(df, freq="D")


def test_a_single_step_off_a_calendar_grid():
    df = pd.DataFrame({"unique_id": ["a", "b"], "ds": pd.to_datetime(["2020-01-01", "2020-01-15"]), "y": 1.0})
    with pytest.raises(ValueError, match=msg("timestamps in 'ds' must lie on a regular 'MS' grid, but 'b' at "
                                             "2020-01-15 starts off it")):
        Panel.from_frame(df, freq="MS")


def test_bad_freq_arguments():
    with pytest.raises(ValueError, match=msg("freq must be a pandas offset alias such as 'D', 'h' or 'MS', got 'xyz'")):
        Panel.from_frame(frame(), freq="xyz")
    with pytest.raises(TypeError, match=msg("freq must be a pandas offset alias such as 'D', 'h' or 'MS' for "
                                            "datetime times, got int 1")):
        Panel.from_frame(frame(), freq=1)
    with pytest.raises(ValueError, match=msg("freq cannot be inferred: every series has one timestamp")):
        Panel.from_frame(frame(ids="ab"))
    assert Panel.from_frame(frame(ids="ab"), freq="D").freq == "D"


def test_static_varying_within_an_id():
    with pytest.raises(ValueError, match=msg("static column 'size' must hold one value per id, but it varies within "
                                             "1 ids: 'a' has 'big' and 'small'; pass it as past or future")):
        Panel.from_frame(frame(size=["big", "small", "big", "x", "x"]), static=["size"])
    with pytest.raises(ValueError, match=msg("static column 'area' must be finite, got NaN or inf for ids 'b'")):
        Panel.from_frame(frame(area=[1.0, 1, 1, NAN, NAN]), static=["area"])


def test_future_covariates_must_be_complete_and_finite():
    with pytest.raises(ValueError, match=msg("future column 'price' must be complete (future covariates are known "
                                             "ahead), got NaN: 'b' at 2020-01-04")):
        Panel.from_frame(frame(price=[1.0, 2, 3, 4, NAN]), future=["price"], missing="ffill")
    with pytest.raises(ValueError, match=msg("future column 'price' must not be inf (or beyond float32's range): "
                                             "'a' at 2020-01-01")):
        Panel.from_frame(frame(price=[np.inf, 2, 3, 4, 5]), future=["price"])


def test_inf_targets_are_errors_under_every_policy():
    for missing in ("error", "mask", "ffill", "interpolate"):
        with pytest.raises(ValueError, match=msg("target column 'y' must not be inf (or beyond float32's range): "
                                                 "'a' at 2020-01-02")):
            Panel.from_frame(frame(y=[1.0, -np.inf, 3, 4, 5]), missing=missing)


def test_errors_show_five_examples_and_a_count():
    df = frame(ids=["a"] * 8, y=[NAN] * 7 + [1.0])
    with pytest.raises(ValueError, match=msg("target column 'y' has missing values (NaN): 'a' at 2020-01-01, 'a' at "
                                             "2020-01-02, 'a' at 2020-01-03, 'a' at 2020-01-04, 'a' at 2020-01-05 "
                                             "(7 in all); pass missing='mask'")):
        Panel.from_frame(df)
    with pytest.raises(ValueError, match=msg("missing must be one of ['error', 'mask', 'ffill', 'interpolate'], got "
                                             "'drop'")):
        Panel.from_frame(df, missing="drop")


# missing values -------------------------------------------------------------------------------------------------
Y = [NAN, 1.0, NAN, NAN, 4.0, NAN, NAN, 6.0, NAN]  # a: leading, inner and trailing NaN; b: NaN, 6, NaN


def _policy(missing, past=None):
    df = frame(ids=["a"] * 6 + ["b"] * 3, y=Y, **({} if past is None else {"temp": past}))
    return Panel.from_frame(df, missing=missing, past=[] if past is None else ["temp"])


def test_missing_mask_stores_zero_and_clears_observed():
    p = _policy("mask")
    assert p.y[:, 0].tolist() == [0, 1, 0, 0, 4, 0, 0, 6, 0]
    assert p.observed[:, 0].tolist() == [False, True, False, False, True, False, False, True, False]


def test_missing_ffill_backfills_leading_values():
    p = _policy("ffill")
    assert p.y[:, 0].tolist() == [1, 1, 1, 1, 4, 4, 6, 6, 6] and p.observed is None


def test_missing_interpolate_is_linear_in_time_with_nearest_ends():
    p = _policy("interpolate")
    assert p.y[:, 0].tolist() == [1, 1, 2, 3, 4, 4, 6, 6, 6]


def test_past_covariates_follow_the_policy():
    past = [NAN, 1.0, NAN, 3.0, 4.0, 5.0, 1.0, NAN, 3.0]
    assert _policy("interpolate", past).past[:, 0].tolist() == [1, 1, 2, 3, 4, 5, 1, 2, 3]
    assert _policy("mask", past).past[:, 0].tolist() == [1, 1, 1, 3, 4, 5, 1, 1, 3]  # inputs have no mask
    with pytest.raises(ValueError, match=msg("past column 'temp' has missing values (NaN): 'a' at 2020-01-01")):
        Panel.from_frame(frame(temp=[NAN, 1, 2, 3, 4]), past=["temp"])


def test_a_series_without_any_value_cannot_be_filled():
    df = frame(y=[1.0, 2, 3, NAN, NAN])
    with pytest.raises(ValueError, match=msg("target column 'y' has no value at all in some series to fill from: "
                                             "'b' at 2020-01-03, 'b' at 2020-01-04; drop those series")):
        Panel.from_frame(df, missing="ffill")
    assert Panel.from_frame(df, missing="mask").observed[:, 0].tolist() == [True] * 3 + [False] * 2


# splitting and extending ------------------------------------------------------------------------------------------
def test_split_last():
    df = frame(ids=["a"] * 4 + ["b"] * 3, temp=np.arange(7.0), size=list("xxxxyyy"))
    train, test = Panel.from_frame(df, past=["temp"], static=["size"]).split_last(2)
    assert train.lengths().tolist() == [2, 1] and test.lengths().tolist() == [2, 2]
    assert train.y[:, 0].tolist() == [0, 1, 4] and test.y[:, 0].tolist() == [2, 3, 5, 6]
    assert test.past[:, 0].tolist() == [2, 3, 5, 6] and test.static.tolist() == [[0], [1]]
    assert test.time[0] == np.datetime64("2020-01-03")


def test_split_last_short_series_error_or_drop():
    p = Panel.from_frame(frame(ids=["a"] * 4 + ["b"] * 2 + ["c"], start=("2020-01-01",) * 3))
    with pytest.raises(ValueError, match=msg("split_last(h=2) needs every series longer than h=2 steps: 'b' has 2, "
                                             "'c' has 1; pass drop_short=True")):
        p.split_last(2)
    with pytest.warns(UserWarning, match=msg("split_last(h=2) drops 2 series of <= 2 steps: 'b' has 2, 'c' has 1")):
        train, test = p.split_last(2, drop_short=True)
    assert train.ids.tolist() == test.ids.tolist() == ["a"]


def test_masked_values_survive_splitting():
    p = _policy("mask")
    train, test = p.split_last(1)
    assert train.observed[:, 0].tolist() == [False, True, False, False, True, False, True]
    assert test.observed[:, 0].tolist() == [False, False]
    assert train.tail(1).observed is None  # all of it observed: no mask kept


def test_select_tail_and_head_until():
    p = Panel.from_frame(frame(ids=["a"] * 4 + ["b"] * 2, start=("2020-01-01", "2020-01-03")))
    assert p.select(["b", "a"]).y[:, 0].tolist() == [4, 5, 0, 1, 2, 3]
    assert p.tail(1).y[:, 0].tolist() == [3, 5] and p.tail(3).lengths().tolist() == [3, 2]
    with pytest.warns(UserWarning, match="head_until drops 1 series that start after"):
        assert p.head_until("2020-01-02").y[:, 0].tolist() == [0, 1]
    assert p.head_until(pd.Timestamp("2020-01-03")).y[:, 0].tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match=msg("ids must be ids of the panel, got unknown: 'z'; the panel has 'a', 'b'")):
        p.select(["z"])


def test_future_times_daily_monthly_and_integer():
    d = Panel.from_frame(frame())
    np.testing.assert_array_equal(d.future_times(0, 2), np.array(["2020-01-04", "2020-01-05"], "datetime64[ns]"))
    m = Panel.from_frame(frame(ids="aaa", start=("2021-11-01",), freq="MS"))
    assert m.freq == "MS"
    months = np.array(["2022-02-01", "2022-03-01", "2022-04-01"], "datetime64[ns]")
    np.testing.assert_array_equal(m.future_times(0, 3), months)
    i = Panel.from_frame(pd.DataFrame({"unique_id": "x", "ds": [7], "y": [1.0]}), freq=2)
    assert i.future_times(0, 3).tolist() == [9, 11, 13]
    with pytest.raises(ValueError, match=msg("h must be >= 1, got 0")):
        d.future_times(0, 0)
    with pytest.raises(ValueError, match=msg("i must be in [-2, 2) for a panel of 2 series, got 2")):
        d.future_times(2, 1)


def test_append_continues_each_series_with_its_policy():
    p = Panel.from_frame(frame(temp=[1.0, 2, 3, 4, 5]), past=["temp"], missing="ffill")
    new = pd.DataFrame({"unique_id": ["b", "a", "b"], "ds": pd.to_datetime(["2020-01-05", "2020-01-04", "2020-01-06"]),
                        "y": [NAN, 9.0, 7.0], "temp": [6.0, 7, 8]})
    q = p.append(new)
    assert q.lengths().tolist() == [4, 4]
    assert q.y[:, 0].tolist() == [0, 1, 2, 9, 3, 4, 4, 7]  # b's NaN takes its last old value
    assert q.past[:, 0].tolist() == [1, 2, 3, 7, 4, 5, 6, 8]
    assert p.lengths().tolist() == [3, 2]  # the old panel is unchanged
    with pytest.raises(ValueError, match=msg("append needs each series' new rows after its end: 'a' ends at "
                                             "2020-01-03 but df starts at 2020-01-03 (1 in all)")):
        p.append(new.assign(ds=pd.to_datetime(["2020-01-05", "2020-01-03", "2020-01-06"])))
    with pytest.raises(ValueError, match=msg("append adds rows to existing series, but df has ids not in the panel: "
                                             "'z'")):
        p.append(new.assign(unique_id=["b", "z", "b"]))
    with pytest.raises(ValueError, match=msg("series must have no gaps in 'ds' (freq 'D'), but 'a' jumps from "
                                             "2020-01-03 to 2020-01-05 (1 missing)")):
        p.append(new.iloc[[1]].assign(ds=pd.Timestamp("2020-01-05")))
    gappy = new.iloc[[2, 1]].assign(ds=pd.to_datetime(["2020-01-06", "2020-01-05"]), y=[7.0, NAN])
    q = p.append(gappy, fill_gaps=True, sort=True)  # a gets 01-04 (NaN, inserted) and 01-05 (NaN): ffilled
    assert q.lengths().tolist() == [5, 4] and q.y[:, 0].tolist() == [0, 1, 2, 2, 2, 3, 4, 4, 7]
