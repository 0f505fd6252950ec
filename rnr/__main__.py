"""The ``rnr`` command: ``fit``, ``predict``, ``evaluate``, ``backtest``, ``plot``, ``generate``, ``export`` and
``info`` (``rnr.cli``), ``demo`` (the forecasting main job) and
``tour`` (each topology on a small task)."""
import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rnr",
        description="Recurrent neural networks for every kind of sequence.",
        epilog="examples:\n"
               "  rnr fit forecast --data sales.csv --id store --time date --target units --horizon 28 --out model/\n"
               "  rnr predict model/ --out forecast.csv\n"
               "  rnr info model/\n"
               "  rnr fit classify --data reviews.csv --text review --label sentiment --out clf/\n"
               "  rnr fit text --data shakespeare.txt --out lm/ && rnr generate lm/ --prime ROMEO:\n"
               "  rnr demo    backtest a forecaster on a generated sales panel against the baselines\n"
               "  rnr tour    train each topology on a small task and print a table\n"
               "exit codes: 0 success, 2 usage or input error, 1 failure",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    from rnr.cli import add_commands, run

    add_commands(sub)
    sub.add_parser("tour", help="train each topology on its small generated task and print a table")
    sub.add_parser("demo", help="backtest a forecaster on a generated sales panel (options: rnr demo --help)",
                   add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from rnr.demo import main as demo

        return demo(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.version:
        from importlib.metadata import version

        print(version("rnr"))
        return 0
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command in ("fit", "predict", "info", "plot", "backtest", "evaluate", "generate", "export"):
        return run(args)
    if args.command == "tour":
        from rnr.tour import main as tour

        tour()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
