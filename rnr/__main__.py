"""``python -m rnr``: the ``rnr`` command (``rnr.cli.main``)."""
import sys

from rnr.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
