"""Tokenizers: text to integer tokens and back, with a vocabulary built from training text.

``Tokenizer(level="word" | "char" | "space", lower=True, min_count=1, max_size=None)``: ``fit(texts)`` keeps the tokens seen
at least ``min_count`` times (the ``max_size`` most frequent, ties broken alphabetically, so the vocabulary is
the same on every run); ``encode(text)`` maps the rest to the unknown token. Token 0 is padding, 1 is unknown.
Words are runs of letters, digits and apostrophes, or single punctuation marks; "space" splits on white space
only, for text that is already tokenised.
"""
import re
from collections import Counter

PAD, UNK = "<pad>", "<unk>"
LEVELS = ("word", "char", "space")
_WORD = re.compile(r"[\w']+|[^\w\s]")


class Tokenizer:
    def __init__(self, level: str = "word", lower: bool = True, min_count: int = 1, max_size: int | None = None):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be None or an int >= 1, got {max_size!r}")
        self.level, self.lower, self.min_count, self.max_size = level, lower, min_count, max_size

    def split(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        text = text.lower() if self.lower else text
        if self.level == "space":
            return text.split()
        return list(text) if self.level == "char" else _WORD.findall(text)

    def fit(self, texts) -> "Tokenizer":
        counts = Counter(tok for t in texts for tok in self.split(t))
        kept = sorted((tok for tok, n in counts.items() if n >= self.min_count), key=lambda t: (-counts[t], t))
        self.vocab_ = [PAD, UNK] + kept[: self.max_size]
        self.index_ = {tok: i for i, tok in enumerate(self.vocab_)}
        return self

    def __len__(self) -> int:
        return len(self.vocab_)

    def encode(self, text: str) -> list[int]:
        """Token ids; an empty text gives [UNK] so that every sequence has at least one step."""
        ids = [self.index_.get(tok, 1) for tok in self.split(text)]
        return ids or [1]

    def decode(self, ids) -> str:
        toks = [self.vocab_[i] for i in ids if i != 0]
        return ("" if self.level == "char" else " ").join(toks)

    def to_state(self) -> dict:
        return {"level": self.level, "lower": self.lower, "min_count": self.min_count, "max_size": self.max_size,
                "vocab": self.vocab_}

    @classmethod
    def from_state(cls, state: dict) -> "Tokenizer":
        tok = cls(state["level"], state["lower"], state["min_count"], state["max_size"])
        tok.vocab_ = list(state["vocab"])
        tok.index_ = {t: i for i, t in enumerate(tok.vocab_)}
        return tok
