"""Labelled sequences and text: ``RNNClassifier``, the character language model ``CharLM``, sentence-to-sentence
``Seq2Seq``, speech to text ``Transcriber``, and views of the hidden state at work (``hidden``)."""
from rnr.sequences.charlm import CharLM
from rnr.sequences.classifier import RNNClassifier
from rnr.sequences.seq2seq import Seq2Seq
from rnr.sequences.transcriber import Transcriber

__all__ = ["RNNClassifier", "CharLM", "Seq2Seq", "Transcriber"]
