"""Audio in, features out: WAV files, resampling, mel filterbanks, log-mel and MFCC frames, SpecAugment masks.

Only torch, numpy and the standard library (``wave``) are used. A waveform is a 1-D float array in [-1, 1]; features
are ``(T, F)`` tensors, one row per frame (``T`` frames, ``F`` channels), batches ``(B, T, F)``.

Frames never look across each other (``center=False``, no deltas, no normalisation over time inside ``log_mel``),
so the features of a prefix of the samples are the first frames of the features of the whole: a streaming
transcriber computes them block by block.

References: Davis & Mermelstein (1980), "Comparison of parametric representations for monosyllabic word
recognition in continuously spoken sentences", IEEE Trans. ASSP 28(4) (MFCC); Young et al., The HTK Book
(the mel scale ``2595 log10(1 + f / 700)``); Slaney (1998), Auditory Toolbox, Interval Research Tech. Report
1998-010 (the mel scale linear below 1 kHz and logarithmic above, and area-normalised filters); Park et al. (2019),
"SpecAugment: a simple data augmentation method for automatic speech recognition", Interspeech (masking).
"""
import functools
import math
import wave
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["read_wav", "write_wav", "resample", "mel_filterbank", "log_mel", "mfcc", "Features", "normalize",
           "spec_augment"]

CONVERT = "convert it to 16-bit PCM, e.g. with `ffmpeg -i in.wav -acodec pcm_s16le out.wav`"


def _read(path, frames: bool):
    """``(channels, sample width, rate, frame count, raw bytes or None)`` of a WAV file; the errors of ``read_wav``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_wav: no file at {path}")
    try:
        with wave.open(str(path), "rb") as w:
            n = w.getnframes()
            return w.getnchannels(), w.getsampwidth(), w.getframerate(), n, w.readframes(n) if frames else None
    except (wave.Error, EOFError) as e:
        raise ValueError(f"read_wav: {path} is not a RIFF/WAVE file of integer PCM samples ({e or 'no header'}); "
                         f"{CONVERT}") from e


def read_wav(path) -> tuple[np.ndarray, int]:
    """Samples and sample rate of a PCM WAV file: ``(samples (N,) float32 in [-1, 1], rate)``.

    8-bit (unsigned), 16, 24 and 32-bit integer PCM are read; several channels are averaged to one.
    Compressed or floating-point WAV files, other formats and files without frames raise ``ValueError``.
    """
    path = Path(path)
    channels, width, rate, _, raw = _read(path, frames=True)
    n = len(raw) // (width * channels)
    if n == 0:
        raise ValueError(f"read_wav: {path} holds no audio (0 frames); give a WAV file with at least one sample")
    raw = raw[: n * width * channels]
    if width == 1:  # unsigned, 128 is zero
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:  # three little-endian bytes, two's complement
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    elif width == 4:
        x = (np.frombuffer(raw, "<i4") / float(1 << 31)).astype(np.float32)
    else:
        raise ValueError(f"read_wav: {path} has {8 * width}-bit samples; 8, 16, 24 or 32-bit PCM is read; {CONVERT}")
    x = x.reshape(n, channels).mean(axis=1, dtype=np.float32)  # (N,): the channels' mean
    return np.clip(x, -1.0, 1.0), rate


def wav_info(path) -> tuple[int, int, int]:
    """``(channels, sample rate, frames)`` of a WAV file, from its header alone; errors as ``read_wav``'s."""
    channels, _, rate, n, _ = _read(path, frames=False)
    return channels, rate, n


