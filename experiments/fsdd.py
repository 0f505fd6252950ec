"""Spoken digits (FSDD): digit strings transcribed by ``rnr.Transcriber`` with its defaults, and single digits.

Training utterances join 1-7 clips of one speaker from the training takes (5-49) with random pauses, perturbed
(gain, speed, noise); test utterances join clips of the test takes (0-4) only, unperturbed. The same model then
transcribes every single test clip (250), whose exact-match rate is the single-digit accuracy (also reported
with 100 ms of silence before and after each clip, as the digits of the test strings have).

    python experiments/fsdd.py                        # Transcriber() defaults: forward only (streams), 15 minutes
    python experiments/fsdd.py --set bidirectional=true   # the bidirectional model
    python experiments/fsdd.py --seeds 3 --minutes 5  # a shorter budget
    python experiments/fsdd.py --threads 1 --streaming & python experiments/fsdd.py --threads 1 --set bidirectional=true
"""
import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

import rnr
from rnr.data.audio import read_wav
from rnr.data.utterances import digit_strings, load_fsdd
from rnr.sequences.transcriber import Transcriber


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    p.add_argument("--minutes", type=float, default=None, help="max_minutes (default: the estimator's)")
    p.add_argument("--train", type=int, default=6000, help="training utterances")
    p.add_argument("--test", type=int, default=500, help="test utterances")
    p.add_argument("--streaming", action="store_true", help="bidirectional=False (what stream() needs)")
    p.add_argument("--beam", type=int, default=8, help="also decode with a prefix beam search of this width")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="another Transcriber setting")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--save", default=None, metavar="DIR", help="save each seed's model as DIR/seed-N")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_fsdd()
    if data is None:
        print("fsdd not found: set RNR_DATA or place it at ../shared/data/fsdd", file=sys.stderr)
        return 2
    train_clips, test_clips = data
    settings = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.streaming:
        settings["bidirectional"] = False
    if args.minutes is not None:
        settings["max_minutes"] = args.minutes
    X_test, y_test = digit_strings(test_clips, args.test, seed=10_000)
    singles = [str(c.path) for c in test_clips]
    quiet = np.zeros(800, np.float32)  # 100 ms of silence, as around the digits of the test strings
    padded = [np.concatenate([quiet, read_wav(c.path)[0], quiet]) for c in test_clips]
    single_text = [c.text for c in test_clips]
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; {len(train_clips)} "
          f"training clips, {len(test_clips)} test clips; {args.train} training utterances, {args.test} test; "
          f"settings {settings}", flush=True)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        X, y = digit_strings(train_clips, args.train, seed=seed, augment=True)
        start = time.perf_counter()
        asr = Transcriber(random_state=seed, progress=False, **settings).fit(X, y)
        secs = time.perf_counter() - start
        start = time.perf_counter()
        greedy = asr.evaluate(X_test, y_test)
        decode_s = time.perf_counter() - start
        beam = asr.evaluate(X_test, y_test, beam_width=args.beam)
        digit = asr.evaluate(singles, single_text)
        digit_padded = asr.evaluate(padded, single_text)
        if args.save:
            rnr.save(asr, f"{args.save}/seed-{seed}")
        audio_s = sum(len(x) for x in X_test) / 8000
        if args.streaming:  # audio as it arrives, 100 ms a block, one thread: seconds of compute per second of audio
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            start, same = time.perf_counter(), 0
            for x, whole in zip(X_test[:50], asr.predict(X_test[:50])):
                stream = asr.stream()
                for at in range(0, len(x), 800):
                    stream.push(x[at : at + 800])
                same += stream.finish() == whole
            stream_s = time.perf_counter() - start
            torch.set_num_threads(threads)
            per_second = stream_s / (sum(len(x) for x in X_test[:50]) / 8000)
        row = {"seed": seed, "fit_s": round(secs, 1), "epochs": len(asr.history_),
               "der_greedy": 100 * greedy["token_error_rate"], "der_beam": 100 * beam["token_error_rate"],
               "exact": 100 * greedy["exact_match"], "single_digit_acc": 100 * digit["exact_match"],
               "single_digit_padded_acc": 100 * digit_padded["exact_match"],
               "realtime_x": audio_s / decode_s}
        if args.streaming:
            row.update(stream_ms_per_audio_s=1000 * per_second, stream_realtime_x=1 / per_second,
                       stream_equals_whole=same / 50)
        rows.append(row)
        print(f"seed {seed}: digit error rate {row['der_greedy']:.2f}% greedy, {row['der_beam']:.2f}% beam "
              f"{args.beam}; strings exact {row['exact']:.1f}%; single digits {row['single_digit_acc']:.2f}% "
              f"({row['single_digit_padded_acc']:.2f}% with 100 ms of silence around each); "
              f"{secs:.0f} s to train ({row['epochs']} epochs); decoding {row['realtime_x']:.0f}x real time; "
              f"{asr!r}", flush=True)
        if args.streaming:
            print(f"  streaming, 100 ms blocks, one thread: {row['stream_ms_per_audio_s']:.1f} ms per second of "
                  f"audio ({row['stream_realtime_x']:.0f}x faster than real time); the stream's transcript equals "
                  f"the whole file's for {100 * row['stream_equals_whole']:.0f}% of 50 utterances", flush=True)
    for key in ("der_greedy", "der_beam", "exact", "single_digit_acc", "single_digit_padded_acc", "fit_s"):
        v = np.array([r[key] for r in rows])
        print(f"{key}: {v.mean():.2f} +- {v.std():.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": settings, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
