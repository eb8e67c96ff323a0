"""`python -m luma_noise.baselines {train,sweep,report,evaluate} ...`: the baselines' command line.

Each subcommand lives in its own module with `add_parser(subparsers)` (registers its
argparse subparser) and `run(args) -> int` (exit status), so that another command (the
`luma` command) can mount the same subcommands with `mount(subparsers)`.
"""

import argparse
import importlib
import sys

# Subcommand modules, in the order `--help` lists them; a missing module is skipped so that
# the dispatcher works while a subcommand is still being written.
SUBCOMMANDS = ("train", "sweep", "report", "evaluations")  # evaluations.py: `evaluate`


def mount(subparsers) -> None:
    """Register every available subcommand on `subparsers` (from `add_subparsers()`).

    `add_parser` returns its subparser (or registers it under the module's name); each
    subparser gets `func=<module>.run` as its default, so `args.func(args)` runs it.
    """
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"luma_noise.baselines.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"luma_noise.baselines.{name}":
                raise  # the module exists but one of its imports is missing: say so
            continue
        parser = module.add_parser(subparsers) or subparsers.choices[name]
        parser.set_defaults(func=module.run)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m luma_noise.baselines",
                                     description="Train, sweep and report LUMA's uncertainty baselines.")
    mount(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
