"""Run the benchmarks: `python -m bench [AREA ...] [--quick]`.

Each bench/bench_<area>.py has `main(quick: bool) -> None` and prints its
figures as ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    areas = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("areas", nargs="*", choices=areas + [[]], help=f"default: all of {', '.join(areas)}")
    p.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = p.parse_args()
    failed = 0
    for area in args.areas or areas:
        print(f"\n=== bench {area} ===", flush=True)
        t0 = time.monotonic()
        try:
            importlib.import_module(f"bench.bench_{area}").main(quick=args.quick)
        except Exception as e:  # report and go on with the next area
            failed += 1
            print(f"bench {area} FAILED: {type(e).__name__}: {e}", flush=True)
        print(f"=== {area}: {time.monotonic() - t0:.1f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
