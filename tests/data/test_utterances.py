"""rnr.data.utterances: FSDD's official split, and strings of digits joined from one speaker's clips.

Most tests build a tiny FSDD-shaped folder of synthetic clips (constant waveforms, one level per speaker, so the
speaker of every sample can be read back); the tests on the real recordings skip where the data is absent.
"""
import numpy as np
import pytest

from rnr.data.audio import write_wav
from rnr.data.utterances import Clip, digit_strings, join_clips, load_fsdd, perturb

LEVEL = {"ann": 0.25, "bob": -0.5}  # each synthetic speaker's constant sample value


def length(digit: str) -> int:
    return 100 * (int(digit) + 1)  # a synthetic clip's samples: 100 for "0" ... 1000 for "9"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd")
    (root / "recordings").mkdir()
    for speaker, level in LEVEL.items():
        for digit in range(10):
            for take in range(7):
                write_wav(root / "recordings" / f"{digit}_{speaker}_{take}.wav", np.full(length(str(digit)), level),
                          8000)
    (root / "recordings" / "README.txt").write_text("not a clip, not a WAV file: ignored")
    return root


@pytest.fixture(scope="module")
def fsdd():
    data = load_fsdd()
    if data is None:
        pytest.skip("fsdd absent: set RNR_DATA or place it at ../shared/data/fsdd")
    return data


# ---- loading ----

def test_load_fsdd_splits_by_take_and_sorts(synthetic):
    train, test = load_fsdd(synthetic)
    assert len(train) == 2 * 10 * 2 and len(test) == 2 * 10 * 5
    assert {c.take for c in train} == {5, 6} and {c.take for c in test} == {0, 1, 2, 3, 4}
    assert train[0] == Clip(synthetic / "recordings" / "0_ann_5.wav", "0", "ann", 5)
    assert train == sorted(train, key=lambda c: (c.speaker, c.text, c.take))


def test_load_fsdd_refuses_a_misnamed_clip_and_a_missing_folder(tmp_path, monkeypatch):
    (tmp_path / "recordings").mkdir()
    write_wav(tmp_path / "recordings" / "three_ann_0.wav", np.zeros(10), 8000)
    with pytest.raises(ValueError, match=r"three_ann_0.wav is not named \{digit\}_\{speaker\}_\{take\}.wav"):
        load_fsdd(tmp_path)
    with pytest.raises(FileNotFoundError, match="recordings"):
        load_fsdd(tmp_path / "elsewhere")
    monkeypatch.setenv("RNR_DATA", str(tmp_path))  # a data folder without fsdd/
    assert load_fsdd() is None


def test_the_real_fsdd_has_the_official_split(fsdd):
    train, test = fsdd
    assert len(train) == 2250 and len(test) == 250
    assert all(c.take >= 5 for c in train) and all(c.take < 5 for c in test)
    assert not {(c.text, c.speaker, c.take) for c in train} & {(c.text, c.speaker, c.take) for c in test}
    assert len({c.speaker for c in train}) == 5 and {c.text for c in test} == set("0123456789")


# ---- joining and perturbing ----

def test_join_clips_puts_silences_of_the_given_lengths_between_and_around():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pieces = [np.ones(n) for n in (300, 50, 120)]
        x = join_clips(pieces, rng, sample_rate=1000, pause=(0.05, 0.3), edge=(0.01, 0.2))
        assert x.dtype == np.float32 and x.sum() == 470
        edges = np.flatnonzero(np.diff(np.concatenate([[1.0], x, [1.0]])))  # where runs of ones and zeros meet
        runs = np.diff(edges)[::2]  # the lengths of the zero runs: lead, two pauses, tail
        assert len(runs) == 4
        assert 10 <= runs[0] <= 200 and 10 <= runs[-1] <= 200
        assert all(50 <= r <= 300 for r in runs[1:-1])
    no_gaps = join_clips([np.ones(3), np.ones(4)], rng, pause=(0, 0), edge=(0, 0))
    assert np.array_equal(no_gaps, np.ones(7))


def test_join_clips_refuses_nothing_and_bad_ranges():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least one piece"):
        join_clips([], rng)
    with pytest.raises(ValueError, match=r"pause must be a range \(low, high\) with 0 <= low <= high"):
        join_clips([np.ones(3)], rng, pause=(0.3, 0.1))


