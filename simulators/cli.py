"""`gateway-sim`: one subcommand per device kind, plus `scenario`.

Each kind registers itself from its own module (simulators/<kind>.py) with a
`register(subparsers)` function; every subcommand documents itself (--help).
"""

from __future__ import annotations

import argparse
import importlib
import sys

KINDS = ("tracker", "camera", "kiosk", "bodycam", "scenario")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway-sim", description="Simulated devices that speak the real wire protocols.")
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind in KINDS:
        module = importlib.import_module(f"simulators.{kind}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
