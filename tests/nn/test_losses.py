"""masked_loss against the mean written out by hand over the real positions; padding that is never read; errors."""
import re

import pytest
import torch
from torch.testing import assert_close

from rnr.nn.losses import check_loss, masked_loss

B, T, O = 3, 5, 2
MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)  # (B, T)

def lit(text: str) -> str:
    return re.escape(text)

def _manual(kind: str, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean, over real positions, of each position's loss (averaged over its O outputs), as a plain loop."""
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for t in range(pred.shape[1]):
            if mask is not None and not mask[b, t]:
                continue
            p, y = pred[b, t], target[b, t]
            if kind == "mse":
                total += ((p - y) ** 2).mean()
            elif kind == "mae":
                total += (p - y).abs().mean()
            else:
                total += -torch.log_softmax(p, -1)[y]
            count += 1
    return total / count

@pytest.mark.parametrize("kind", ["mse", "mae"])
@pytest.mark.parametrize("masked", [False, True])
def test_regression_losses_are_the_mean_over_real_positions(kind, masked):
    pred, target = torch.randn(B, T, O), torch.randn(B, T, O)
    mask = MASK if masked else None
    assert_close(masked_loss(kind, pred, target, mask), _manual(kind, pred, target, mask))

@pytest.mark.parametrize("masked", [False, True])
def test_cross_entropy_is_the_mean_over_real_positions(masked):
    pred, target = torch.randn(B, T, 4), torch.randint(0, 4, (B, T))
    mask = MASK if masked else None
    assert_close(masked_loss("cross_entropy", pred, target, mask), _manual("cross_entropy", pred, target, mask))

def test_one_output_per_example_without_a_time_axis():
    pred, target = torch.randn(B, O), torch.randn(B, O)
    assert_close(masked_loss("mse", pred, target), ((pred - target) ** 2).mean())
    assert_close(masked_loss("mae", pred, target), (pred - target).abs().mean())
    logits, ids = torch.randn(B, 4), torch.tensor([0, 3, 1])
    assert_close(masked_loss("cross_entropy", logits, ids),
                 -torch.log_softmax(logits, -1)[torch.arange(B), ids].mean())

def test_a_trailing_single_output_may_be_left_out_of_the_target():
    pred, target = torch.randn(B, T, 1), torch.randn(B, T)
    assert_close(masked_loss("mse", pred, target, MASK), masked_loss("mse", pred, target[..., None], MASK))
    assert_close(masked_loss("mae", pred[:, 0], target[:, 0]), (pred[:, 0, 0] - target[:, 0]).abs().mean())

def test_integer_regression_targets_are_converted():
    pred, target = torch.randn(B, O), torch.randint(-3, 3, (B, O))
    assert_close(masked_loss("mse", pred, target), ((pred - target.float()) ** 2).mean())

def test_a_full_mask_is_no_mask_and_an_empty_one_gives_zero():
    pred, target = torch.randn(B, T, O), torch.randn(B, T, O)
    full = torch.ones(B, T, dtype=torch.bool)
    assert_close(masked_loss("mse", pred, target, full), masked_loss("mse", pred, target))
    empty = torch.zeros(B, T, dtype=torch.bool)
    assert masked_loss("mse", pred, target, empty).item() == 0.0  # nothing to average: zero, not 0/0 = NaN

@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_padded_targets_are_never_read_even_nan(kind):
    pred = torch.randn(B, T, O, requires_grad=True)
    target = torch.randn(B, T, O)
    clean = masked_loss(kind, pred, target, MASK)
    for junk in (float("nan"), float("inf"), 1e30):
        padded = target.masked_fill(~MASK[..., None], junk)
        loss = masked_loss(kind, pred, padded, MASK)
        assert_close(loss, clean)
        (grad,) = torch.autograd.grad(loss, pred)
        assert torch.isfinite(grad).all(), f"a {junk} target in the padding reached the gradient"
        assert (grad[~MASK] == 0).all(), "padded predictions must get no gradient"

def test_padded_class_ids_are_never_read():
    pred = torch.randn(B, T, 4, requires_grad=True)
    target = torch.randint(0, 4, (B, T))
    clean = masked_loss("cross_entropy", pred, target, MASK)
    for junk in (-100, 4, 10**6):  # -100: PyTorch's ignore_index convention; 4: one past the classes
        loss = masked_loss("cross_entropy", pred, target.masked_fill(~MASK, junk), MASK)
        assert_close(loss, clean)
        (grad,) = torch.autograd.grad(loss, pred)
        assert (grad[~MASK] == 0).all()

def test_padded_predictions_do_not_matter():
    pred, target = torch.randn(B, T, O), torch.randn(B, T, O)
    noisy = pred.masked_fill(~MASK[..., None], 1e6)
    assert_close(masked_loss("mse", noisy, target, MASK), masked_loss("mse", pred, target, MASK))

def test_a_mask_of_zeros_and_ones_acts_as_a_bool_mask():
    pred, target = torch.randn(B, T, O), torch.randn(B, T, O)
    assert_close(masked_loss("mae", pred, target, MASK.float()), masked_loss("mae", pred, target, MASK))

ERRORS = {  # id: (kind, pred, target, mask, exception, message)
    "kind": ("huber", torch.zeros(B, O), torch.zeros(B, O), None, ValueError,
             lit("kind must be one of ['mse', 'mae', 'cross_entropy'], got 'huber'")),
    "regression_shape": ("mse", torch.zeros(B, T, O), torch.zeros(B, T, O + 1), None, ValueError,
                         lit(f"target must have shape ({B}, {T}, {O}) to match the predictions, got "
                             f"({B}, {T}, {O + 1})")),
    "regression_missing_time": ("mae", torch.zeros(B, T, O), torch.zeros(B, O), None, ValueError,
                                lit(f"target must have shape ({B}, {T}, {O}) to match the predictions, got "
                                    f"({B}, {O})")),
    "mask_shape": ("mse", torch.zeros(B, T, O), torch.zeros(B, T, O), torch.ones(B, T + 1, dtype=torch.bool),
                   ValueError, lit(f"mask must have shape ({B}, {T}) (True at real positions), got ({B}, {T + 1})")),
    "ce_float_target": ("cross_entropy", torch.zeros(B, 4), torch.zeros(B), None, TypeError,
                        lit("target must hold integer class ids for cross-entropy, got dtype torch.float32")),
    "ce_shape": ("cross_entropy", torch.zeros(B, T, 4), torch.zeros(B, T, 4, dtype=torch.long), None, ValueError,
                 lit(f"target must have shape ({B}, {T}) (class ids), got ({B}, {T}, 4)")),
    "ce_class_too_big": ("cross_entropy", torch.zeros(B, 4), torch.tensor([0, 4, 1]), None, ValueError,
                         lit("target must hold class ids in [0, 4), got values in [0, 4]")),
    "ce_negative_class": ("cross_entropy", torch.zeros(B, T, 4), torch.full((B, T), -1), MASK, ValueError,
                          lit("target must hold class ids in [0, 4), got values in [-1, -1]")),  # at real positions
}

@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    kind, pred, target, mask, exc, message = ERRORS[case]
    with pytest.raises(exc, match=message):
        masked_loss(kind, pred, target, mask)

def test_check_loss_defaults_and_choices():
    assert check_loss("regression", None) == "mse"
    assert check_loss("regression", "mae") == "mae"
    assert check_loss("classification", None) == "cross_entropy"

@pytest.mark.parametrize("task, loss, message", [
    ("ranking", None, "task must be 'regression' or 'classification', got 'ranking'"),
    ("Regression", "mse", "task must be 'regression' or 'classification', got 'Regression'"),
    ("regression", "huber", "loss must be one of ['mse', 'mae'] for task='regression', got 'huber'; leave loss=None "
                            "for 'mse'"),
    ("regression", "cross_entropy", "loss must be one of ['mse', 'mae'] for task='regression', got 'cross_entropy'; "
                                    "loss='cross_entropy' needs task='classification'"),
    ("classification", "mse", "loss must be one of ['cross_entropy'] for task='classification', got 'mse'; "
                              "loss='mse' needs task='regression'"),
])
def test_check_loss_errors(task, loss, message):
    with pytest.raises(ValueError, match=lit(message)):
        check_loss(task, loss)
