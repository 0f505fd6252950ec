"""rnr.Transcriber: CTC over feature frames, from WAV files, waveforms or (T, F) arrays; streaming; model files."""
import numpy as np
import pytest
import torch

import rnr
from rnr.data.audio import write_wav
from rnr.sequences.transcriber import Transcriber

QUIET = dict(progress=False, max_minutes=None)
PATTERNS = np.random.default_rng(99).normal(size=(4, 6)).astype(np.float32) * 2  # one frame pattern per token


def frames(n: int, seed: int, max_tokens: int = 4):
    """(T, 6) frame sequences: each token of "0".."3" is 3-5 frames of its pattern, between 1-3 frames of noise."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        tokens = rng.integers(0, 4, size=int(rng.integers(1, max_tokens + 1)))
        parts = [rng.normal(size=(int(rng.integers(1, 4)), 6)) * 0.3]
        for t in tokens:
            parts.append(PATTERNS[t] + rng.normal(size=(int(rng.integers(3, 6)), 6)) * 0.3)
            parts.append(rng.normal(size=(int(rng.integers(1, 4)), 6)) * 0.3)
        X.append(np.concatenate(parts).astype(np.float32))
        y.append(" ".join(str(t) for t in tokens))
    return X, y


TONES = {"a": 400.0, "b": 1100.0, "c": 2300.0}


def tones(n: int, seed: int, rate: int = 8000):
    """Waveforms: each letter a 120 ms tone of its own pitch, with 40-100 ms of quiet noise between."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        text = "".join(rng.choice(list(TONES), size=int(rng.integers(1, 4))))
        parts = []
        for ch in text:
            parts.append(rng.normal(size=int(rate * rng.uniform(0.04, 0.1))) * 0.01)
            t = np.arange(int(0.12 * rate)) / rate
            parts.append(0.5 * np.sin(2 * np.pi * TONES[ch] * t))
        parts.append(rng.normal(size=int(0.06 * rate)) * 0.01)
        X.append(np.concatenate(parts).astype(np.float32))
        y.append(text)
    return X, y


@pytest.fixture(scope="module")
def frame_model():
    X, y = frames(240, seed=0)
    return Transcriber(hidden_size=32, num_layers=1, stride=1, bidirectional=True, epochs=25, lr=1e-2, batch_size=32,
                       spec_augment=False, **QUIET).fit(X, y)


def test_it_learns_to_transcribe_frames(frame_model):
    X, y = frames(60, seed=1)
    result = frame_model.evaluate(X, y)
    assert result["token_error_rate"] < 0.1, result
    assert result["exact_match"] > 0.8, result
    assert frame_model.chosen_["tokens"] == "space" and frame_model.tokens_ == ["0", "1", "2", "3"]
    assert frame_model.score(X, y) == pytest.approx(1 - result["token_error_rate"])
    assert all(isinstance(t, str) for t in frame_model.predict(X[:3]))


def test_beam_search_is_at_least_as_likely_as_greedy(frame_model):
    X, y = frames(30, seed=2)
    greedy, beam = frame_model.predict(X), frame_model.predict(X, beam_width=8)
    assert frame_model.evaluate(X, y, beam_width=8)["token_error_rate"] <= 0.15
    assert sum(g == b for g, b in zip(greedy, beam)) >= 25  # a confident model: the two mostly agree
    with pytest.raises(ValueError, match="beam_width must be an int >= 1, got 0"):
        frame_model.predict(X[:1], beam_width=0)


def test_model_files_give_the_same_transcripts(frame_model, tmp_path):
    X, _ = frames(10, seed=3)
    rnr.save(frame_model, tmp_path / "asr.safetensors")
    back = rnr.load(tmp_path / "asr.safetensors")
    assert back.predict(X) == frame_model.predict(X)
    for a, b in zip(back.log_probs(X), frame_model.log_probs(X)):
        torch.testing.assert_close(a, b)


