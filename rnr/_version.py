"""The package version, in one place (``rnr.__version__``, model files, ONNX exports)."""

__version__ = "0.1.0"