def write_wav(path, samples, sample_rate: int) -> None:
    """Write a 1-D waveform as a 16-bit PCM mono WAV file; values are clipped to [-1, 1]."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    _check_rate(sample_rate, "sample_rate")
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")  # read_wav's scale; +1 becomes 32767/32768
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def resample(samples, rate_in: int, rate_out: int, zeros: int = 32, beta: float = 8.6,
             rolloff: float = 0.95) -> np.ndarray:
    """Band-limited resampling by a Kaiser-windowed sinc, evaluated polyphase: ``(N,) -> (ceil(N * out / in),)``.

    Output sample ``m`` sits at input time ``t = m * rate_in / rate_out`` (the first samples coincide) and is
    ``sum_k x[k] h(k - t)`` with the low-pass ``h(u) = fc sinc(fc u) w(u)``, cut off at ``fc = rolloff *
    min(1, rate_out / rate_in)`` of the input's Nyquist frequency, ``w`` a Kaiser window (``beta``) over ``zeros``
    zero crossings on each side. Samples outside the input count as zero. Plain loop it equals::

        for m in range(n_out):
            t = m * rate_in / rate_out
            y[m] = sum(x[k] * fc * np.sinc(fc * (k - t)) * kaiser((k - t) / half) for k in range(len(x)))

    The weights depend only on ``t``'s fractional part, one of ``up = rate_out / gcd`` phases; each block of
    outputs computes the phases it needs once. Rates equal: a float32 copy.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"samples must be a 1-D waveform, got shape {tuple(x.shape)}; pass one channel")
    _check_rate(rate_in, "rate_in")
    _check_rate(rate_out, "rate_out")
    _check_int(zeros, "zeros", 1)
    if not 0 < rolloff <= 1 or not beta >= 0:
        raise ValueError(f"need 0 < rolloff <= 1 and beta >= 0, got rolloff={rolloff}, beta={beta}")
    if rate_in == rate_out:
        return x.astype(np.float32)
    g = math.gcd(int(rate_in), int(rate_out))
    up, down = int(rate_out) // g, int(rate_in) // g
    n_out = -(-len(x) * up // down)
    fc = rolloff * min(1.0, rate_out / rate_in)  # cut-off, a fraction of the input's Nyquist frequency
    half = zeros / fc  # the filter's half-length in input samples
    width = math.ceil(half)
    taps = np.arange(-width + 1, width + 1)  # (2W,) input samples around floor(t)
    xp = np.concatenate([np.zeros(width), x, np.zeros(width + 1)])  # zeros outside the input
    y = np.empty(n_out)
    block = max(1, 2 ** 18 // len(taps))
    for start in range(0, n_out, block):
        num = np.arange(start, min(start + block, n_out), dtype=np.int64) * down  # t = num / up
        base, phase = num // up, num % up
        phases, which = np.unique(phase, return_inverse=True)
        u = taps[None, :] - phases[:, None] / up  # (P, 2W): k - t for each phase
        window = np.i0(beta * np.sqrt(np.clip(1.0 - (u / half) ** 2, 0.0, None))) / np.i0(beta)
        h = fc * np.sinc(fc * u) * np.where(np.abs(u) < half, window, 0.0)  # (P, 2W)
        y[start:start + len(num)] = (xp[base[:, None] + taps[None, :] + width] * h[which]).sum(axis=1)
    return y.astype(np.float32)


def _hz_to_mel(f: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    # Slaney: 3 mels per 200 Hz up to 1 kHz, then log-spaced with 27 steps per factor 6.4
    linear, step = 200.0 / 3.0, math.log(6.4) / 27.0
    return np.where(f < 1000.0, f / linear, 1000.0 / linear + np.log(np.maximum(f, 1e-10) / 1000.0) / step)


def _mel_to_hz(m: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    linear, step = 200.0 / 3.0, math.log(6.4) / 27.0
    return np.where(m < 1000.0 / linear, m * linear, 1000.0 * np.exp(step * (m - 1000.0 / linear)))


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None,
                   scale: str = "htk", norm: str | None = None) -> Tensor:
    """Triangular filters on the mel scale, ``(n_fft // 2 + 1, n_mels)`` float32: ``power (T, n_fft//2+1) @ fb``.

    ``n_mels + 2`` edges are spaced evenly in mels from ``f_min`` to ``f_max`` (default ``sample_rate / 2``);
    filter ``i`` rises from edge ``i`` to 1 at edge ``i+1`` and falls to 0 at edge ``i+2``, read at the FFT bins'
    frequencies ``k * sample_rate / n_fft``. ``scale``: "htk" (``2595 log10(1 + f/700)``) or "slaney" (linear below
    1 kHz, logarithmic above). ``norm="slaney"`` scales each triangle by ``2 / (its width in Hz)`` so that each has
    unit area, as librosa and torchaudio do; ``None`` leaves peaks at 1.
    """
    _check_int(n_mels, "n_mels", 1)
    _check_int(n_fft, "n_fft", 2)
    _check_rate(sample_rate, "sample_rate")
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2:g}, got f_min={f_min}, "
                         f"f_max={f_max}; choose frequencies inside the band the audio holds")
    if scale not in ("htk", "slaney"):
        raise ValueError(f"scale must be 'htk' or 'slaney', got {scale!r}")
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    lo, hi = _hz_to_mel(np.array([f_min, f_max], dtype=np.float64), scale)
    edges = _mel_to_hz(np.linspace(lo, hi, n_mels + 2), scale)  # (n_mels + 2,) Hz
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (K,) each bin's frequency, Hz
    rise = (bins[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])  # (K, n_mels), 1 at the centre
    fall = (edges[None, 2:] - bins[:, None]) / (edges[2:] - edges[1:-1])  # (K, n_mels), 1 at the centre
    fb = np.maximum(0.0, np.minimum(rise, fall))  # (K, n_mels)
    if norm == "slaney":
        fb = fb * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    empty = np.flatnonzero(fb.max(axis=0) <= 0)
    if len(empty):
        warnings.warn(f"mel_filterbank: {len(empty)} of {n_mels} filters cover no FFT bin (first: {empty[0]}); "
                      f"use fewer n_mels or a larger n_fft", stacklevel=2)
    return torch.from_numpy(fb.astype(np.float32))


@functools.lru_cache(maxsize=32)
def _filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float | None) -> Tensor:
    """``mel_filterbank`` built once per setting (a stream computes features for every block); read-only."""
    return mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)