def test_perturb_changes_only_what_it_is_asked_to():
    x = np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000).astype(np.float32)
    same = perturb(x, np.random.default_rng(0), gain_db=None, speed=None, snr_db=None)
    assert np.array_equal(same, x)
    for seed in range(5):
        louder = perturb(x, np.random.default_rng(seed), speed=None, snr_db=None)
        assert 10 ** (-6 / 20) - 1e-6 <= louder[100] / x[100] <= 10 ** (6 / 20) + 1e-6
        assert np.allclose(louder, x * louder[100] / x[100], atol=1e-6)
        faster = perturb(x, np.random.default_rng(seed), gain_db=None, snr_db=None)
        assert 8000 / 1.1 - 1 <= len(faster) <= 8000 / 0.9 + 1 and len(faster) != 8000
        noisy = perturb(x, np.random.default_rng(seed), gain_db=None, speed=None, snr_db=(20, 20))
        snr = 10 * np.log10(np.mean(x ** 2) / np.mean((noisy - x) ** 2))
        assert snr == pytest.approx(20, abs=0.5)


# ---- digit strings ----

def test_digit_strings_are_one_speaker_several_digits_with_pauses(synthetic):
    train, _ = load_fsdd(synthetic)
    waves, texts = digit_strings(train, 40, min_digits=2, max_digits=5, seed=1)
    assert len(waves) == len(texts) == 40
    for x, text in zip(waves, texts):
        digits = text.split(" ")
        assert text == " ".join(digits) and 2 <= len(digits) <= 5 and all(d in "0123456789" for d in digits)
        levels = set(np.unique(x[x != 0]).round(3))
        assert len(levels) == 1 and levels <= {round(v, 3) for v in LEVEL.values()}  # one speaker
        speech = sum(length(d) for d in digits)
        assert np.count_nonzero(x) == speech  # every clip once, no more
        n = len(digits)
        assert speech + 8000 * 0.05 * (n - 1) - n <= len(x) <= speech + 8000 * (0.3 * (n - 1) + 0.4) + n
    assert len({len(t.split()) for t in texts}) == 4 and len({np.sign(x.sum()) for x in waves}) == 2


def test_digit_strings_are_deterministic_for_a_seed(synthetic):
    train, _ = load_fsdd(synthetic)
    a, ta = digit_strings(train, 5, seed=3, augment=True)
    b, tb = digit_strings(train, 5, seed=3, augment=True)
    c, tc = digit_strings(train, 5, seed=4, augment=True)
    assert ta == tb and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert ta != tc
    assert digit_strings(train, 0) == ([], [])
    with pytest.raises(ValueError, match="need 1 <= min_digits <= max_digits"):
        digit_strings(train, 3, min_digits=4, max_digits=2)
    with pytest.raises(ValueError, match="needs clips"):
        digit_strings([], 3)


def test_digit_strings_resample_clips_to_the_rate_asked_for(synthetic):
    train, _ = load_fsdd(synthetic)
    (x8,), (t8,) = digit_strings(train, 1, min_digits=1, max_digits=1, seed=5)
    (x16,), (t16,) = digit_strings(train, 1, min_digits=1, max_digits=1, seed=5, sample_rate=16000)
    assert t8 == t16 and abs(len(x16) - 2 * len(x8)) <= 2  # the clip twice as long, the silences rounded apart


def test_real_utterances_keep_one_speaker_and_augmentation_changes_them(fsdd):
    train, _ = fsdd
    # a subset where one speaker said only "1" and another only "2": a mixed utterance would mix the digits
    a, b = sorted({c.speaker for c in train})[:2]
    subset = [c for c in train if (c.speaker, c.text) in {(a, "1"), (b, "2")}]
    waves, texts = digit_strings(subset, 12, min_digits=2, max_digits=4, seed=0)
    assert all(set(t.split()) in ({"1"}, {"2"}) for t in texts) and {t[0] for t in texts} == {"1", "2"}
    assert all(x.dtype == np.float32 and x.ndim == 1 for x in waves)
    # the first utterance of a seed has the same digits with or without augmentation (the draws part after)
    (clean,), (text_clean,) = digit_strings(train, 1, min_digits=3, max_digits=3, seed=7)
    (noisy,), (text_noisy,) = digit_strings(train, 1, min_digits=3, max_digits=3, seed=7, augment=True)
    assert text_clean == text_noisy
    assert len(clean) != len(noisy) or not np.allclose(clean, noisy, atol=1e-3)
    assert np.count_nonzero(clean == 0) > 0 and np.count_nonzero(noisy == 0) == 0  # noise fills the pauses too
