"""The ``posetween`` command. Each subcommand lives in its own module, which exposes
``register(subparsers)``: it adds its parser and sets ``func`` to the function that runs it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "posetween.training.build_data",   # data build
    "posetween.training.train",        # train
    "posetween.training.evaluate",     # eval
    "posetween.export.cli",            # export, bench latency
    "posetween.stream.cli",            # serve, replay
    "posetween.stream.demo",           # demo
    "posetween.offline.upsample",      # upsample
    "posetween.offline.visualize",     # visualize
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="posetween", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