def log_mel(samples, sample_rate: int, n_mels: int = 40, win_length: int | None = None, hop_length: int | None = None,
            n_fft: int | None = None, f_min: float = 20.0, f_max: float | None = None,
            floor: float = 1e-10) -> Tensor:
    """Log mel filterbank energies, ``(N,) -> (T, n_mels)`` float32, ``T = 1 + (N - win_length) // hop_length``.

    Frames of ``win_length`` samples (default 25 ms) every ``hop_length`` (default 10 ms), a periodic Hann window,
    zero-padded to ``n_fft`` (default the next power of two >= ``win_length``), the power spectrum ``|rfft|^2``
    through ``mel_filterbank(scale="htk", norm=None)``, then ``ln(max(energy, floor))``. Audio shorter than a
    window gives ``(0, n_mels)``. Plain loop it equals::

        for t in range(T):
            frame = x[t * hop_length: t * hop_length + win_length] * hann
            out[t] = log(clamp(abs(rfft(frame, n_fft)) ** 2 @ fb, floor))
    """
    x = samples.float() if torch.is_tensor(samples) else torch.from_numpy(np.asarray(samples, dtype=np.float32))
    if x.ndim != 1:
        raise ValueError(f"samples must be a 1-D waveform, got shape {tuple(x.shape)}; pass one channel")
    _check_rate(sample_rate, "sample_rate")
    win_length = round(0.025 * sample_rate) if win_length is None else win_length
    hop_length = round(0.010 * sample_rate) if hop_length is None else hop_length
    _check_int(win_length, "win_length", 2)
    _check_int(hop_length, "hop_length", 1)
    n_fft = 1 << (win_length - 1).bit_length() if n_fft is None else n_fft
    _check_int(n_fft, "n_fft", win_length)
    fb = _filterbank(n_mels, n_fft, sample_rate, f_min, f_max).to(x.device)  # (K, n_mels)
    if len(x) < win_length:
        return torch.zeros(0, n_mels, device=x.device)
    # torch.stft centres the window in each n_fft frame; padding (n_fft - win_length) // 2 zeros in front makes
    # frame t's window start at sample t * hop_length, and the zeros behind keep T = 1 + (N - win) // hop.
    left = (n_fft - win_length) // 2
    x = torch.nn.functional.pad(x, (left, n_fft - win_length - left))
    spec = torch.stft(x, n_fft, hop_length, win_length, torch.hann_window(win_length, device=x.device),
                      center=False, return_complex=True)  # (K, T)
    power = spec.abs().pow(2).T  # (T, K)
    return torch.log(torch.clamp(power @ fb, min=floor))  # (T, n_mels)


