"""Spoken-digit utterances from the Free Spoken Digit Dataset: clips, the official split, strings of digits.

FSDD (Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0) holds one spoken digit per
WAV file, ``recordings/{digit}_{speaker}_{take}.wav``, 8 kHz mono 16-bit; takes 0-4 of every speaker and digit are
the official test set, takes 5-49 training. ``digit_strings`` makes utterances of several digits by joining clips
of one speaker with random pauses; their transcripts are the digits separated by spaces, ``"3 9 1 4"``.
Augmentation (gain, speed, white noise at a random signal-to-noise ratio) follows the usual practice of speech
recognition recipes, e.g. Ko et al. (2015), "Audio augmentation for speech recognition", Interspeech (speed).
"""
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnr.data.audio import read_wav, resample
from rnr.data.datasets import data_dir

__all__ = ["Clip", "load_fsdd", "join_clips", "perturb", "digit_strings", "TEST_TAKES"]

TEST_TAKES = range(0, 5)  # the official split: takes 0-4 test, 5-49 training
NAME = re.compile(r"(\d)_([^_]+)_(\d+)\.wav")


class Clip(NamedTuple):
    """One recording of one digit."""

    path: Path  # the WAV file
    text: str  # the digit spoken, "0" to "9"
    speaker: str  # e.g. "jackson"
    take: int  # 0-49; takes 0-4 are the official test set


def load_fsdd(root=None) -> tuple[list[Clip], list[Clip]] | None:
    """(training clips, test clips) of FSDD by the official split, each sorted by speaker, digit and take.

    ``root`` is the folder holding ``recordings/`` (default ``data_dir() / "fsdd"``); None when it is not given
    and the data is absent. A WAV file whose name is not ``{digit}_{speaker}_{take}.wav`` raises ``ValueError``.
    """
    if root is None:
        base = data_dir()
        if base is None or not (base / "fsdd" / "recordings").is_dir():
            return None
        root = base / "fsdd"
    folder = Path(root) / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(f"load_fsdd: no folder {folder}; root must hold FSDD's recordings/ folder")
    clips = []
    for path in folder.glob("*.wav"):
        match = NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"load_fsdd: {path} is not named {{digit}}_{{speaker}}_{{take}}.wav (e.g. "
                             f"3_jackson_12.wav); rename it or move it out of {folder}")
        digit, speaker, take = match.groups()
        clips.append(Clip(path, digit, speaker, int(take)))
    clips.sort(key=lambda c: (c.speaker, c.text, c.take))
    train = [c for c in clips if c.take not in TEST_TAKES]
    test = [c for c in clips if c.take in TEST_TAKES]
    return train, test


def _check_range(value, name: str) -> tuple[float, float]:
    if len(value) != 2 or not 0 <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def join_clips(pieces: list[np.ndarray], rng: np.random.Generator, sample_rate: int = 8000,
               pause: tuple[float, float] = (0.05, 0.3), edge: tuple[float, float] = (0.0, 0.2)) -> np.ndarray:
    """The pieces ``(N_i,)`` one after another, ``(N,)`` float32, with silences of random length (seconds, uniform
    in ``pause``) between them and of length uniform in ``edge`` before the first and after the last."""
    if len(pieces) == 0:
        raise ValueError("join_clips needs at least one piece, got an empty list")
    pause, edge = _check_range(pause, "pause"), _check_range(edge, "edge")

    def silence(low_high):
        return np.zeros(round(rng.uniform(*low_high) * sample_rate), np.float32)

    out = [silence(edge)]
    for i, piece in enumerate(pieces):
        if i:
            out.append(silence(pause))
        out.append(np.asarray(piece, dtype=np.float32).reshape(-1))
    out.append(silence(edge))
    return np.concatenate(out)


def perturb(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = 8000,
            gain_db: tuple[float, float] | None = (-6, 6), speed: tuple[float, float] | None = (0.9, 1.1),
            snr_db: tuple[float, float] | None = (15, 40)) -> np.ndarray:
    """A randomly changed copy of a waveform ``(N,) -> (about N / speed,)`` float32; None turns a change off.

    ``speed``: a factor ``s`` drawn uniformly; the samples are taken to be at ``s * sample_rate`` and resampled to
    ``sample_rate``, so tempo and pitch both rise by ``s`` (the new rate is rounded to a multiple of 20 Hz, which
    keeps the resampler's phases few). ``gain_db``: a gain drawn uniformly in decibels. ``snr_db``: white Gaussian
    noise at a signal-to-noise ratio drawn uniformly in decibels, against the mean power of the (changed) samples.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if speed is not None:
        low, high = speed
        if not 0 < low <= high:
            raise ValueError(f"speed must be a range (low, high) of factors with 0 < low <= high, got {speed!r}")
        rate = max(20, round(rng.uniform(low, high) * sample_rate / 20) * 20)
        x = resample(x, rate, sample_rate).astype(np.float64)
    if gain_db is not None:
        x = x * 10 ** (rng.uniform(*gain_db) / 20)
    if snr_db is not None:
        power = np.mean(x ** 2) if len(x) else 0.0
        x = x + rng.normal(0.0, np.sqrt(power / 10 ** (rng.uniform(*snr_db) / 10)), len(x))
    return x.astype(np.float32)


def digit_strings(clips: list[Clip], n: int, min_digits: int = 1, max_digits: int = 7, seed: int = 0,
                  augment: bool = False, sample_rate: int = 8000) -> tuple[list[np.ndarray], list[str]]:
    """``n`` utterances of spoken digits and their transcripts: ``([(N_i,) float32], ["3 9 1 4", ...])``.

    Each utterance has one speaker (drawn uniformly among the clips' speakers) saying a uniform number of digits
    in ``[min_digits, max_digits]``, each digit drawn uniformly among those the speaker has and its clip among the
    speaker's clips of it, joined by ``join_clips``. ``augment``: each clip gets ``perturb``'s gain and speed
    before joining, the whole utterance white noise (so the pauses are noisy too). Clips are resampled to
    ``sample_rate`` where theirs differs. The same seed gives the same utterances.
    """
    if len(clips) == 0:
        raise ValueError("digit_strings needs clips, got none; load them with load_fsdd()")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a whole number of utterances >= 0, got {n!r}")
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got min_digits={min_digits}, max_digits={max_digits}")
    by_speaker: dict[str, dict[str, list[Clip]]] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, {}).setdefault(clip.text, []).append(clip)
    speakers = sorted(by_speaker)
    cache: dict[Path, np.ndarray] = {}  # each WAV read once

    def samples(clip: Clip) -> np.ndarray:
        if clip.path not in cache:
            x, rate = read_wav(clip.path)
            cache[clip.path] = resample(x, rate, sample_rate)
        return cache[clip.path]

    rng = np.random.default_rng(seed)
    waves, texts = [], []
    for _ in range(n):
        own = by_speaker[speakers[rng.integers(len(speakers))]]
        digits = sorted(own)
        said = [digits[rng.integers(len(digits))] for _ in range(rng.integers(min_digits, max_digits + 1))]
        pieces = [samples(own[d][rng.integers(len(own[d]))]) for d in said]
        if augment:
            pieces = [perturb(p, rng, sample_rate, snr_db=None) for p in pieces]
        x = join_clips(pieces, rng, sample_rate)
        if augment:
            x = perturb(x, rng, sample_rate, gain_db=None, speed=None)
        waves.append(x)
        texts.append(" ".join(said))
    return waves, texts
