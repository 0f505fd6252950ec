"""Sequence data for training: ragged pairs (x_i, y_i) padded into batches with their lengths.

A ``SequenceData`` holds N examples. Inputs are a tensor ``(N, T, I)`` (all of one length), a tensor ``(N, I)``
(one vector each, for one-to-one and one-to-many) or a list of ``(T_i, I)`` tensors or arrays of any lengths;
integer token sequences ``(N, T)`` or lists of ``(T_i,)`` work the same way. Targets follow the same rules. Nothing
is padded until a batch is drawn, and a batch is padded only to its own longest sequence.
"""
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor


@dataclass
class Batch:
    x: Tensor  # (B, T, I) float, (B, T) int tokens, or (B, I) vectors
    y: Tensor  # (B, O), (B,), (B, T_out, O) or (B, T_out)
    x_lengths: Tensor | None = None  # (B,) int64 on CPU; None when every x fills T
    y_lengths: Tensor | None = None  # (B,) int64 on CPU; None when every y fills T_out

    def to(self, device) -> "Batch":
        return Batch(self.x.to(device), self.y.to(device), self.x_lengths, self.y_lengths)

    def __len__(self) -> int:
        return self.x.shape[0]


def pad(seqs: Sequence[Tensor], value: float = 0.0) -> tuple[Tensor, Tensor | None]:
    """Stack (T_i, ...) tensors into (B, max T_i, ...) with ``value`` past each end; lengths None if all equal."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.int64)
    T = int(lengths.max())
    out = seqs[0].new_full((len(seqs), T, *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, (None if bool((lengths == T).all()) else lengths)


def _as_tensor(a, name: str, i: int | None = None) -> Tensor:
    where = name if i is None else f"{name}[{i}]"
    if isinstance(a, Tensor):
        t = a
    else:
        try:
            t = torch.as_tensor(np.asarray(a))
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where} must be an array or tensor of numbers, got {type(a).__name__} ({e})") from None
    if t.dtype == torch.float64:
        t = t.float()  # numpy's default float; models train in float32
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
                       torch.int8, torch.uint8, torch.bool):
        raise TypeError(f"{where} must hold numbers, got dtype {t.dtype}")
    return t


def _as_items(a, name: str) -> list[Tensor] | Tensor:
    if isinstance(a, (list, tuple)):
        if len(a) == 0:
            raise ValueError(f"{name} must hold at least one example, got an empty {type(a).__name__}")
        items = [_as_tensor(v, name, i) for i, v in enumerate(a)]
        for i, t in enumerate(items):
            if t.dim() >= 1 and t.shape[0] == 0:
                raise ValueError(f"{name}[{i}] is an empty sequence (length 0); drop it or give it at least one step")
            if t.dim() != items[0].dim() or t.shape[1:] != items[0].shape[1:]:
                raise ValueError(f"{name}[{i}] has shape {tuple(t.shape)} but {name}[0] has {tuple(items[0].shape)}; "
                                 f"examples may differ in length (the first dimension) only, so give every one the "
                                 f"same features")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}[{i}] holds NaN or inf; fill or drop missing values first (padding in a "
                                 f"ragged list is never needed: give each example its own length)")
        return items
    t = _as_tensor(a, name)
    if t.dim() == 0 or t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example, got shape {tuple(t.shape)}")
    return t


class SequenceData:
    """N examples (x_i, y_i) of any lengths, drawn in padded batches.

    Example:
        >>> X = [torch.randn(5, 2), torch.randn(3, 2)]
        >>> Y = torch.tensor([0, 1])
        >>> batch = next(SequenceData(X, Y).batches(batch_size=2))
        >>> batch.x.shape, batch.x_lengths.tolist()
        (torch.Size([2, 5, 2]), [5, 3])
    """

    def __init__(self, X, Y):
        self.X = _as_items(X, "X")
        self.Y = _as_items(Y, "Y")
        if len(self.X) != len(self.Y):
            raise ValueError(f"X and Y must hold the same number of examples, got {len(self.X)} and {len(self.Y)}")

    def __len__(self) -> int:
        return len(self.X)

    @staticmethod
    def _take(items, idx: list[int]) -> tuple[Tensor, Tensor | None]:
        if isinstance(items, Tensor):
            return items[idx], None
        chosen = [items[i] for i in idx]
        if chosen[0].dim() == 0:
            return torch.stack(chosen), None
        return pad(chosen)

    def batch(self, idx: list[int]) -> Batch:
        x, x_len = self._take(self.X, idx)
        y, y_len = self._take(self.Y, idx)
        return Batch(x, y, x_len, y_len)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                skip: int = 0, bucket: bool = False) -> Iterator[Batch]:
        """Batches in order, or in a random order drawn from ``generator``; ``skip`` drops the first batches.

        bucket (with shuffle): each pool of 50 batches' worth of examples, drawn at random, is sorted by length
        and cut into batches, which then come in a random order: batches of similar lengths, so less padding.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
        if shuffle and bucket and not isinstance(self.X, Tensor):
            groups = []
            for start in range(0, n, 50 * batch_size):
                pool = sorted(order[start : start + 50 * batch_size], key=lambda i: self.X[i].shape[0] if self.X[i].dim() else 1)
                groups += [pool[k : k + batch_size] for k in range(0, len(pool), batch_size)]
            groups = [groups[g] for g in torch.randperm(len(groups), generator=generator).tolist()]
        else:
            groups = [order[k : k + batch_size] for k in range(0, n, batch_size)]
        for idx in groups[skip:]:
            yield self.batch(idx)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)


def as_data(data, name: str = "train") -> SequenceData:
    """Accept a SequenceData or an (X, Y) pair."""
    if isinstance(data, SequenceData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return SequenceData(*data)
    raise TypeError(
        f"{name} must be a SequenceData or an (X, Y) pair, got {type(data).__name__}; pass e.g. {name}=(X, Y)"
    )
