"""Forecasting time series and panels: long-format frames as per-series arrays (``panel``), scaling, Parquet panels
larger than memory, the forecasting network and its training run, ``RNNForecaster``, the classical baselines
(lagged variables among them), rolling-origin backtests and plots."""
from rnr.forecast import baselines
from rnr.forecast.backtest import BacktestResult, backtest
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.panel import Panel
from rnr.forecast.scaling import Scaler

__all__ = ["RNNForecaster", "Panel", "Scaler", "backtest", "BacktestResult", "baselines"]