def _dct_matrix(n_in: int, n_out: int) -> Tensor:
    """Orthonormal DCT-II as a matrix ``(n_in, n_out)``: ``x @ D`` keeps the first ``n_out`` coefficients."""
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)  # (n_in, n_out)
    d[:, 0] /= math.sqrt(2.0)  # the constant term's scale, sqrt(1 / n_in)
    return d.float()


def mfcc(samples, sample_rate: int, n_mfcc: int = 13, n_mels: int = 40, win_length: int | None = None,
         hop_length: int | None = None, n_fft: int | None = None, f_min: float = 20.0, f_max: float | None = None,
         floor: float = 1e-10) -> Tensor:
    """Mel-frequency cepstral coefficients, ``(N,) -> (T, n_mfcc)``: the orthonormal DCT-II of ``log_mel`` (same
    arguments) over its mel channels, the first ``n_mfcc`` kept (coefficient 0 included)."""
    _check_int(n_mfcc, "n_mfcc", 1)
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc must be <= n_mels ({n_mels}), got {n_mfcc}; keep fewer coefficients or add mels")
    logs = log_mel(samples, sample_rate, n_mels, win_length, hop_length, n_fft, f_min, f_max, floor)  # (T, M)
    return logs @ _dct_matrix(n_mels, n_mfcc).to(logs.device)  # (T, n_mfcc)


