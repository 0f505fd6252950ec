"""``rnr fit transcribe``, its ``predict`` and ``evaluate``, and ``plot transcribe`` (issue 17 item 4): utterances from
a folder of WAV files named by their transcripts or from a CSV, transcripts written as CSV, the scores, a picture
of the model at work, and every input error in the command's terms."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import rnr
from rnr.__main__ import main
from rnr.cli import config as cfg
from rnr.cli.transcribe import alignment, draw
from rnr.data.audio import write_wav
from rnr.data.datasets import data_dir
from rnr.training import core

TINY = ["--set", "model.hidden_size=8", "--set", "model.num_layers=1", "--set", "model.epochs=1", "--set",
        "model.max_minutes=0.5", "--quiet"]
TONES = {"a": 400.0, "b": 1100.0, "c": 2300.0}
RATE = 8000


def tones(folder, n: int, seed: int, name="{text}_{i}.wav") -> list[str]:
    """WAV files in ``folder``: each letter of a transcript a 120 ms tone of its own pitch, with quiet noise between;
    returns the transcripts."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    for i in range(n):
        text = "".join(rng.choice(list(TONES), size=int(rng.integers(1, 4))))
        parts = []
        for ch in text:
            parts.append(rng.normal(size=int(RATE * rng.uniform(0.04, 0.1))) * 0.01)
            parts.append(0.5 * np.sin(2 * np.pi * TONES[ch] * np.arange(int(0.12 * RATE)) / RATE))
        parts.append(rng.normal(size=int(0.06 * RATE)) * 0.01)
        write_wav(folder / name.format(text=text, i=i), np.concatenate(parts), RATE)
        texts.append(text)
    return texts


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """tones/ (ab_0.wav, ...), a CSV of paths and transcripts, a model fitted on tones/, a character model."""
    root = tmp_path_factory.mktemp("transcribe")
    tones(root / "tones", 16, seed=0)
    assert main(["fit", "transcribe", "--data", str(root / "tones"), *TINY, "--out", str(root / "asr")]) == 0
    (root / "corpus.txt").write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    assert main(["fit", "text", "--data", str(root / "corpus.txt"), "--set", "model.epochs=1", "--set",
                 "model.hidden_size=8", "--set", "model.seq_len=16", "--quiet", "--out", str(root / "lm")]) == 0
    return root


def run(argv, capsys, code=0) -> str:
    assert main([str(a) for a in argv]) == code, capsys.readouterr().err
    said = capsys.readouterr()
    return said.out if code == 0 else said.err


# ------------------------------------------------------------------ rnr fit transcribe
def test_fit_on_a_folder_reads_each_transcript_from_the_file_name(made, tmp_path, capsys):
    info = json.loads((made / "asr" / "info.json").read_text(encoding="utf-8"))
    assert info["task"] == "transcribe" and info["class"] == "Transcriber" and info["utterances"] == 16
    assert info["tokens"] == ["a", "b", "c"] and info["data"]["name_pattern"] == "(?P<text>[^_]+)_"
    assert re.fullmatch(r"16 utterances, \d+\.\d s of audio, 3 tokens", info["trained_on"]), info["trained_on"]
    assert info["model"]["hidden_size"] == 8 and info["epochs_done"] == 1
    out = run(["fit", "transcribe", "--data", made / "tones", *TINY[:-1], "--out", tmp_path / "m"], capsys)
    assert re.fullmatch(r"fitted Transcriber\(.*hidden_size=8.*\) \(16 utterances, [\d.]+ s of audio, 3 tokens\) in "
                        r"[\d.]+ s; saved to .*m/\n", out), out
    said = run(["info", made / "asr"], capsys)
    assert "task: transcribe" in said and "trained_on: 16 utterances" in said


def test_a_name_pattern_of_ones_own(tmp_path, capsys):
    texts = tones(tmp_path / "wavs", 6, seed=1, name="take{i}-{text}.wav")
    run(["fit", "transcribe", "--data", tmp_path / "wavs", "--set", r"data.name_pattern=-(?P<text>\w+)\.wav$",
         *TINY, "--out", tmp_path / "m"], capsys)
    info = json.loads((tmp_path / "m" / "info.json").read_text(encoding="utf-8"))
    assert info["tokens"] == sorted(set("".join(texts)))


