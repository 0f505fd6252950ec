"""Masked losses: mean squared error, mean absolute error and cross-entropy over the real steps only."""
import torch
import torch.nn.functional as F
from torch import Tensor

from rnr.core.checks import checking_values

LOSSES = ("mse", "mae", "cross_entropy")
TASK_LOSSES = {"regression": ("mse", "mae"), "classification": ("cross_entropy",)}


def check_loss(task: str, loss: str | None) -> str:
    if task not in TASK_LOSSES:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    loss = TASK_LOSSES[task][0] if loss is None else loss
    if loss not in TASK_LOSSES[task]:
        other = [t for t, losses in TASK_LOSSES.items() if loss in losses]
        fix = f"loss={loss!r} needs task={other[0]!r}" if other else f"leave loss=None for {TASK_LOSSES[task][0]!r}"
        raise ValueError(f"loss must be one of {list(TASK_LOSSES[task])} for task={task!r}, got {loss!r}; {fix}")
    return loss


def masked_loss(kind: str, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean loss over the positions where ``mask`` is True.

    Shapes: regression pred (B, [T,] O) and target of the same shape (a trailing O=1 may be left out);
    classification pred (B, [T,] C) logits and target (B, [T]) class ids. mask (B, [T]) bool or None.
    Targets at masked positions are never read: padding may hold anything (NaN, -100, ...).
    """
    if kind not in LOSSES:
        raise ValueError(f"kind must be one of {list(LOSSES)}, got {kind!r}")
    if mask is not None:
        mask = mask.to(device=pred.device, dtype=torch.bool)
        if mask.shape != pred.shape[:-1]:
            raise ValueError(f"mask must have shape {tuple(pred.shape[:-1])} (True at real positions), got "
                             f"{tuple(mask.shape)}")
    if kind == "cross_entropy":
        if target.is_floating_point():
            raise TypeError(f"target must hold integer class ids for cross-entropy, got dtype {target.dtype}")
        if target.shape != pred.shape[:-1]:
            raise ValueError(f"target must have shape {tuple(pred.shape[:-1])} (class ids), got {tuple(target.shape)}")
        C = pred.shape[-1]
        if checking_values():  # skipped inside rnr.core.checks.trusted(): ids checked once per fit
            real = target if mask is None else target[mask]  # padded ids are never read
            if real.numel() and (int(real.min()) < 0 or int(real.max()) >= C):
                raise ValueError(
                    f"target must hold class ids in [0, {C}), got values in [{int(real.min())}, {int(real.max())}]"
                )
        if mask is not None:
            target = target.masked_fill(~mask, 0)
        per = F.cross_entropy(pred.reshape(-1, C), target.reshape(-1).long(), reduction="none").view(target.shape)
    else:
        if not target.is_floating_point():
            target = target.to(pred.dtype)
        if target.shape != pred.shape and target.shape == pred.shape[:-1] and pred.shape[-1] == 1:
            target = target.unsqueeze(-1)
        if target.shape != pred.shape:
            raise ValueError(f"target must have shape {tuple(pred.shape)} to match the predictions, got "
                             f"{tuple(target.shape)}")
        if mask is not None:
            target = target.masked_fill(~mask[..., None], 0.0)  # padded values (NaN too) are never read
        diff = pred - target
        per = (diff * diff if kind == "mse" else diff.abs()).mean(-1)  # (B, [T])
    if mask is None:
        return per.mean()
    return per.masked_fill(~mask, 0.0).sum() / mask.sum().clamp(min=1)
