"""Data in and out as users have it (issue 20, items 1-7): one series without an id column, several id columns,
the user's column names in the outputs, dates as they come, thousands separators, covariates read by evaluate,
a backtest that names series without a MASE scale, a fair lagged baseline and non-negative forecasts."""
import numpy as np
import pandas as pd
import pytest

from rnr.__main__ import main
from rnr.data.datasets import data_dir

FAST = ["--set", "model.epochs=1", "--set", "model.hidden_size=4", "--set", "model.head_size=4", "--quiet"]


def _air(tmp_path, fmt=None, thousands=False):
    """AirPassengers as `Month,#Passengers` (from ../shared/data), or a monthly stand-in where it is absent."""
    root = data_dir()
    path = None if root is None else root / "airpassengers" / "AirPassengers_darts.csv"
    if path is not None and path.is_file():
        df = pd.read_csv(path)
    else:
        t = np.arange(144)
        df = pd.DataFrame({"Month": pd.date_range("1949-01-01", periods=144, freq="MS").strftime("%Y-%m"),
                           "#Passengers": (120 + t * 3 + 30 * np.sin(2 * np.pi * t / 12)).round()})
    if fmt:
        df["Month"] = pd.to_datetime(df["Month"]).dt.strftime(fmt)
    if thousands:
        df["#Passengers"] = (df["#Passengers"] * 10).map(lambda v: f"{v:,.0f}")
    out = tmp_path / "air.csv"
    df.to_csv(out, index=False)
    return out


def _fit(path, out, *extra):
    return main(["fit", "forecast", "--data", str(path), "--time", "Month", "--target", "#Passengers", "--horizon",
                 "12", "--out", str(out), "--force", *FAST, *extra])


def test_a_single_series_needs_no_id_and_keeps_its_own_column_names(tmp_path, capsys):
    air = _air(tmp_path)
    assert main(["fit", "forecast", "--data", str(air), "--time", "Month", "--target", "#Passengers", "--horizon",
                 "12", "--out", str(tmp_path / "m"), "--set", "model.epochs=1", "--set", "model.hidden_size=4"]) == 0
    line = capsys.readouterr().out
    assert "(1 series, 144 rows, 1949-01-01 to 1960-12-01, frequency MS)" in line  # the date range and frequency
    assert main(["predict", str(tmp_path / "m"), "--out", str(tmp_path / "fc.csv")]) == 0
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert list(fc.columns) == ["Month", "y_hat"] and len(fc) == 12 and fc["Month"].iloc[0] == "1961-01-01"
    actual = pd.read_csv(air).iloc[-12:]
    actual.to_csv(tmp_path / "test.csv", index=False)
    assert _fit(air, tmp_path / "m2", "--id", "") == 0  # --id '' says the same
    pd.read_csv(air).iloc[:-12].to_csv(tmp_path / "train.csv", index=False)
    assert _fit(tmp_path / "train.csv", tmp_path / "m4") == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m4"), "--data", str(tmp_path / "test.csv")]) == 0  # another file, one series
    assert "12 forecasts of 1 series" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["fit", "forecast", "--data", str(air), "--id", "airline", "--time", "Month", "--horizon", "12",
                 "--out", str(tmp_path / "m3"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--id column 'airline' is not in" in err and "--id agency,sku" in err and "--id ''" in err


def _sales(tmp_path, periods=30):
    rng = np.random.default_rng(0)
    rows = []
    for agency in ("A1", "A2"):
        for sku in ("S1", "S2"):
            t = np.arange(periods)
            price = 10 + rng.normal(size=periods)
            rows.append(pd.DataFrame({"agency": agency, "sku": sku,
                                      "date": pd.date_range("2020-01-01", periods=periods, freq="MS"),
                                      "volume": np.maximum(0, 50 + 10 * np.sin(t) - 2 * price + rng.normal(size=periods)),
                                      "price": price}))
    df = pd.concat(rows, ignore_index=True)
    df.loc[(df.agency == "A2") & (df.sku == "S2"), "volume"] = 0.0  # a series that never moves
    train, test = df[df.date < "2022-01-01"], df[df.date >= "2022-01-01"]
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    return train, test


def test_several_id_columns_are_kept_in_the_output_and_evaluate_reads_covariates_from_data(tmp_path, capsys):
    _sales(tmp_path)
    common = ["--id", "agency,sku", "--time", "date", "--target", "volume", "--set", "data.future=['price']"]
    assert main(["fit", "forecast", "--data", str(tmp_path / "train.csv"), "--horizon", "6", *common,
                 "--out", str(tmp_path / "m"), *FAST]) == 0
    assert main(["predict", str(tmp_path / "m"), "--future", str(tmp_path / "test.csv"),
                 "--out", str(tmp_path / "fc.csv")]) == 0
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert list(fc.columns)[:3] == ["agency", "sku", "date"] and len(fc) == 4 * 6
    assert sorted(set(zip(fc.agency, fc.sku))) == [("A1", "S1"), ("A1", "S2"), ("A2", "S1"), ("A2", "S2")]
    assert (fc["y_hat"] >= 0).all()  # volumes are never negative: neither are their forecasts
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "test.csv")]) == 0  # no --future
    assert "24 forecasts of 4 series" in capsys.readouterr().out