def test_fit_on_a_csv_with_columns_of_ones_own_and_a_validation_csv(tmp_path, capsys):
    texts = tones(tmp_path / "audio", 10, seed=2, name="{i}.wav")
    frame = pd.DataFrame({"file": [f"audio/{i}.wav" for i in range(10)], "words": texts})
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:3].assign(file=[str(tmp_path / f"audio/{i}.wav") for i in range(3)]).to_csv(tmp_path / "val.csv",
                                                                                          index=False)
    argv = ["fit", "transcribe", "--data", tmp_path / "train.csv", "--val", tmp_path / "val.csv", "--set",
            "data.path_column=file", "--set", "data.text_column=words", *TINY, "--out", tmp_path / "m"]
    run(argv, capsys)
    info = json.loads((tmp_path / "m" / "info.json").read_text(encoding="utf-8"))
    assert info["utterances"] == 10 and info["data"]["val_path"] == str(tmp_path / "val.csv")
    assert "val_loss" in (tmp_path / "m" / "metrics.csv").read_text()  # the validation CSV was read each epoch
    run(["predict", tmp_path / "m", "--data", tmp_path / "train.csv", "--out", tmp_path / "said.csv"], capsys)
    said = pd.read_csv(tmp_path / "said.csv", keep_default_na=False)
    assert list(said.columns) == ["file", "words"]  # the user's column names
    assert said["file"].tolist() == frame["file"].tolist()  # and the paths as the CSV wrote them


