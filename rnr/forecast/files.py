"""``RNNForecaster``'s model files: what ``rnr.save`` writes of a fitted forecaster and ``rnr.load`` reads back.

Tensors: the network's weights (``net.``), each series' encoder state (``state.``) and smoothing state
(``smooth_state``), the scalers (``scaler.``, ``cov.``) and the per-series arrays the forecasts start from
(``info.``); every extra network of an ensemble under ``member{k}.``. JSON: the arguments, the network's shape, the
ids, column roles, frequency, history and what was chosen from the data.
"""
from dataclasses import asdict

import numpy as np
import torch

from rnr.base import RUN_OPTIONS
from rnr.forecast import ensemble
from rnr.forecast.net import ForecastNet
from rnr.forecast.panel import PanelColumns
from rnr.forecast.scaling import CovariateScaler, Scaler
from rnr.weights import load_weights

ARRAYS = ("last_time", "last_tindex", "step", "last_past", "tail_y", "static_num", "static_cat")


def to_file(forecaster) -> tuple[dict, dict]:
    """A fitted ``RNNForecaster``'s weights, scalers, carried states and column roles as tensors, plus plain JSON
    data (``rnr.save``)."""
    if not hasattr(forecaster, "net_"):
        raise ValueError("RNNForecaster is not fitted; call fit(df) before rnr.save")
    info = forecaster.panel_info_
    tensors = {f"net.{k}": v for k, v in forecaster.net_.state_dict().items()}
    state = forecaster.state_ if isinstance(forecaster.state_, tuple) else (forecaster.state_,)
    tensors.update({f"state.{i}": s for i, s in enumerate(state)})
    if getattr(forecaster, "smooth_state_", None) is not None:
        tensors["smooth_state"] = forecaster.smooth_state_
    for k, v in forecaster.scaler_.to_state().items():
        if k != "kind":
            tensors[f"scaler.{k}"] = torch.from_numpy(v)
    tensors.update({f"cov.{k}": torch.from_numpy(v) for k, v in forecaster.cov_scaler_.to_state().items()})
    last_time = np.asarray(info["last_time"])
    for k in ARRAYS:
        v = last_time.astype(np.int64) if k == "last_time" else np.asarray(info[k])
        tensors[f"info.{k}"] = torch.from_numpy(np.ascontiguousarray(v))
    config = {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in forecaster.get_params().items()
                         if k not in RUN_OPTIONS},
              "net": forecaster.net_args_, "scaler_kind": forecaster.scaler_.to_state()["kind"],
              "ids": [i.item() if isinstance(i, np.generic) else i for i in info["ids"]],
              "ids_dtype": str(np.asarray(info["ids"]).dtype), "columns": asdict(info["columns"]),
              "freq": info["freq"] if not isinstance(info["freq"], np.integer) else int(info["freq"]),
              "time_dtype": str(last_time.dtype), "missing": info["missing"], "history": forecaster.history_,
              "chosen": {k: list(v) if isinstance(v, tuple) else v for k, v in forecaster.chosen_.items()},
              "static_categories": {k: [c.item() if isinstance(c, np.generic) else c for c in v]
                                    for k, v in getattr(forecaster, "static_categories_", {}).items()}}
    member_tensors, config["members"] = ensemble.to_file(getattr(forecaster, "members_", []))
    tensors.update(member_tensors)
    return tensors, config

def from_file(cls, tensors: dict, config: dict, device="cpu"):
    """The forecaster of class ``cls`` that ``to_file`` wrote (``rnr.load``)."""
    params = dict(config["params"])
    params["quantiles"], params["extra_seasons"] = tuple(params["quantiles"]), tuple(params["extra_seasons"])
    forecaster = cls(**params)
    forecaster.net_args_ = config["net"]
    forecaster.net_ = ForecastNet(**forecaster.net_args_)
    load_weights(forecaster.net_, {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, "the forecaster file")
    forecaster.net_.eval()
    state = tuple(tensors[f"state.{i}"] for i in range(sum(k.startswith("state.") for k in tensors)))
    forecaster.state_ = state if len(state) == 2 else state[0]
    forecaster.smooth_state_ = tensors.get("smooth_state")
    forecaster.scaler_ = Scaler.from_state({"kind": config["scaler_kind"], "loc": tensors["scaler.loc"].numpy(),
                                      "scale": tensors["scaler.scale"].numpy()})
    forecaster.cov_scaler_ = CovariateScaler.from_state({k[4:]: v.numpy() for k, v in tensors.items()
                                                   if k.startswith("cov.")})
    info = {k: tensors[f"info.{k}"].numpy().copy() for k in ARRAYS}
    info["last_time"] = info["last_time"].astype(config["time_dtype"])
    columns = {k: tuple(v) if isinstance(v, list) else v for k, v in config["columns"].items()}
    ids = np.asarray(config["ids"], dtype=object if config["ids_dtype"] == "object" else config["ids_dtype"])
    info.update(ids=ids, columns=PanelColumns(**columns), freq=config["freq"], missing=config["missing"])
    forecaster.panel_info_ = info
    forecaster.history_ = config["history"]
    forecaster.chosen_ = {k: tuple(v) if isinstance(v, list) else v for k, v in config.get("chosen", {}).items()}
    forecaster.static_categories_ = config.get("static_categories")  # None in files written before it was kept
    forecaster.members_ = ensemble.from_file(cls, tensors, config.get("members", []), device)
    return forecaster
