"""Augmentation of numeric sequences in training, for small training sets (Le Guennec et al. 2016; Iwana & Uchida
2021): each batch is seen through a fresh random window, gain and noise, so a network of a few thousand updates on
a few dozen sequences sees a different version of them each time. It acts in training only; in evaluation the
sequences pass unchanged.

Example:
    >>> aug = Augment().train()
    >>> x, lengths = aug(torch.randn(4, 100, 3), torch.tensor([100, 90, 80, 70]))
    >>> lengths.tolist()                        # windows of 90% of each sequence
    [90, 81, 72, 63]
"""
import torch
from torch import Tensor, nn


class Augment(nn.Module):
    """Window slicing, scaling and jitter of standardised (B, T, F) sequences.

    window: the fraction of each sequence kept, from a random start (window slicing; 1 keeps all of it).
    scale: the std of one gain per sequence and channel, around 1 (scaling).
    jitter: the std of the noise added to every step (jitter), in units of the standardised data.
    """

    def __init__(self, window: float = 0.9, scale: float = 0.1, jitter: float = 0.03):
        super().__init__()
        if not 0 < window <= 1:
            raise ValueError(f"window must be in (0, 1], got {window!r}")
        if scale < 0 or jitter < 0:
            raise ValueError(f"scale and jitter must be >= 0, got {scale!r} and {jitter!r}")
        self.window, self.scale, self.jitter = window, scale, jitter

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if not self.training:
            return x, lengths
        B, T, F = x.shape
        full = torch.full((B,), T, dtype=torch.int64) if lengths is None else lengths.to("cpu", torch.int64)
        if self.window < 1:
            kept = torch.clamp((full.double() * self.window - 1e-9).ceil().long(), min=1)
            start = (torch.rand(B) * (full - kept + 1)).long()  # uniform over the windows that fit
            width = int(kept.max())
            steps = torch.arange(width)[None, :] + start[:, None]  # (B, width)
            steps = torch.minimum(steps, (full - 1)[:, None]).to(x.device)  # past a window's end: masked below
            x = torch.gather(x, 1, steps[..., None].expand(B, width, F))
            x = x * (torch.arange(width, device=x.device)[None, :] < kept.to(x.device)[:, None])[..., None]
            lengths = kept if lengths is not None or bool((kept != width).any()) else None
        if self.scale > 0:
            x = x * (1 + self.scale * torch.randn(B, 1, F, device=x.device, dtype=x.dtype))
        if self.jitter > 0:
            noise = self.jitter * torch.randn_like(x)
            if lengths is not None:  # padding stays zero
                noise = noise * (torch.arange(x.shape[1], device=x.device)[None, :]
                                 < lengths.to(x.device)[:, None])[..., None]
            x = x + noise
        return x, lengths

    def extra_repr(self) -> str:
        return f"window={self.window}, scale={self.scale}, jitter={self.jitter}"

