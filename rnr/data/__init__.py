"""Data in: ragged sequences padded per batch (``sequences``), tokenizers (``text``), small generated tasks
(``tasks``) and the loaders of the real data sets under ``../shared/data`` (``datasets``)."""
from rnr.data import datasets, tasks
from rnr.data.sequences import Batch, SequenceData, pad
from rnr.data.text import Tokenizer

__all__ = ["SequenceData", "Batch", "pad", "Tokenizer", "tasks", "datasets"]