def test_backtest_names_the_series_without_a_mase_scale_and_goes_on(tmp_path, capsys):
    _sales(tmp_path, periods=40)
    with pytest.warns(UserWarning, match=r"MASE is undefined for 1 series .*: A2/S2; their MASE is left out"):
        assert main(["backtest", "forecast", "--data", str(tmp_path / "train.csv"), "--id", "agency,sku", "--time",
                     "date", "--target", "volume", "--horizon", "3", "--windows", "2", "--m", "1", *FAST[:-1]]) == 0
    captured = capsys.readouterr()
    assert "lagged_ridge" in captured.out and "nan" not in captured.out.split("mase")[1].split("\n")[1]


@pytest.mark.parametrize("fmt, extra, first", [
    ("%d/%m/%Y", ["--set", "data.dayfirst=true"], "1949-01-01"),
    ("%m/%d/%Y", ["--set", "data.dayfirst=false"], "1949-01-01"),
    ("%b-%y", ["--set", "data.date_format=%b-%y"], "1949-01-01"),
    ("%YM%m", [], "1949-01-01")])
def test_dates_as_they_come(tmp_path, capsys, fmt, extra, first):
    air = _air(tmp_path, fmt)
    if fmt in ("%d/%m/%Y", "%m/%d/%Y", "%b-%y"):  # ambiguous without a word from the user
        assert _fit(air, tmp_path / "m") == 2
        err = capsys.readouterr().err
        assert ("day and month could be either way round" in err and "data.dayfirst" in err) or \
            ("two-digit years" in err and "'Jan-49' read as 2049-01-01" in err and "data.date_format" in err)
    assert _fit(air, tmp_path / "m", *extra) == 0
    assert main(["info", str(tmp_path / "m")]) == 0
    assert f"1 series, 144 rows, {first} to 1960-12-01, frequency MS" in capsys.readouterr().out


def test_numbers_with_a_thousands_separator(tmp_path, capsys):
    air = _air(tmp_path, thousands=True)
    assert _fit(air, tmp_path / "m") == 2
    assert "thousands separator (e.g. '1,120'); pass --set data.thousands=','" in capsys.readouterr().err
    assert _fit(air, tmp_path / "m", "--set", "data.thousands=,") == 0


def test_nonnegative_is_inferred_and_can_be_turned_off():
    from rnr import RNNForecaster
    from tests.conftest import seasonal_panel

    panel = seasonal_panel(n=2, length=40)
    panel["y"] = np.where(np.arange(len(panel)) % 5 == 0, 0.0, panel["y"] - 25).clip(min=0)
    kw = dict(horizon=5, epochs=1, hidden_size=4, head_size=4, quantiles=(0.1, 0.9), progress=False)
    fitted = RNNForecaster(**kw).fit(panel)
    assert fitted.chosen_["nonnegative"] is True
    columns = ["y_hat", "y_hat_q10", "y_hat_q90"]
    assert (fitted.predict()[columns] >= 0).all().all()
    assert "nonnegative" not in RNNForecaster(**kw, nonnegative=False).fit(panel).chosen_
    signed = panel.assign(y=panel["y"] - 100)
    assert "nonnegative" not in RNNForecaster(**kw).fit(signed).chosen_


