"""The ``rnr`` command. For now it runs the tour; the full command line comes with the tool issue."""
import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rnr",
        description="Recurrent neural networks for every kind of sequence.",
        epilog="example:\n  rnr tour    train each topology on a small task and print a table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("tour", help="train each topology on its small generated task and print a table")
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("rnr"))
        return 0
    if args.command == "tour":
        from rnr.tour import main as tour

        tour()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
