"""A convolutional front end that reads a sequence before the recurrence (LSTM-FCN's idea, Karim et al. 2018).

``ConvFront`` stacks 1-d convolutions over time ("same" padding), each followed by a batch normalisation and a
ReLU, as the fully convolutional network of Wang et al. (2017) does; the recurrent layers then read its output.
Ragged batches give the result each sequence gets alone: the steps past a sequence's end are zeroed after every
layer (so the next convolution sees the zeros that padding alone would give), and the normalisation's statistics
count real steps only.

An optional ``stride`` keeps every s-th step after the convolutions (a sequence of length L becomes ceil(L/s)
steps), so that the recurrence over a long sequence runs s times fewer steps.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnr.core.checks import check_positive_int

LAYERS = ((128, 8), (256, 5), (128, 3))  # (channels, kernel) of FCN (Wang et al. 2017)


class MaskedBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over (B, C, T) whose training statistics count only the real steps (mask (B, T))."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None or not self.training:
            return super().forward(x)
        m = mask[:, None, :].to(x)  # (B, 1, T)
        n = m.sum()
        mean = (x * m).sum((0, 2)) / n
        var = (((x - mean[None, :, None]) * m) ** 2).sum((0, 2)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            unbiased = var * n / (n - 1).clamp(min=1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
        x = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return x * self.weight[None, :, None] + self.bias[None, :, None]


class ConvFront(nn.Module):
    """Convolutions over time before the recurrence: (B, T, I) -> (B, ceil(T/stride), channels of the last layer).

    Args:
        input_size: features per step.
        layers: (channels, kernel) per convolution.
        stride: keep every stride-th step of the last layer's output.
    """

    def __init__(self, input_size: int, layers=LAYERS, stride: int = 1):
        super().__init__()
        self.stride = check_positive_int(stride, "stride")
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        width = input_size
        for channels, kernel in layers:
            self.convs.append(nn.Conv1d(width, channels, kernel))
            self.norms.append(MaskedBatchNorm(channels))
            width = channels
        self.output_size = width

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """x (B, T, I) with each sequence's real length in ``lengths`` (None: all T); returns the features and the
        new lengths."""
        T = x.shape[1]
        mask = None if lengths is None else torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        h = x.transpose(1, 2)  # (B, I, T)
        if mask is not None:
            h = h * mask[:, None, :].to(h)  # whatever the padding holds, the first convolution reads zeros there
        for conv, norm in zip(self.convs, self.norms):
            k = conv.kernel_size[0]
            h = torch.relu(norm(conv(F.pad(h, ((k - 1) // 2, k // 2))), mask))  # "same": T steps out
            if mask is not None:
                h = h * mask[:, None, :].to(h)
        h = h[:, :, :: self.stride].transpose(1, 2)  # (B, ceil(T/s), C)
        if lengths is not None and self.stride > 1:
            lengths = (lengths + self.stride - 1) // self.stride
        return h, lengths