def test_ctrl_c_saves_the_model_and_resume_finishes_the_run(made, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    monkeypatch.setattr(core, "stop_requested", lambda: (out / "metrics.csv").exists())  # Ctrl-C in epoch 2
    argv = ["fit", "transcribe", "--data", made / "tones", "--set", "model.hidden_size=8", "--set",
            "model.num_layers=1", "--set", "model.epochs=3", "--out", out]
    assert main([str(a) for a in argv]) == 130
    said = capsys.readouterr().out
    assert said.startswith("stopped by Ctrl-C after 1 of 3 epochs") and "--resume` continues" in said, said
    monkeypatch.undo()
    assert main([str(a) for a in [*argv, "--resume", "--quiet"]]) == 0
    assert json.loads((out / "info.json").read_text(encoding="utf-8"))["epochs_done"] == 3


# ------------------------------------------------------------------ rnr predict, rnr evaluate
def test_predict_writes_path_and_text_to_a_file_or_prints_it(made, tmp_path, capsys):
    out = run(["predict", made / "asr", "--data", made / "tones", "--out", tmp_path / "t.csv"], capsys)
    assert out == f"wrote 16 transcripts to {tmp_path / 't.csv'}\n"
    written = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert list(written.columns) == ["path", "text"] and len(written) == 16
    assert written["path"].tolist() == sorted(str(p) for p in (made / "tones").glob("*.wav"))
    assert all(set(t) <= set(TONES) for t in written["text"])
    printed = run(["predict", made / "asr", "--data", made / "tones"], capsys)
    assert printed == (tmp_path / "t.csv").read_text()
    one = sorted((made / "tones").glob("*.wav"))[0]
    said = json.loads(run(["predict", made / "asr", "--data", one, "--beam", "3", "--json"], capsys))
    assert said["rows"] == 1 and said["beam_width"] == 3 and said["transcripts"][0]["path"] == str(one)


def test_evaluate_prints_the_three_scores_with_four_decimals_and_json(made, capsys):
    out = run(["evaluate", made / "asr", "--data", made / "tones"], capsys)
    assert re.fullmatch(r"16 utterances of .*tones \(greedy\)\n  token_error_rate: \d\.\d{4}\n  char_error_rate: "
                        r"\d\.\d{4}\n  exact_match: \d\.\d{4}\n", out), out
    said = json.loads(run(["evaluate", made / "asr", "--data", made / "tones", "--beam", "2", "--json"], capsys))
    assert set(said) == {"token_error_rate", "char_error_rate", "exact_match", "utterances", "beam_width"}
    assert said["utterances"] == 16 and said["beam_width"] == 2 and 0 <= said["exact_match"] <= 1


# ------------------------------------------------------------------ rnr plot transcribe
def test_plot_transcribe_draws_a_picture_of_the_model_hearing_a_file(made, tmp_path, capsys):
    wav = sorted((made / "tones").glob("*.wav"))[-1]
    said = json.loads(run(["plot", "transcribe", made / "asr", "--audio", wav, "--out", tmp_path / "p" / "heard.png",
                           "--json"], capsys))
    path = tmp_path / "p" / "heard.png"
    assert said["out"] == str(path) and isinstance(said["transcript"], str)
    assert [tok for _, tok in said["emitted"]] == list(said["transcript"])  # char tokens: one emission per letter
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 30_000
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(float)
    height, width = pixels.shape[:2]
    assert width >= 800 and height >= 700
    top = pixels[: height // 3]
    assert ((top.max(axis=2) - top.min(axis=2)) > 60).mean() > 0.3  # the coloured spectrogram fills the top third
    assert pixels.std() > 30


def test_the_alignment_writes_each_token_at_the_first_frame_of_its_run(made, tmp_path):
    model = rnr.load(made / "asr")
    best = [0, 1, 1, 0, 2, 2, 0, 0, 2, 3, 0]  # blank a a blank b b blank blank b c blank
    lp = torch.full((len(best), 4), -9.0)
    lp[range(len(best)), best] = 0.0
    lp = lp.log_softmax(-1)  # (T', C)
    assert alignment(lp) == [(1, 1), (4, 2), (8, 2), (9, 3)]
    model.log_probs = lambda X: [lp]  # a model sure of this path
    noise = np.random.default_rng(0).normal(size=int(0.35 * RATE)) * 0.1
    transcript, emitted = draw(model, noise, RATE, tmp_path / "a.png")
    step = model.features_.hop_length * model.stride / model.features_.sample_rate
    assert transcript == "abbc"  # two b: a blank between them
    assert emitted == [[round(j * step, 4), tok] for j, tok in [(1, "a"), (4, "b"), (8, "b"), (9, "c")]]
    pixels = np.asarray(Image.open(tmp_path / "a.png").convert("RGB")).astype(int)
    bottom = pixels[-pixels.shape[0] // 6:]
    assert ((bottom.max(axis=2) - bottom.min(axis=2)) > 100).sum() > 200  # the coloured letters and their spans


# ------------------------------------------------------------------ errors in the command's terms
def _junk(root):
    (root / "bad").mkdir()
    (root / "bad" / "ab_0.wav").write_bytes(b"this is not audio")
    (root / "odd").mkdir()
    write_wav(root / "odd" / "ab_0.wav", np.zeros(800), RATE)
    write_wav(root / "odd" / "nounderscore.wav", np.zeros(800), RATE)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no audio here")
    pd.DataFrame({"file": ["x.wav"], "text": ["a"]}).to_csv(root / "cols.csv", index=False)
    (root / "short").mkdir()
    write_wav(root / "short" / "abcabc_0.wav", np.zeros(400), RATE)  # 50 ms: 3 frames for 6 letters
    write_wav(root / "tiny.wav", np.zeros(80), RATE)  # 10 ms: shorter than one frame


ERRORS = [  # argv (after "rnr"), the message; each exits with 2
    (["fit", "transcribe", "--data", "{r}/nowhere", "--out", "{t}/m"],
     r"--data '.*nowhere' does not exist; pass a folder of WAV files or a CSV with columns path,text"),
    (["fit", "transcribe", "--data", "{r}/empty", "--out", "{t}/m"],
     r"--data '.*empty' holds no WAV files \(\*\.wav\); pass a folder of WAV files"),
    (["fit", "transcribe", "--data", "{r}/bad", "--out", "{t}/m"],
     r"--data: read_wav: .*ab_0.wav is not a RIFF/WAVE file of integer PCM samples .*; or drop the file"),
    (["fit", "transcribe", "--data", "{r}/odd", "--out", "{t}/m"],
     r"1 of the 2 WAV files in --data '.*odd' has a name that data.name_pattern '\(\?P<text>\[\^_\]\+\)_' does "
     r"not match, e\.g\. \['nounderscore.wav'\]; .* \(--set data.name_pattern='...'\)"),
    (["fit", "transcribe", "--data", "{r}/odd", "--set", "data.name_pattern=(x", "--out", "{t}/m"],
     r"data.name_pattern '\(x' is not a regular expression \(missing \), unterminated subpattern"),
    (["fit", "transcribe", "--data", "{r}/odd", "--set", "data.name_pattern=ab_", "--out", "{t}/m"],
     r"data.name_pattern 'ab_' has no group named text, .* write it as \(\?P<text>\.\.\.\)"),
    (["fit", "transcribe", "--data", "{r}/cols.csv", "--out", "{t}/m"],
     r"--data '.*cols.csv' has no column 'path' \(data.path_column, the WAV paths\); its columns are \['file', "
     r"'text'\]; rename that column, or name it with --set data.path_column=NAME"),
    (["fit", "transcribe", "--data", "{r}/corpus.txt", "--out", "{t}/m"],
     r"--data '.*corpus.txt' is neither a folder nor a CSV; pass a folder of WAV files or a CSV"),
    (["fit", "transcribe", "--data", "{r}/short", *TINY, "--out", "{t}/m"],
     r"'?.*short/abcabc_0.wav is too short for its transcript 'abcabc': \d frames make \d steps at stride=\d, .*"
     r"or pass a smaller --set model.stride=N"),
    (["fit", "transcribe", "--data", "{r}/tones", "--text", "words", "--out", "{t}/m"],
     r"--text does not apply to rnr fit transcribe"),
    (["fit", "transcribe", "--data", "{r}/tones", "--set", "model.beam_widht=4", "--out", "{t}/m"],
     r"unknown key 'model.beam_widht' .*, did you mean 'model.beam_width'\?"),
    (["predict", "{r}/asr"], r"rnr predict with a transcribe model needs --data: a WAV file, a folder of WAV files"),
    (["predict", "{r}/asr", "--data", "{r}/tones", "--beam", "0"], r"--beam must be >= 1 \(1 decodes greedily"),
    (["predict", "{r}/lm", "--data", "{r}/corpus.txt", "--beam", "4"],
     r"--beam applies to transcribe models \(the beam width of CTC decoding\); '.*lm' holds a text model"),
    (["predict", "{r}/lm", "--data", "{r}/corpus.txt"],
     r"rnr predict labels with classify models \(and forecasts with forecast models, transcribes with transcribe "
     r"models\); '.*lm' holds a CharLM"),
    (["evaluate", "{r}/asr", "--data", "{r}/odd"],
     r"has a name that the model's data.name_pattern \(set when it was fitted\) .* does not match, .*: rename "
     r"those files, move them out, or pass a CSV with columns path,text"),
    (["evaluate", "{r}/asr", "--data", "{r}/bad"], r"--data: read_wav: .* is not a RIFF/WAVE file"),
    (["plot", "transcribe", "{r}/lm", "--audio", "{r}/odd/ab_0.wav", "--out", "{t}/p.png"],
     r"rnr plot transcribe reads Transcriber models; '.*lm' holds a CharLM"),
    (["plot", "transcribe", "{r}/asr", "--out", "{t}/p.png"], r"rnr plot transcribe needs --audio, the WAV file"),
    (["plot", "transcribe", "{r}/asr", "--audio", "{r}/bad/ab_0.wav", "--out", "{t}/p.png"],
     r"--audio: read_wav: .*ab_0.wav is not a RIFF/WAVE file"),
    (["plot", "transcribe", "{r}/asr", "--audio", "{r}/odd/ab_0.wav", "--out", "{t}/p.gif"],
     r"--out must name a .png, .pdf or .svg file"),
    (["predict", "{r}/asr", "--data", "{r}/tiny.wav"],
     r"'?.*tiny.wav has no frames: audio shorter than one window \(25 ms\)"),
    (["plot", "transcribe", "{r}/asr", "--audio", "{r}/tiny.wav", "--out", "{t}/p.png"],
     r"--audio '.*tiny.wav': the file has no frames: audio shorter than one window"),
    (["generate", "{r}/asr"], r"rnr generate reads CharLM models; '.*asr' holds a Transcriber"),
    (["plot", "hidden", "{r}/asr", "--text", "abc", "--out", "{t}/v"], r"rnr plot hidden reads CharLM models"),
]


@pytest.mark.parametrize("argv,match", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_errors_name_the_flag_the_rule_the_value_and_the_fix(made, tmp_path, capsys, argv, match):
    if not (made / "bad").exists():
        _junk(made)
    err = run([a.format(r=made, t=tmp_path) for a in argv], capsys, code=2)
    assert re.search(match, err), err
    assert "Traceback" not in err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_help_keys_lists_the_data_keys_and_every_transcriber_argument(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "transcribe", "--help-keys"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for key in cfg.schema("transcribe")["model"]:
        assert re.search(rf"^  {key} = ", out, re.M), key
    assert re.search(r"^  beam_width = 1 +1 decodes greedily", out, re.M)
    assert re.search(r'^  name_pattern = "\(\?P<text>\[\^_\]\+\)_" ', out, re.M)
    assert re.search(r"^  path = \(required\) --data +a folder of WAV files", out, re.M)
    assert not re.search(r"^  (progress|log_dir|checkpoint_dir|resume) = ", out, re.M)


# ------------------------------------------------------------------ real speech
def test_the_default_name_pattern_reads_fsdd_file_names(tmp_path, capsys):
    root = data_dir()
    recordings = None if root is None else root / "fsdd" / "recordings"
    if recordings is None or not recordings.is_dir():
        pytest.skip("the spoken digits (../shared/data/fsdd/recordings) are absent")
    for digit in range(10):
        shutil.copy(recordings / f"{digit}_theo_0.wav", tmp_path / f"{digit}_theo_0.wav")
    run(["fit", "transcribe", "--data", tmp_path, *TINY, "--out", tmp_path / "m"], capsys)
    info = json.loads((tmp_path / "m" / "info.json").read_text(encoding="utf-8"))
    assert info["tokens"] == [str(d) for d in range(10)] and info["utterances"] == 10
