"""Panels from Parquet read in bounded groups of whole series: the same model as from a frame, every series kept."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import rnr
from rnr.__main__ import main
from rnr.data import tasks
from rnr.forecast.parquet import ParquetPanel

pytest.importorskip("pyarrow")
# relative_to: fit_parquet has no per-series smoothing, so the frame is fitted relative to the same base
OPTIONS = dict(horizon=7, hidden_size=8, head_size=8, epochs=2, batch_size=4, relative_to="seasonal_naive")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    df = tasks.ice_cream(n_shops=6, days=60)
    df.to_parquet(root / "sales.parquet", index=False)
    (root / "parts").mkdir()  # the same panel as a folder of files, rows shuffled
    shuffled = df.sample(frac=1.0, random_state=0)
    for i, lo in enumerate(range(0, len(shuffled), len(shuffled) // 3 + 1)):
        shuffled.iloc[lo : lo + len(shuffled) // 3 + 1].to_parquet(root / "parts" / f"{i}.parquet", index=False)
    return root, df


def test_one_group_trains_exactly_the_model_fit_trains_on_the_frame(files):
    root, df = files
    ref = rnr.RNNForecaster(**OPTIONS).fit(df)
    streamed = rnr.RNNForecaster(**OPTIONS).fit(str(root / "sales.parquet"))
    for k, v in ref.net_.state_dict().items():
        assert torch.equal(v, streamed.net_.state_dict()[k]), k
    pd.testing.assert_frame_equal(ref.predict(), streamed.predict())


def test_groups_of_bounded_rows_cover_every_series_once(files):
    root, df = files
    source = ParquetPanel(root / "parts", max_rows=130, target="y", future=["temperature"])
    sizes = df.groupby("unique_id").size()
    assert sorted(u for g in source.groups for u in g) == sorted(sizes.index)
    assert all(sum(sizes[u] for u in g) <= 130 or len(g) == 1 for g in source.groups) and len(source) >= 3
    for g in range(len(source)):
        panel = source.read(g)
        assert list(panel.ids) == source.groups[g] and (panel.lengths() == source.lengths(g)).all()
        expected = df[df.unique_id == source.groups[g][0]].sort_values("ds")
        assert np.allclose(panel.y[: len(expected), 0], expected.y)  # shuffled rows come back in time order
    loc, scale = df["temperature"].mean(), df["temperature"].std(ddof=0)
    state = source.cov_scaler.to_state()
    assert state["future_loc"][0] == pytest.approx(loc) and state["future_scale"][0] == pytest.approx(scale)


def test_a_model_fitted_a_group_at_a_time_forecasts_every_series(files):
    root, df = files
    f = rnr.RNNForecaster(**OPTIONS).fit_parquet(root / "parts", max_rows=130)
    pred = f.predict()
    assert sorted(pred.unique_id.unique()) == sorted(df.unique_id.unique()) and np.isfinite(pred.y_hat).all()
    last = df.groupby("unique_id").ds.max()
    first = pred.groupby("unique_id").ds.min()
    assert ((first - last[first.index]) == pd.Timedelta(days=1)).all()
    ref = rnr.RNNForecaster(**OPTIONS).fit(df)  # scaling per series, so each series' scale is the same either way
    assert np.allclose(np.sort(f.scaler_.loc_[:, 0]), np.sort(ref.scaler_.loc_[:, 0]))


def test_bad_parquet_sources_are_named(files, tmp_path):
    root, _ = files
    with pytest.raises(ValueError, match=r"columns \['price'\] are not in the Parquet data; its columns are"):
        ParquetPanel(root / "sales.parquet", future=["price"])
    with pytest.raises(ValueError, match="is not a readable Parquet file or folder"):
        ParquetPanel(tmp_path / "missing.parquet")
    with pytest.raises(ValueError, match=r"static columns \['size'\] are not numeric"):
        ParquetPanel(root / "sales.parquet", static=["size"])


def test_rnr_fit_reads_parquet(files, tmp_path, capsys):
    root, _ = files
    assert main(["fit", "forecast", "--data", str(root / "parts"), "--horizon", "7", "--set", "model.epochs=1",
                 "--set", "model.hidden_size=8", "--json", "--out", str(tmp_path / "m")]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == 6
    assert main(["predict", str(tmp_path / "m"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 6 * 7


def test_dates_stored_as_text_read_as_they_do_from_csv(files, tmp_path):
    root, df = files
    text = df.assign(ds=df["ds"].dt.strftime("%Y-%m-%d"))
    text.to_parquet(tmp_path / "text.parquet", index=False)
    ref = rnr.RNNForecaster(**OPTIONS).fit(str(root / "sales.parquet"))
    got = rnr.RNNForecaster(**OPTIONS).fit(str(tmp_path / "text.parquet"))
    pd.testing.assert_frame_equal(ref.predict(), got.predict())
    text.assign(ds="someday").to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ValueError, match="time column 'ds' of the Parquet data holds text that is not ISO dates, "
                                         "e.g. 'someday'"):
        rnr.RNNForecaster(**OPTIONS).fit(str(tmp_path / "bad.parquet"))
