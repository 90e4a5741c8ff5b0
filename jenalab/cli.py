"""The `jenalab` command: data summary, release generation, grading and calibration."""

from __future__ import annotations

import argparse
import sys

from jenalab.data import JenaDataError


def summary(args: argparse.Namespace) -> None:
    """Build the lab's tensors and print split sizes, features and baseline errors."""
    from jenalab.baselines import baseline_errors
    from jenalab.pipeline import build_windows

    windows = build_windows(path=args.data)
    print(windows.summary())
    print("Baseline MAE (degC):        val     test")
    for name, errors in baseline_errors(windows).items():
        print(f"  {name:<22} {errors['val']:>7.3f}  {errors['test']:>7.3f}")


def demo(args: argparse.Namespace) -> None:
    """The course's main job, end to end."""
    summary(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jenalab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("summary", summary), ("demo", demo)):
        command = commands.add_parser(name, help=handler.__doc__.splitlines()[0], description=handler.__doc__)
        command.add_argument("--data", help="path to a Jena data file (default: $JENA_DATA_FILE, then the lookup order in the README)")
        command.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except JenaDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
