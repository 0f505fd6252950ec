"""One-to-many captions: scikit-learn's 8x8 digit images to the digit's name, spelled letter by letter.

A OneToMany model reads the 64 pixels into its initial state and generates letters until the stop token; the
score is the exact match of the generated word on a held-out quarter of the images (stratified, seeded).

    python experiments/digit_captions.py                # English names, 3 seeds
    python experiments/digit_captions.py --lang pt      # "sete" for 7
"""
import argparse
import sys
import time

import numpy as np
import torch

import rnr
from rnr.data import tasks


def exact_match(model, X, Y) -> float:
    out, lengths = model.generate(X, steps=8)
    hits = [int(n) == len(y) - 1 and torch.equal(o[: int(n)], y[:-1]) for o, n, y in zip(out, lengths, Y)]
    return float(np.mean(hits))


def run(lang: str, seed: int, epochs: int, hidden: int):
    from sklearn.model_selection import train_test_split

    X, Y, labels = tasks.digit_captions(lang)
    tr, te = train_test_split(np.arange(len(X)), test_size=0.25, stratify=labels, random_state=seed)
    torch.manual_seed(seed)
    model = rnr.OneToMany(64, tasks.EOS + 1, hidden_size=hidden, cell="gru", task="classification", eos=tasks.EOS)
    rnr.fit(model, (X[tr], [Y[i] for i in tr]), epochs=epochs, batch_size=32, lr=5e-3, lr_schedule="cosine",
            seed=seed, progress=False)
    model.eval()
    return exact_match(model, X[te], [Y[i] for i in te])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lang", default="en", choices=sorted(tasks.DIGIT_NAMES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=64)
    args = p.parse_args(argv)
    scores = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        scores.append(100 * run(args.lang, seed, args.epochs, args.hidden))
        print(f"seed {seed}: exact match {scores[-1]:.2f}% on 450 held-out images ({time.perf_counter() - start:.1f} s)",
              flush=True)
    print(f"mean {np.mean(scores):.2f} +- {np.std(scores):.2f} % over {len(scores)} seeds ({args.lang})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
