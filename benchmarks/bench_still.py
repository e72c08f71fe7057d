"""Still-character bench (issue 20): patchmatch vs exemplar vs exemplar invented once per shot.

    python benchmarks/bench_still.py [--data ../shared/data] [--frames 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

from cleanplate.config import load_config
from cleanplate.report.bench_still import METHODS, StillSpec, run_still_bench, still_markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder with sintel_market and davis_tennis")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = run_still_bench(load_config(), args.data, tuple(args.methods.split(",")), StillSpec(frames=args.frames))
    print("\n".join(still_markdown(result)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
