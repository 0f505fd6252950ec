"""``RNNForecaster(ensemble=N, snapshots=k)``: N networks trained from different seeds, and each one's weights after
its last k epochs; their forecasts averaged.

The forecaster itself is the first member (random_state r); the others (random_state r + 1, ..., r + N - 1) are full
forecasters of their own in ``members_``, fitted on the same data with the same settings, each within an equal
share of the time budget ``max_minutes``. ``predict`` averages the members' forecasts column by column (point
forecast and each quantile), ``update`` carries every member forward, ``embed`` is the first member's. In a model
file each extra member's tensors carry the prefix ``member{k}.`` and its configuration sits in ``members``.

Snapshots (``snapshots=k``) are members too, with the network's own ``random_state`` and the weights it had after
each of its k - 1 epochs before the last: a network's forecast is the average over its snapshots, and the ensemble's
the average over its networks.
"""
import copy

import pandas as pd


def fit_members(forecaster, fit_one) -> list:
    """The forecasters of every network but the first, each fitted by ``fit_one(member)``; the caller fits the first
    itself. Networks: one per seed (random_state r, r + 1, ..., r + N - 1 for ``ensemble=N``) and per base (the
    ``bases`` chosen from the data, e.g. smoothing and the seasonal naive: ``rnr.forecast.defaults``), each with an
    equal share of the time budget.

    A run stopped by Ctrl-C (the first network's or a later one's) fits no further network and keeps only those that
    finished; ``forecaster.interrupted_`` becomes True and ``forecaster.stopped_member_`` counts the networks that
    finished before the one that was stopped (0 for the first), so the caller can say so."""
    params, config = forecaster.get_params(), forecaster.config
    bases = getattr(config, "bases", None) or (config.relative_to,)
    networks = [(k, base) for k in range(params["ensemble"]) for base in bases][1:]
    budget = config.max_minutes
    members = []
    forecaster.stopped_member_ = 0 if getattr(forecaster, "interrupted_", False) else None
    if forecaster.stopped_member_ is not None:
        return members
    for k, base in networks:
        member = type(forecaster)(**{**params, "ensemble": 1, "random_state": params["random_state"] + k,
                                     "relative_to": base, "scaler": params["scaler"],  # "auto": as fits the base
                                     "max_minutes": None if budget is None else budget / (len(networks) + 1),
                                     "log_dir": None, "checkpoint_dir": None, "checkpoint_every": None,
                                     "resume": False})
        fitted = fit_one(member)
        if getattr(fitted, "interrupted_", False):  # Ctrl-C: this member is half trained, so it is left out
            forecaster.interrupted_, forecaster.stopped_member_ = True, len(members) + 1
            break
        members.append(fitted)
    return members


def snapshot_members(forecaster, panel, arrays) -> list:
    """``snapshots=k``: forecasters that share everything with ``forecaster`` but the weights, which are those it
    had after each of its last k - 1 epochs before the final one (``snapshots_``), each with its series' states
    read again. ``predict`` then averages the forecasts of the last k epochs (Smyl 2020 averages the last epochs'
    forecasts of each network)."""
    members = []
    for weights in getattr(forecaster, "snapshots_", []):
        member = copy.copy(forecaster)
        member.net_ = copy.deepcopy(forecaster.net_)
        member.net_.load_state_dict(weights)
        member.members_, member.snapshots_ = [], []
        member.set_params(ensemble=1, snapshots=1)
        member._remember(panel, arrays)
        members.append(member)
    forecaster.snapshots_ = []  # kept as members now
    return members


def predict(forecaster, own, whole) -> pd.DataFrame:
    """The ensemble's forecasts: each network's (``own(member)``: its final weights averaged with its snapshots,
    the members with its ``random_state``), then the networks' averaged (``whole(member)`` for the other seeds)."""
    members = getattr(forecaster, "members_", [])
    c = forecaster.config
    snaps = [m for m in members if m.random_state == c.random_state and m.config.relative_to == c.relative_to]
    others = [m for m in members if m not in snaps]
    mine = average([own(forecaster)] + [own(m) for m in snaps])
    return average([mine] + [whole(m) for m in others])


def average(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The members' forecast frames (the same rows in the same order) with their forecast columns averaged."""
    if len(frames) == 1:
        return frames[0]
    out = frames[0].copy()
    for col in [c for c in out.columns if c.startswith("y_hat")]:
        out[col] = sum(f[col].to_numpy() for f in frames) / len(frames)
    return out


def to_file(members: list) -> tuple[dict, list]:
    """The extra members' tensors (prefixed ``member{k}.``) and their configurations."""
    tensors, configs = {}, []
    for k, member in enumerate(members, 1):
        t, c = member._to_file()
        tensors.update({f"member{k}.{name}": v for name, v in t.items()})
        configs.append(c)
    return tensors, configs


def from_file(cls, tensors: dict, configs: list, device) -> list:
    """The extra members rebuilt from a model file."""
    members = []
    for k, config in enumerate(configs, 1):
        prefix = f"member{k}."
        own = {name[len(prefix):]: v for name, v in tensors.items() if name.startswith(prefix)}
        members.append(cls._from_file(own, config, device=device))
    return members
