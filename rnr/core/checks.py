"""Validation of user input: each error names the argument, the rule, the value received and the fix.

Checks of types and shapes cost a few attribute reads and always run. The value checks, which read every element
of a tensor and wait for the answer (finite values, token and class ids in range), are skipped inside ``trusted()``:
the training core enters it once a task's data has been checked in full, and a model enters it around a layer that
reads the model's own tensors (a decoder step), so that the same values are not scanned again on every chunk or
step. Outside it every call checks everything, the plain path the fast one is held to (tests/training).
"""
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

_TRUSTED = ContextVar("rnr_trusted", default=False)
ALWAYS_CHECK = False  # True: trusted() skips nothing, every call checks every value (the reference for tests)


@contextmanager
def trusted():
    """Inside: the value checks (``check_finite``, ``check_tokens``' range, the class ids of
    ``rnr.nn.losses.masked_loss``) are skipped; checks of types and shapes still run. For tensors already checked
    once, or made by the model itself; results are the same, bitwise, as with the checks."""
    token = _TRUSTED.set(not ALWAYS_CHECK)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def checking_values() -> bool:
    """False inside ``trusted()``: the value checks may be skipped."""
    return not _TRUSTED.get()


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with torch.as_tensor({name}, "
            f"dtype=torch.float32)"
        )
    return x


def check_float(x: Tensor, name: str, tokens_hint: bool = True) -> None:
    if not x.is_floating_point():
        hint = ", or give the model an embedding (vocab_size=...) to read integer tokens" if tokens_hint else ""
        raise TypeError(
            f"{name} must hold floating-point values, got dtype {x.dtype}; convert it with {name}.float(){hint}"
        )


def all_finite(tensors) -> bool:
    """Whether every element of the floating-point ``tensors`` is finite, with one wait for the answer.

    Reads the smallest and largest element of each (``torch.aminmax``: a NaN anywhere makes both NaN, an inf is one
    of them) rather than ``torch.isfinite`` of every element, which builds a mask as large as the tensor: for the 1.2
    million weights of a CharLM (LSTM 512) 0.8 ms against 11 ms on one core of this project's machine. Equals
    ``all(bool(torch.isfinite(t).all()) for t in tensors)``."""
    ends = [end for t in tensors if t.numel() for end in torch.aminmax(t)]
    return not ends or bool(torch.isfinite(torch.stack(ends)).all())


def check_finite(x: Tensor, name: str) -> None:
    if not _TRUSTED.get() and x.is_floating_point() and not all_finite([x]):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(
            f"{name} must be finite, got NaN or inf (first at index {tuple(bad)}); fill or drop missing values "
            f"before passing them, e.g. torch.nan_to_num({name})"
        )


def check_sequence(x, input_size: int, name: str = "x") -> Tensor:
    """A float batch of sequences of shape (B, T, I) with T >= 1, I == input_size, all values finite."""
    check_tensor(x, name)
    if x.dim() != 3:
        hint = f"add a batch dimension with {name}.unsqueeze(0)" if x.dim() == 2 else "reshape it to (B, T, I)"
        raise ValueError(
            f"{name} must have 3 dimensions (batch, time, features), got {x.dim()} with shape {_shape(x)}; {hint}"
        )
    check_float(x, name)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {_shape(x)}; drop empty sequences")
    if x.shape[2] != input_size:
        raise ValueError(
            f"{name} must have input_size={input_size} features in its last dimension, got shape {_shape(x)}; "
            f"build the model with input_size={x.shape[2]} or fix the data"
        )
    check_finite(x, name)
    return x


def check_tokens(x, vocab_size: int, name: str = "x") -> Tensor:
    """An integer batch of token ids of shape (B, T), each in [0, vocab_size)."""
    check_tensor(x, name)
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have 2 dimensions (batch, time) of token ids, got {x.dim()} with shape {_shape(x)}"
        )
    if x.is_floating_point() or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype}; convert it with {name}.long()")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {_shape(x)}; drop empty sequences")
    if not _TRUSTED.get() and x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(
            f"{name} must hold token ids in [0, {vocab_size}), got values in [{int(x.min())}, {int(x.max())}]; "
            f"build the model with a larger vocab_size or map unknown tokens to an id below {vocab_size}"
        )
    return x


def check_lengths(lengths, batch: int, steps: int, name: str = "lengths") -> Tensor | None:
    """Per-sequence lengths: B integers in [1, T]. Returns a CPU int64 tensor, or None when lengths is None."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a sequence of integers, got {type(lengths).__name__}") from None
    if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"{name} must hold integers, got dtype {lengths.dtype}; convert it with {name}.long()")
    lengths = lengths.reshape(-1).to("cpu", torch.int64)
    if lengths.numel() != batch:
        raise ValueError(
            f"{name} must have one entry per sequence (batch size {batch}), got {lengths.numel()} entries"
        )
    if batch and int(lengths.min()) < 1:
        i = int(lengths.argmin())
        raise ValueError(
            f"{name} must be >= 1 (every sequence needs at least one step), got {name}[{i}]={int(lengths[i])}; "
            f"drop empty sequences before batching"
        )
    if batch and int(lengths.max()) > steps:
        i = int(lengths.argmax())
        raise ValueError(
            f"{name} must be <= the padded length T={steps} of the batch, got {name}[{i}]={int(lengths[i])}; "
            f"pad the batch to the longest sequence"
        )
    return lengths


def check_state(h, shape: tuple, name: str) -> None:
    check_tensor(h, name)
    if tuple(h.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (num_layers * num_directions, batch, hidden), "
            f"got {_shape(h)}"
        )
    check_float(h, name, tokens_hint=False)
    check_finite(h, name)


def check_cell_input(x, h, input_size: int, hidden_size: int) -> None:
    check_tensor(x, "x")
    if x.dim() != 2 or x.shape[1] != input_size:
        raise ValueError(f"x must have shape (batch, {input_size}) for one step, got {_shape(x)}")
    check_float(x, "x")
    if h is not None:
        check_tensor(h, "h")
        if h.shape != (x.shape[0], hidden_size):
            raise ValueError(f"h must have shape ({x.shape[0]}, {hidden_size}), got {_shape(h)}")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


MAX_WEIGHTS = 2**30  # 4 GiB of float32 weights in one layer: past what a CPU trains, so surely a typo


def check_weights(n: int, what: str, fix: str) -> None:
    """Refuse a layer of more than MAX_WEIGHTS weights before allocating it (a huge size from a config or a file)."""
    if n > MAX_WEIGHTS:
        raise ValueError(f"{what} needs {n:.3g} weights ({n * 4 / 2**30:.3g} GiB of float32), more than the limit of "
                         f"{MAX_WEIGHTS:.3g}; {fix}")


def check_probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)
