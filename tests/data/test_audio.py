"""rnr.data.audio against references: scipy's resampler and DCT, plain numpy loops, and numbers computed by librosa.

scipy is a test-only package here (imported inside the tests that use it); librosa is no dependency at all: its
numbers were computed once in a separate virtual environment and are written below with the call that made them.
"""
import json
import math
import struct
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from rnr.data.audio import (Features, log_mel, mel_filterbank, mfcc, normalize, read_wav, resample, spec_augment,
                            write_wav)


def wav_file(path, data: bytes, bits: int, channels: int = 1, rate: int = 8000, tag: int = 1):
    """A RIFF/WAVE file written byte by byte: ``tag`` 1 is integer PCM, 3 IEEE float."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def sines(rate: int, seconds: float, parts=((0.5, 300.0, 0.0), (0.3, 1000.0, 0.7), (0.15, 2200.0, 1.9))):
    t = np.arange(round(rate * seconds)) / rate
    return sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in parts)


# ---- WAV files ----

def test_write_then_read_gives_the_samples_back_to_16_bit_precision(tmp_path):
    x = np.sin(np.arange(1000) / 7.0).astype(np.float32) * 0.9
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and y.dtype == np.float32 and y.shape == (1000,)
    assert np.abs(y - x).max() <= 0.5 / 32768 + 1e-8  # rounding only


def test_write_clips_to_plus_minus_one(tmp_path):
    write_wav(tmp_path / "a.wav", np.array([-3.0, 0.0, 3.0]), 8000)
    y, _ = read_wav(tmp_path / "a.wav")
    assert y[0] == -1.0 and y[1] == 0.0 and y[2] == 32767 / 32768


@pytest.mark.parametrize("bits, data, expected", [
    (8, bytes([0, 128, 255, 64]), [-1.0, 0.0, 127 / 128, -0.5]),
    (16, struct.pack("<4h", -32768, 0, 16384, 32767), [-1.0, 0.0, 0.5, 32767 / 32768]),
    (24, b"\x00\x00\x80" + b"\x00\x00\x00" + b"\x00\x00\x40" + b"\xff\xff\xff", [-1.0, 0.0, 0.5, -2 ** -23]),
    (32, struct.pack("<4i", -2 ** 31, 0, 2 ** 30, -1), [-1.0, 0.0, 0.5, -2 ** -31]),
])
def test_read_wav_scales_every_pcm_width_to_plus_minus_one(tmp_path, bits, data, expected):
    y, rate = read_wav(wav_file(tmp_path / "a.wav", data, bits))
    assert rate == 8000 and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, atol=1e-7)


def test_read_wav_averages_the_channels(tmp_path):
    data = struct.pack("<6h", 16384, 0, -16384, -16384, 8192, 8192)  # frames (L, R)
    y, _ = read_wav(wav_file(tmp_path / "a.wav", data, 16, channels=2))
    np.testing.assert_allclose(y, [0.25, -0.5, 0.25])


def test_read_wav_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_wav(tmp_path / "nope.wav")
    text = tmp_path / "text.wav"
    text.write_text("not audio at all")
    with pytest.raises(ValueError, match=r"text\.wav is not a RIFF/WAVE file .*ffmpeg -i in.wav -acodec pcm_s16le"):
        read_wav(text)
    floats = wav_file(tmp_path / "float.wav", struct.pack("<2f", 0.1, 0.2), 32, tag=3)
    with pytest.raises(ValueError, match=r"float\.wav is not a RIFF/WAVE file of integer PCM .*pcm_s16le"):
        read_wav(floats)
    empty = wav_file(tmp_path / "empty.wav", b"", 16)
    with pytest.raises(ValueError, match=r"empty\.wav holds no audio \(0 frames\)"):
        read_wav(empty)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="zero.wav"):
        read_wav(tmp_path / "zero.wav")


# ---- resampling ----

@pytest.mark.parametrize("rate_in, rate_out", [(8000, 16000), (16000, 8000), (44100, 8000)])
def test_resample_agrees_with_scipy_resample_poly_and_with_the_sines_themselves(rate_in, rate_out):
    from scipy.signal import resample_poly  # optional: scipy is installed for the tests only

    x = sines(rate_in, 0.5)
    ours = resample(x, rate_in, rate_out)
    g = math.gcd(rate_in, rate_out)
    theirs = resample_poly(x, rate_out // g, rate_in // g)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (math.ceil(len(x) * rate_out / rate_in),)
    inner = slice(rate_out // 20, -rate_out // 20)  # 50 ms in from each end, where the zeros outside do not reach
    # measured: ours within 2.3e-6 of the exact sines, scipy's within 1e-3 (its shorter Kaiser beta=5 filter ripples
    # in the pass band), so the two within 1e-3; the bounds leave a factor of 2 to 4
    assert np.abs(ours[inner] - theirs[inner]).max() < 2e-3
    assert np.abs(ours[inner] - sines(rate_out, 0.5)[inner]).max() < 1e-5


@pytest.mark.parametrize("rate_in, rate_out", [(44100, 8000), (8000, 16000), (8000, 11025)])
def test_resample_keeps_a_1_khz_tone_at_1_khz(rate_in, rate_out):
    y = resample(np.sin(2 * np.pi * 1000 * np.arange(rate_in) / rate_in), rate_in, rate_out)  # one second
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) * rate_out / len(y) == pytest.approx(1000, abs=1)
    assert np.abs(y[100:-100]).max() == pytest.approx(1.0, abs=2e-3)


def test_resample_removes_what_the_new_rate_cannot_hold():
    x = np.sin(2 * np.pi * 6000 * np.arange(16000) / 16000)  # above 4 kHz, the Nyquist frequency at 8 kHz
    assert np.abs(resample(x, 16000, 8000)[200:-200]).max() < 1e-3


def test_resample_filter_settings_have_their_effect():
    x, exact, inner = sines(8000, 0.5), sines(16000, 0.5), slice(800, -800)

    def error(y):
        return np.abs(y[inner] - exact[inner]).max()

    best = error(resample(x, 8000, 16000))
    assert error(resample(x, 8000, 16000, zeros=4)) > 10 * best  # a short filter ripples in the pass band
    assert error(resample(x, 8000, 16000, beta=1.0)) > 10 * best  # a window close to a rectangle too
    low = resample(x, 8000, 16000, rolloff=0.4)  # cut at 1.6 kHz: the 2.2 kHz sine goes, 300 Hz and 1 kHz stay
    kept = sines(16000, 0.5, parts=((0.5, 300.0, 0.0), (0.3, 1000.0, 0.7)))
    assert np.abs(low[inner] - kept[inner]).max() < 1e-3
    with pytest.raises(ValueError, match="need 0 < rolloff <= 1"):
        resample(x, 8000, 16000, rolloff=1.5)


def test_resample_at_the_same_rate_is_a_float32_copy_and_bad_input_is_refused():
    x = np.arange(5.0)
    y = resample(x, 8000, 8000)
    assert y.dtype == np.float32 and np.array_equal(y, x) and not np.shares_memory(x, y)
    assert resample(np.zeros(0), 8000, 16000).shape == (0,)
    with pytest.raises(ValueError, match="1-D waveform"):
        resample(np.zeros((2, 5)), 8000, 16000)
    with pytest.raises(ValueError, match="rate_out must be a positive whole number"):
        resample(x, 8000, 0)


# ---- mel filterbank ----

def test_mel_filterbank_shape_peaks_and_validation():
    fb = mel_filterbank(40, 256, 8000, f_min=20, f_max=4000)
    assert fb.shape == (129, 40) and fb.dtype == torch.float32
    assert fb.max() <= 1 and (fb.argmax(dim=0).diff() >= 0).all()  # peaks at most 1, rising with the filter index
    with pytest.raises(ValueError, match=r"f_max <= sample_rate / 2 = 4000, got f_min=0.0, f_max=5000"):
        mel_filterbank(40, 256, 8000, f_max=5000)
    with pytest.raises(ValueError, match="scale must be 'htk' or 'slaney', got 'mel'"):
        mel_filterbank(40, 256, 8000, scale="mel")
    with pytest.raises(ValueError, match="norm must be None or 'slaney'"):
        mel_filterbank(40, 256, 8000, norm="area")
    with pytest.warns(UserWarning, match="cover no FFT bin"):
        mel_filterbank(128, 64, 8000)


# Reference numbers from librosa 0.11.0 (numpy 2.4.6, Python 3.11), computed once in a throwaway virtual environment
# outside the project; librosa returns (n_mels, n_fft // 2 + 1), the transpose of ours. The calls:
#   librosa.filters.mel(sr=8000, n_fft=256, n_mels=40, fmin=20, fmax=4000, htk=True, norm=None)       -> HTK
#   librosa.filters.mel(sr=8000, n_fft=256, n_mels=40, fmin=20, fmax=4000, htk=False, norm="slaney")  -> SLANEY
# each filter's peak bin (.argmax(axis=1)), each filter's sum (.sum(axis=1)) and a few entries [filter, bin].
HTK_ARGMAX = [2, 3, 4, 5, 7, 8, 9, 11, 12, 14, 16, 18, 19, 21, 23, 26, 28, 30, 33, 35, 38, 41, 44, 47, 50, 53, 57, 61,
              64, 69, 73, 77, 82, 87, 92, 97, 103, 109, 115, 121]
HTK_SUMS = [1.0846624, 1.1459786, 1.3193395, 1.2183763, 1.2431358, 1.5038186, 1.373378, 1.5768167, 1.4930409,
            1.7936852, 1.6999319, 1.808707, 1.9130347, 2.0084126, 2.0954325, 2.1746511, 2.2904663, 2.4542835,
            2.4592745, 2.6635523, 2.7673297, 2.8727574, 3.0148115, 3.144413, 3.3544357, 3.4311924, 3.657316,
            3.7814951, 3.9754896, 4.1525679, 4.3658171, 4.5509653, 4.7912283, 4.9821281, 5.2470207, 5.4636722,
            5.7439933, 5.9886374, 6.2939477, 6.556324]
HTK_ENTRIES = {(0, 1): 0.33371949, (0, 2): 0.75094295, (5, 8): 0.94301677, (20, 30): 0.0, (39, 120): 0.8018809,
               (39, 127): 0.14865723}
SLANEY_ARGMAX = [2, 4, 6, 8, 10, 12, 13, 15, 17, 19, 21, 22, 24, 26, 28, 30, 31, 33, 35, 38, 40, 42, 45, 47, 50, 53,
                 56, 60, 63, 67, 71, 76, 80, 85, 90, 96, 101, 107, 114, 121]
SLANEY_SUMS = [0.031663764, 0.031663764, 0.032673158, 0.032462582, 0.031663761, 0.031663761, 0.031663761,
               0.031990066, 0.033145666, 0.031663761, 0.031663761, 0.031663764, 0.031663764, 0.033115193, 0.032020546,
               0.031663761, 0.031786405, 0.032091215, 0.032052554, 0.031728558, 0.032040689, 0.032372963, 0.031838514,
               0.031838924, 0.032132193, 0.032072425, 0.03172832, 0.03233663, 0.031795323, 0.032066856, 0.031990219,
               0.031926841, 0.031963639, 0.032155983, 0.032014534, 0.031913217, 0.032027863, 0.031936057, 0.032079961,
               0.031909853]
SLANEY_ENTRIES = {(0, 1): 0.0035006953, (0, 2): 0.013224849, (5, 8): 0.0, (20, 30): 0.0, (39, 120): 0.0040477575,
                  (39, 127): 0.00062338571}


@pytest.mark.parametrize("scale, norm, argmax, sums, entries", [
    ("htk", None, HTK_ARGMAX, HTK_SUMS, HTK_ENTRIES),
    ("slaney", "slaney", SLANEY_ARGMAX, SLANEY_SUMS, SLANEY_ENTRIES),
])
def test_mel_filterbank_matches_librosa(scale, norm, argmax, sums, entries):
    fb = mel_filterbank(40, 256, 8000, f_min=20, f_max=4000, scale=scale, norm=norm)  # (129, 40)
    assert fb.argmax(dim=0).tolist() == argmax
    np.testing.assert_allclose(fb.sum(dim=0).numpy(), sums, rtol=2e-6)
    for (i, k), value in entries.items():
        assert fb[k, i].item() == pytest.approx(value, rel=1e-6, abs=1e-9)


# ---- log-mel and MFCC ----

def reference_log_mel(x: np.ndarray, rate: int, win: int, hop: int, n_fft: int, n_mels: int = 40) -> np.ndarray:
    """The plain loop: one frame at a time in float64."""
    fb = mel_filterbank(n_mels, n_fft, rate, 20.0).double().numpy()
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic
    out = []
    for t in range(1 + (len(x) - win) // hop):
        power = np.abs(np.fft.rfft(x[t * hop: t * hop + win] * hann, n_fft)) ** 2
        out.append(np.log(np.maximum(power @ fb, 1e-10)))
    return np.array(out)


@pytest.mark.parametrize("win, hop, n_fft", [(200, 80, 256), (256, 80, 256), (200, 80, 512), (201, 77, 256)])
def test_log_mel_equals_the_frame_by_frame_loop(win, hop, n_fft):
    x = np.random.default_rng(0).normal(0, 0.1, 2000) + sines(8000, 0.25)
    ours = log_mel(x, 8000, win_length=win, hop_length=hop, n_fft=n_fft)
    assert ours.shape == (1 + (2000 - win) // hop, 40)
    np.testing.assert_allclose(ours.numpy(), reference_log_mel(x, 8000, win, hop, n_fft), atol=2e-4, rtol=1e-4)


def test_log_mel_of_a_prefix_is_the_first_frames_of_the_whole():
    x = np.random.default_rng(1).normal(0, 0.1, 8000).astype(np.float32)
    whole = log_mel(x, 8000)
    assert whole.shape == (1 + (8000 - 200) // 80, 40)
    for cut in (200, 279, 280, 999, 4321):
        part = log_mel(x[:cut], 8000)
        assert len(part) == 1 + (cut - 200) // 80
        assert_close(part, whole[: len(part)], rtol=1e-5, atol=1e-5)


def test_log_mel_takes_numpy_or_torch_gives_no_frames_below_a_window_and_floors_silence():
    x = sines(16000, 0.1)
    assert_close(log_mel(x, 16000), log_mel(torch.tensor(x, dtype=torch.float32), 16000))
    assert log_mel(x, 16000).shape == (1 + (1600 - 400) // 160, 40)  # 25 ms and 10 ms at 16 kHz
    assert log_mel(np.zeros(199), 8000).shape == (0, 40)
    assert log_mel(np.zeros(199), 8000, n_mels=23).shape == (0, 23)
    silent = log_mel(np.zeros(400), 8000)  # (3, 40), every energy at the floor
    assert_close(silent, torch.full((3, 40), math.log(1e-10)))
    assert_close(log_mel(np.zeros(400), 8000, floor=1e-3), torch.full((3, 40), math.log(1e-3)))
    with pytest.raises(ValueError, match="1-D waveform"):
        log_mel(np.zeros((2, 400)), 8000)
    with pytest.raises(ValueError, match="n_fft must be >= 200, got 128"):
        log_mel(np.zeros(400), 8000, n_fft=128)


def test_log_mel_band_edges_have_an_effect():
    x = sines(8000, 0.1)
    assert not torch.equal(log_mel(x, 8000), log_mel(x, 8000, f_min=100.0))
    assert not torch.equal(log_mel(x, 8000), log_mel(x, 8000, f_max=3000.0))


def test_mfcc_is_the_orthonormal_dct_of_the_log_mel():
    from scipy.fft import dct  # optional: scipy is installed for the tests only

    x = sines(8000, 0.3) + np.random.default_rng(2).normal(0, 0.05, 2400)
    logs = log_mel(x, 8000, n_mels=26).double().numpy()
    ours = mfcc(x, 8000, n_mfcc=13, n_mels=26)
    assert ours.shape == (len(logs), 13)
    np.testing.assert_allclose(ours.numpy(), dct(logs, type=2, norm="ortho", axis=1)[:, :13], atol=1e-4, rtol=1e-5)
    assert mfcc(x, 8000, n_mfcc=5).shape == (len(logs), 5)
    with pytest.raises(ValueError, match="n_mfcc must be <= n_mels"):
        mfcc(x, 8000, n_mfcc=41)


# librosa 0.11.0 again, on x = 0.5 sin(2 pi 440 t) + 0.25 sin(2 pi 1250 t + 0.3) + 0.1 sin(2 pi 3000 t), t = n / 8000,
# n = 0..1599 (float64):
#   S = librosa.feature.melspectrogram(y=x, sr=8000, n_fft=256, hop_length=80, win_length=256, window="hann",
#         center=False, power=2.0, n_mels=40, fmin=20, fmax=4000, htk=True, norm=None)               # (40, 17)
#   LN_S[t] = np.log(np.maximum(S, 1e-10))[:, t]
#   MFCC_DB[t] = librosa.feature.mfcc(S=librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None), n_mfcc=13,
#         dct_type=2, norm="ortho")[:, t]        (decibels: ours times 10 / ln 10)
# for frames t = 0 and 7, 7 significant digits. The window equals n_fft, so no padding convention is in question.
LN_S = {
    0: [-14.02549, -13.03618, -11.90024, -10.99447, -9.994688, -8.365505, -6.745294, -3.176002, 4.85695, 7.106784,
        5.231412, -2.997381, -6.848318, -8.995527, -10.558, -11.80304, -12.83783, -13.73351, -14.58685, -15.2587,
        4.567125, 5.635179, 2.031289, -17.62614, -18.10668, -18.6012, -19.03097, -19.4755, -19.88556, -20.29304,
        -20.68762, -21.08668, -21.47831, -21.88876, 2.658024, 3.853799, -23.02585, -23.02585, -23.02585, -23.02585],
    7: [-12.62917, -12.20638, -11.46037, -10.76713, -9.876336, -8.319581, -6.729233, -3.174144, 4.856973, 7.10678,
        5.231427, -2.998278, -6.855193, -9.013787, -10.59306, -11.86004, -12.92173, -13.84939, -14.73871, -15.4482,
        4.567131, 5.635176, 2.031336, -17.98624, -18.51027, -19.04706, -19.51696, -19.99938, -20.44386, -20.88198,
        -21.30222, -21.72055, -22.12305, -22.53275, 2.658024, 3.853799, -23.02585, -23.02585, -23.02585, -23.02585],
}
MFCC_DB = {
    0: [-309.1298, 124.2389, -40.62426, -59.76169, -24.0685, -62.82125, -90.19015, 101.1047, 16.0801, 24.43769,
        -44.15225, 51.55059, -12.38424],
    7: [-311.5246, 130.7109, -36.4711, -60.43673, -18.69156, -62.19655, -88.2692, 103.575, 17.27689, 25.91056,
        -44.11179, 53.75751, -11.96182],
}


def test_log_mel_and_mfcc_match_librosa():
    x = sines(8000, 0.2, parts=((0.5, 440.0, 0.0), (0.25, 1250.0, 0.3), (0.1, 3000.0, 0.0)))  # (1600,)
    args = dict(win_length=256, hop_length=80, n_fft=256, f_min=20, f_max=4000)
    logs = log_mel(x, 8000, n_mels=40, **args)
    cepstra = mfcc(x, 8000, n_mfcc=13, n_mels=40, **args) * (10 / math.log(10))
    assert logs.shape == (17, 40) and cepstra.shape == (17, 13)
    for frame in (0, 7):
        expected = np.array(LN_S[frame])
        loud = expected > -10  # channels the sines fill agree to float32 precision
        np.testing.assert_allclose(logs[frame].numpy()[loud], expected[loud], atol=1e-4, rtol=1e-5)
        # the near-empty channels (power ~1e-9 of the peak: window leakage only) carry float32 rounding: 0.03 measured
        np.testing.assert_allclose(logs[frame].numpy(), expected, atol=0.05)
        np.testing.assert_allclose(cepstra[frame].numpy(), MFCC_DB[frame], atol=0.1)  # 0.04 measured


# ---- Features ----

def test_features_defaults_sizes_and_frame_counts():
    f = Features()
    assert (f.win_length, f.hop_length, f.size) == (200, 80, 13)
    assert Features(kind="logmel").size == 40 and Features(kind="logmel", n_mels=20).size == 20
    assert (Features(win_ms=32, hop_ms=16).win_length, Features(win_ms=32, hop_ms=16).hop_length) == (256, 128)
    x = sines(8000, 0.5)
    for n in (0, 199, 200, 279, 280, 4000):
        assert len(f(x[:n])) == f.frames(n) == (0 if n < 200 else 1 + (n - 200) // 80)
    assert f(x).shape == (f.frames(4000), 13) and Features(kind="logmel")(x).shape == (f.frames(4000), 40)
    assert_close(Features(kind="logmel")(x), log_mel(x, 8000))
    assert_close(f(x), mfcc(x, 8000))
    assert not torch.equal(Features(f_min=100.0)(x), f(x)) and not torch.equal(Features(f_max=3000.0)(x), f(x))
    assert Features(n_mfcc=20)(x).shape[1] == 20 and not torch.equal(Features(n_mels=30)(x), f(x))


def test_features_resample_audio_at_another_rate():
    f = Features()
    x16 = sines(16000, 0.5)
    assert_close(f(x16, 16000), f(resample(x16, 16000, 8000)))
    assert_close(f(torch.tensor(x16), 16000), f(resample(x16, 16000, 8000)))
    # the same sound, whatever its rate (frame 0 holds the resampler's start, where the samples before are zeros)
    assert_close(f(x16, 16000)[1:], f(sines(8000, 0.5))[1:], atol=0.05, rtol=0.01)
    assert_close(f(sines(8000, 0.5), 8000), f(sines(8000, 0.5)))


def test_features_round_trip_through_a_json_config_and_are_frozen():
    f = Features(kind="logmel", sample_rate=16000, n_mels=64, win_ms=20.0, hop_ms=5.0, f_max=7600.0)
    assert Features(**json.loads(json.dumps(f.to_dict()))) == f
    assert Features(**Features().to_dict()) == Features()
    with pytest.raises(FrozenInstanceError):
        f.n_mels = 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="fbank"), "kind must be 'mfcc' or 'logmel', got 'fbank'"),
    (dict(sample_rate=0), "sample_rate must be a positive whole number"),
    (dict(n_mfcc=41), r"n_mfcc must be <= n_mels \(40\), got 41"),
    (dict(win_ms=0), "win_ms must be a positive number of milliseconds, got 0"),
    (dict(hop_ms=0.01), "is 200 samples every 0; lengthen win_ms or hop_ms"),
    (dict(f_max=5000.0), r"f_max <= sample_rate / 2 = 4000, got f_min=20.0, f_max=5000.0"),
    (dict(f_min=-1.0), "need 0 <= f_min"),
])
def test_features_refuse_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Features(**kwargs)


def test_features_logmel_may_keep_fewer_mels_than_the_mfcc_default():
    assert Features(kind="logmel", n_mels=10).size == 10


# ---- normalisation and SpecAugment ----

def test_normalize_gives_zero_mean_unit_variance_per_channel_and_zeros_for_a_constant():
    x = torch.randn(50, 4) * 3 + 7
    x[:, 2] = 5.0
    y = normalize(x)
    assert_close(y.mean(dim=0), torch.zeros(4), atol=1e-5, rtol=0)
    assert_close(y[:, [0, 1, 3]].std(dim=0, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    assert (y[:, 2] == 0).all() and not y.isnan().any()
    assert normalize(torch.zeros(1, 4)).eq(0).all()
    assert_close(normalize(x, eps=1e4)[:, 0], (x[:, 0] - x[:, 0].mean()) / math.sqrt(x[:, 0].var(correction=0) + 1e4))
    assert normalize(torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match=r"features must be \(T, F\)"):
        normalize(torch.zeros(3))


def batch():
    x = torch.rand(3, 60, 20) + 1.0  # (B, T, F), never 0 before masking
    lengths = torch.tensor([60, 41, 7])
    return x, lengths


def test_spec_augment_masks_bands_and_spans_inside_the_real_steps_only():
    x, lengths = batch()
    before = x.clone()
    y = spec_augment(x, lengths, freq_masks=2, freq_width=5, time_masks=2, time_width=0.1,
                     generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal(x, before)  # a new tensor; the input is left alone
    for b, n in enumerate(lengths.tolist()):
        real = y[b, :n]
        bands = (real == 0).all(dim=0).sum().item()  # channels zero at every real step
        spans = (real == 0).all(dim=1).sum().item()  # steps zero in every channel
        assert 1 <= bands <= 2 * 5
        assert 1 <= spans <= 2 * max(1, int(0.1 * n))
        assert torch.equal(y[b, n:], x[b, n:])  # padding untouched
        assert ((real == 0) | (real == x[b, :n])).all()  # everything else as it was


def test_spec_augment_is_reproducible_with_a_seeded_generator_and_varies_without():
    x, lengths = batch()
    a = spec_augment(x, lengths, generator=torch.Generator().manual_seed(3))
    b = spec_augment(x, lengths, generator=torch.Generator().manual_seed(3))
    c = spec_augment(x, lengths, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_spec_augment_settings_have_their_effect():
    x, lengths = batch()
    g = torch.Generator
    assert torch.equal(spec_augment(x, lengths, freq_masks=0, time_masks=0), x)
    only_freq = spec_augment(x, None, time_masks=0, freq_width=3, generator=g().manual_seed(0))
    assert ((only_freq == 0).all(dim=1).sum(dim=1) >= 1).all()  # (B,) a band in every sequence, over all T steps
    assert ((only_freq == 0).sum(dim=1) % 60 == 0).all()  # and no partial columns
    only_time = spec_augment(x, None, freq_masks=0, time_width=0.2, generator=g().manual_seed(0))
    assert ((only_time == 0).all(dim=2).sum(dim=1) >= 1).all() and ((only_time == 0).sum(dim=2) % 20 == 0).all()
    wide = spec_augment(x, None, freq_masks=1, freq_width=20, time_masks=0, generator=g().manual_seed(0))
    narrow = spec_augment(x, None, freq_masks=1, freq_width=1, time_masks=0, generator=g().manual_seed(0))
    assert (wide == 0).sum() > (narrow == 0).sum() == 3 * 60
    with pytest.raises(ValueError, match=r"x must be \(B, T, F\)"):
        spec_augment(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(3,\) counts in \[0, 60\]"):
        spec_augment(x, torch.tensor([60, 61, 0]))
    with pytest.raises(ValueError, match="time_width must be a fraction"):
        spec_augment(x, lengths, time_width=1.5)