@dataclass(frozen=True)
class Features:
    """Feature settings, stored in a model's config: ``Features(**f.to_dict()) == f``.

    ``f(samples, rate)`` resamples to ``sample_rate`` where ``rate`` differs, then gives ``(T, f.size)`` frames.
    """

    kind: str = "mfcc"  # "mfcc" | "logmel"
    sample_rate: int = 8000  # Hz the features are computed at; audio at another rate is resampled first
    n_mels: int = 40  # mel filters between f_min and f_max
    n_mfcc: int = 13  # cepstral coefficients kept (kind="mfcc"), coefficient 0 included
    win_ms: float = 25.0  # frame length, milliseconds
    hop_ms: float = 10.0  # frame step, milliseconds
    f_min: float = 20.0  # lowest filter edge, Hz: below lies hum, not speech
    f_max: float | None = None  # highest filter edge, Hz; None: the Nyquist frequency, sample_rate / 2

    def __post_init__(self):
        if self.kind not in ("mfcc", "logmel"):
            raise ValueError(f"Features: kind must be 'mfcc' or 'logmel', got {self.kind!r}")
        _check_rate(self.sample_rate, "Features: sample_rate")
        _check_int(self.n_mels, "Features: n_mels", 1)
        _check_int(self.n_mfcc, "Features: n_mfcc", 1)
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"Features: n_mfcc must be <= n_mels ({self.n_mels}), got {self.n_mfcc}")
        for name in ("win_ms", "hop_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Features: {name} must be a positive number of milliseconds, got {value!r}")
        if self.win_length < 2 or self.hop_length < 1:
            raise ValueError(f"Features: a frame of {self.win_ms} ms every {self.hop_ms} ms at {self.sample_rate} Hz "
                             f"is {self.win_length} samples every {self.hop_length}; lengthen win_ms or hop_ms")
        f_max = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0 <= self.f_min < f_max <= self.sample_rate / 2:
            raise ValueError(f"Features: need 0 <= f_min < f_max <= sample_rate / 2 = {self.sample_rate / 2:g}, got "
                             f"f_min={self.f_min}, f_max={self.f_max}")

    @property
    def win_length(self) -> int:
        """Samples per frame."""
        return round(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        """Samples between the starts of two frames."""
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def size(self) -> int:
        """Channels per frame, ``F``."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def frames(self, n_samples: int) -> int:
        """Frames in ``n_samples`` samples at ``sample_rate``: ``1 + (n - win) // hop``, 0 below one window."""
        return 0 if n_samples < self.win_length else 1 + (n_samples - self.win_length) // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, samples, sample_rate: int | None = None) -> Tensor:
        """``(N,)`` samples at ``sample_rate`` (default ``self.sample_rate``) -> ``(T, size)`` float32."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            if torch.is_tensor(samples):
                samples = samples.detach().cpu().numpy()
            samples = resample(samples, sample_rate, self.sample_rate)
        args = dict(n_mels=self.n_mels, win_length=self.win_length, hop_length=self.hop_length, f_min=self.f_min,
                    f_max=self.f_max)
        if self.kind == "mfcc":
            return mfcc(samples, self.sample_rate, self.n_mfcc, **args)
        return log_mel(samples, self.sample_rate, **args)


def normalize(features: Tensor, eps: float = 1e-5) -> Tensor:
    """Each channel to zero mean and unit variance over the frames of one utterance: ``(T, F) -> (T, F)``.

    ``(x - mean) / sqrt(var + eps)``: a constant channel gives zeros, never NaN; no frames give no frames.
    """
    x = torch.as_tensor(features)
    if x.ndim != 2:
        raise ValueError(f"features must be (T, F), got shape {tuple(x.shape)}")
    if len(x) == 0:
        return x.clone()
    mean = x.mean(dim=0, keepdim=True)  # (1, F)
    var = x.var(dim=0, correction=0, keepdim=True)  # (1, F)
    return (x - mean) / torch.sqrt(var + eps)


def spec_augment(x: Tensor, lengths: Tensor | None = None, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_width: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """SpecAugment's masks, without time warping: ``(B, T, F) -> (B, T, F)``, a new tensor.

    In each sequence ``b`` with ``L_b = lengths[b]`` real steps (all ``T`` when ``lengths`` is None):
    ``freq_masks`` bands of ``w ~ U{1..freq_width}`` channels and ``time_masks`` spans of
    ``w ~ U{1..max(1, floor(time_width * L_b))}`` steps, each at a uniform position, are set to 0 (the mean of
    normalised features). Padding (steps ``>= L_b``) is left as it is. A seeded ``generator`` makes it repeatable.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be (B, T, F), got shape {tuple(x.shape)}")
    B, T, F = x.shape
    for name, value in (("freq_masks", freq_masks), ("freq_width", freq_width), ("time_masks", time_masks)):
        _check_int(value, name, 0)
    if not 0 <= time_width <= 1:
        raise ValueError(f"time_width must be a fraction of each sequence's length in [0, 1], got {time_width}")
    lengths = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths).detach().cpu().long()
    if lengths.shape != (B,) or (B and (lengths.min() < 0 or lengths.max() > T)):
        raise ValueError(f"lengths must be (B,) = ({B},) counts in [0, {T}], got {lengths.tolist()}")

    def spans(n: int, width: Tensor, size: Tensor, extent: int) -> Tensor:
        """(B, extent) bool: n spans per row, widths 1..width[b] at uniform places inside the first size[b]."""
        if n == 0:
            return torch.zeros(B, extent, dtype=torch.bool)
        width = torch.minimum(width, size)[:, None]  # (B, 1)
        w = 1 + (torch.rand(B, n, generator=generator) * width).long()  # (B, n) in 1..width
        start = (torch.rand(B, n, generator=generator) * (size[:, None] - w + 1)).long()  # (B, n)
        pos = torch.arange(extent)[None, None, :]  # (1, 1, extent)
        inside = (pos >= start[..., None]) & (pos < (start + w)[..., None]) & (width[..., None] > 0)
        return inside.any(dim=1)  # (B, extent)

    channels = torch.full((B,), F)
    band = spans(freq_masks if freq_width else 0, torch.full((B,), freq_width), channels, F)  # (B, F)
    longest = torch.clamp((time_width * lengths).floor().long(), min=1)  # (B,)
    span = spans(time_masks, longest, lengths, T)  # (B, T)
    real = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    mask = (span[:, :, None] | band[:, None, :]) & real[:, :, None]  # (B, T, F)
    return x.masked_fill(mask.to(x.device), 0.0)


def _check_int(value, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _check_rate(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number of samples per second (e.g. 16000), got {value!r}")
