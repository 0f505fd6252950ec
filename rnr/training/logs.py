"""Training logs and a graceful Ctrl-C.

``MetricsLog(folder)`` writes each epoch's metrics to ``folder/metrics.csv`` (always, rewritten atomically after
every epoch, so a killed run leaves a whole file) and, when the ``tensorboard`` package is installed, to TensorBoard
event files in the same folder (``tensorboard --logdir folder``).

``graceful_stop()`` turns the first Ctrl-C of a block into a request that the training loops of rnr honour after
the step they are in: they stop, write their checkpoint, and return the model trained so far (its history says
``interrupted``). A second Ctrl-C interrupts at once. Outside the block Ctrl-C is Python's usual
``KeyboardInterrupt``::

    with rnr.training.logs.graceful_stop():
        model.fit(df)        # Ctrl-C: a usable model, fitted up to the step it was in
"""
import csv
import math
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

_stop = threading.Event()



def stop_requested() -> bool:
    """True once a Ctrl-C arrived inside ``graceful_stop()``; training loops check it after each step."""
    return _stop.is_set()


@contextmanager
def graceful_stop(message: str = "stopping after this step; Ctrl-C again to stop at once"):
    """Inside the block, the first SIGINT sets ``stop_requested()`` (and prints ``message``), the second raises
    ``KeyboardInterrupt``. Outside the main thread signals cannot be caught, and the block does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if _stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        _stop.set()
        print(f"\n{message}", file=sys.stderr, flush=True)

    _stop.clear()
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _stop.clear()


class MetricsLog:
    """Each row of metrics (one per epoch) to ``folder/metrics.csv``, and to TensorBoard when it is installed.

    Args:
        folder: where ``metrics.csv`` (and the TensorBoard event files) go; created if missing.
        tensorboard: True (required: an ImportError if the package is missing), False (never) or None (when
            installed).
        rows: rows already logged (a resumed run passes its history, so the CSV keeps every epoch).
    """

    def __init__(self, folder, tensorboard: bool | None = None, rows=()):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows = [dict(r) for r in rows]
        self.writer = None
        if tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package
            except ImportError:
                if tensorboard:
                    raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard") \
                        from None
            else:
                self.writer = SummaryWriter(str(self.folder))

    @property
    def csv_path(self) -> Path:
        return self.folder / "metrics.csv"

    def write(self, row: dict, step: int | None = None) -> None:
        """Add one row; ``step`` places it on TensorBoard's x axis (default: the row's ``epoch``)."""
        self.rows.append(dict(row))
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.csv_path)
        if self.writer is not None:
            x = step if step is not None else row.get("epoch", len(self.rows))
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                        and key not in ("epoch", "steps"):
                    self.writer.add_scalar(key, value, x)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
