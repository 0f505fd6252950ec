"""Masked losses: mean squared error, mean absolute error and cross-entropy over the real steps only."""
import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("mse", "mae", "cross_entropy")
TASK_LOSSES = {"regression": ("mse", "mae"), "classification": ("cross_entropy",)}


def check_loss(task: str, loss: str | None) -> str:
    if task not in TASK_LOSSES:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    loss = TASK_LOSSES[task][0] if loss is None else loss
    if loss not in TASK_LOSSES[task]:
        raise ValueError(f"loss must be one of {list(TASK_LOSSES[task])} for task={task!r}, got {loss!r}")
    return loss


def masked_loss(kind: str, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean loss over the positions where ``mask`` is True.

    Shapes: regression pred (B, [T,] O) and target of the same shape (a trailing O=1 may be left out);
    classification pred (B, [T,] C) logits and target (B, [T]) class ids. mask (B, [T]) bool or None.
    """
    if kind == "cross_entropy":
        if target.is_floating_point():
            raise TypeError(f"target must hold integer class ids for cross-entropy, got dtype {target.dtype}")
        if target.shape != pred.shape[:-1]:
            raise ValueError(f"target must have shape {tuple(pred.shape[:-1])} (class ids), got {tuple(target.shape)}")
        C = pred.shape[-1]
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= C):
            raise ValueError(
                f"target must hold class ids in [0, {C}), got values in [{int(target.min())}, {int(target.max())}]"
            )
        per = F.cross_entropy(pred.reshape(-1, C), target.reshape(-1).long(), reduction="none").view(target.shape)
    else:
        if not target.is_floating_point():
            target = target.to(pred.dtype)
        if target.shape != pred.shape and target.shape == pred.shape[:-1] and pred.shape[-1] == 1:
            target = target.unsqueeze(-1)
        if target.shape != pred.shape:
            raise ValueError(f"target must have shape {tuple(pred.shape)} to match the predictions, got "
                             f"{tuple(target.shape)}")
        diff = pred - target
        per = (diff * diff if kind == "mse" else diff.abs()).mean(-1)  # (B, [T])
    if mask is None:
        return per.mean()
    mask = mask.to(per.device)
    return (per * mask).sum() / mask.sum().clamp(min=1)