def test_classify_labels_come_back_under_the_users_column_names(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"gesture": g, "t": t, "x": float(rng.normal() + (g % 2) * 2), "kind": "up" if g % 2 else "down"}
            for g in range(16) for t in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "g.csv", index=False)
    assert main(["fit", "classify", "--data", str(tmp_path / "g.csv"), "--id", "gesture", "--time", "t", "--label",
                 "kind", "--set", "model.epochs=2", "--set", "model.hidden_size=4", "--set", "model.n_models=1",
                 "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert main(["predict", str(tmp_path / "c"), "--data", str(tmp_path / "g.csv"), "--out",
                 str(tmp_path / "labels.csv")]) == 0
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["gesture", "kind", "p_down", "p_up"] and len(labels) == 16


def test_a_library_fix_reaches_the_command_in_its_own_terms():
    from rnr.cli.main import in_command_terms

    said = in_command_terms("target column 'y' must be numeric, got dtype str; convert it with pd.to_numeric, or "
                            "pass a categorical column as static")
    assert "pd.to_numeric" not in said and "--set data.thousands=','" in said


def _shared(*parts):
    root = data_dir()
    path = None if root is None else root.joinpath(*parts)
    if path is None or not path.is_file():
        pytest.skip(f"{'/'.join(parts)} absent: set RNR_DATA or place the data at ../shared/data")
    return path


def test_the_stallion_panel_as_it_comes(tmp_path, capsys):
    """Two id columns, covariates, volumes never below 0: fit, predict, evaluate with nothing but --data."""
    df = pd.read_csv(_shared("stallion", "Stallion.csv"))[["agency", "sku", "date", "volume", "price_regular"]]
    df[df.date < "2017-07-01"].to_csv(tmp_path / "train.csv", index=False)
    df[df.date >= "2017-07-01"].to_csv(tmp_path / "test.csv", index=False)
    common = ["--id", "agency,sku", "--time", "date", "--target", "volume", "--set", "data.future=['price_regular']"]
    assert main(["fit", "forecast", "--data", str(tmp_path / "train.csv"), "--horizon", "6", *common,
                 "--out", str(tmp_path / "m"), "--set", "model.epochs=1", "--set", "model.hidden_size=8"]) == 0
    assert "(350 series, 18900 rows, 2013-01-01 to 2017-06-01, frequency MS)" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "m"), "--future", str(tmp_path / "test.csv"), "--out",
                 str(tmp_path / "fc.csv")]) == 0
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert list(fc.columns) == ["agency", "sku", "date", "y_hat"] and len(fc) == 2100 and (fc.y_hat >= 0).all()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "test.csv")]) == 0
    assert "2100 forecasts of 350 series" in capsys.readouterr().out


@pytest.mark.parametrize("parts, column", [(("sunspots", "monthly-sunspots.csv"), "Sunspots"),
                                           (("lynx", "Lynx.csv"), "0")])
def test_the_lagged_baseline_stays_in_the_range_of_the_data(parts, column):
    from rnr.forecast.backtest import RIDGE_ALPHAS, RIDGE_FLOORS
    from rnr.forecast.baselines import LaggedRidge, Naive
    from rnr.metrics import mae

    y = pd.read_csv(_shared(*parts))[column].to_numpy(float)
    h = 12
    ridge = LaggedRidge(lags=[1, 2, 3, 7, 14, 28], alpha=RIDGE_ALPHAS, floor=RIDGE_FLOORS, m=1)
    forecast = ridge.fit([y[:-h]], val_horizon=h).predict(h)[0]
    assert forecast.min() >= 0 and forecast.max() <= 2 * y[:-h].max()  # within the data's own range
    assert mae(y[-h:], forecast) < 2 * mae(y[-h:], Naive().fit([y[:-h]]).predict(h)[0])  # a fair baseline