def test_wav_files_and_resampling(tmp_path):
    X, y = tones(12, seed=0)
    paths = []
    for i, x in enumerate(X):
        rate = 16000 if i % 2 else 8000  # half the files at another rate: resampled to the model's
        wave = np.interp(np.arange(len(x) * rate // 8000) * 8000 / rate, np.arange(len(x)), x) if rate != 8000 else x
        write_wav(tmp_path / f"{i}.wav", wave, rate)
        paths.append(str(tmp_path / f"{i}.wav"))
    asr = Transcriber(hidden_size=16, num_layers=1, epochs=1, **QUIET).fit(paths, y)
    assert asr.input_kind_ == "audio" and asr.chosen_["tokens"] == "char" and asr.separator_ == ""
    assert asr.n_features_in_ == 40 and asr.features_.kind == "logmel"
    out = asr.predict(paths[:3])
    assert len(out) == 3 and all(set(t) <= set(TONES) for t in out)
    result = asr.evaluate(paths, y)
    assert set(result) == {"token_error_rate", "char_error_rate", "exact_match", "utterances"}
    with pytest.raises(TypeError, match="the model was fitted on audio"):
        asr.predict([np.zeros((5, 40), np.float32)])


@pytest.mark.parametrize("stride", [1, 3])
def test_a_stream_writes_what_the_whole_file_gives(stride):
    X, y = tones(40, seed=1)
    asr = Transcriber(hidden_size=24, num_layers=2, stride=stride, epochs=8, lr=1e-2, features="mfcc",
                      **QUIET).fit(X, y)  # forward only: the default
    assert asr.chosen_["normalize"] == "global"
    rng = np.random.default_rng(0)
    for x, whole in zip(X[:5], asr.predict(X[:5])):
        stream, said = asr.stream(), []
        at = 0
        while at < len(x):
            step = int(rng.integers(0, 700))  # blocks of 0 to 87 ms, shorter and longer than a frame
            said += stream.push(x[at : at + step])
            at += step
        assert stream.finish() == whole
        assert stream.text.startswith("".join(said))  # what push returned, then what finish read
    stream = asr.stream()
    stream.push(X[0][:1000])
    with pytest.raises(ValueError, match="this block holds NaN or inf values; .*keeps what it read before"):
        stream.push(np.full(300, np.nan, np.float32))
    stream.push(X[0][1000:])
    assert stream.finish() == asr.predict(X[:1])[0]  # the refused block left no trace
    with pytest.raises(ValueError, match="stream is finished"):
        stream.push(x[:100])


def test_streaming_needs_a_forward_model(frame_model):
    with pytest.raises(ValueError, match="bidirectional=False"):
        frame_model.stream()


def test_errors_name_the_argument_and_the_fix():
    X, y = frames(8, seed=4)
    with pytest.raises(ValueError, match=r"y must hold one transcript per utterance \(8\), got 7"):
        Transcriber(**QUIET).fit(X, y[:7])
    with pytest.raises(TypeError, match="mixes audio"):
        Transcriber(**QUIET).fit([X[0], np.zeros(800, np.float32)], ["0", "1"])
    with pytest.raises(TypeError, match=r"y\[1\] must be a string"):
        Transcriber(**QUIET).fit(X[:2], ["0", 1])
    with pytest.raises(ValueError, match=r"X\[0\] is too short for its transcript y\[0\].*smaller stride"):
        Transcriber(stride=4, **QUIET).fit([np.zeros((6, 6), np.float32)] + X[1:3], ["1 1 2", *y[1:3]])
    with pytest.raises(ValueError, match=r"X\[1\] has 5 features per frame, but X\[0\] has 6; every utterance"):
        Transcriber(**QUIET).fit([X[0], X[1][:, :5]], y[:2])
    with pytest.raises(ValueError, match="not fitted yet"):
        Transcriber().predict(X)
    with pytest.raises(ValueError, match=r"y_val\[0\] = '9' holds tokens the training transcripts lack"):
        Transcriber(epochs=1, hidden_size=8, **QUIET).fit(X, y, X[:1], ["9"])
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        Transcriber(stride=0).fit(X, y)


def test_wav_files_far_below_the_rate_are_refused_and_several_channels_named(tmp_path):
    import wave

    t = np.arange(4000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(tmp_path / "a.wav", tone, 8000)
    write_wav(tmp_path / "low.wav", tone[::4], 2000)  # 2 kHz: nothing above 1 kHz
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:  # the tone on the left, silence on the right
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        pcm = (tone * 32767).astype("<i2")
        w.writeframes(np.stack([pcm, np.zeros_like(pcm)], 1).tobytes())
    settings = dict(hidden_size=8, num_layers=1, epochs=1, **QUIET)
    with pytest.raises(ValueError, match=r"X\[1\] '.*low.wav' is recorded at 2000 Hz, less than half the model's "
                                         r"sample_rate \(8000 Hz\).*or fit with sample_rate=2000"):
        Transcriber(**settings).fit([str(tmp_path / "a.wav"), str(tmp_path / "low.wav")], ["a", "b"])
    with pytest.warns(UserWarning, match=r"1 of the 2 WAV files in X have more than one channel, e.g. .*stereo.wav; "
                                         r"their channels were averaged"):
        asr = Transcriber(**settings).fit([str(tmp_path / "a.wav"), str(tmp_path / "stereo.wav")], ["a", "b"])
    assert asr.tokens_ == ["a", "b"]
