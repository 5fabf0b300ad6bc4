"""The main job end to end on an embedded default (``make demo``).

Generates a small Darcy dataset and prints its summary.

Run: ``python examples/demo.py --out demo_output`` (``--smoke`` for a seconds-long run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdesurrogates.cli import main as cli


def run(out: Path, *, smoke: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    data = out / "darcy.h5"
    n, res = (24, 16) if smoke else (400, 32)
    args = ["generate", "darcy", "-n", str(n), "-r", str(res), "--seed", "0", "-o", str(data)]
    if data.exists():
        args.append("--overwrite")
    if cli(args) != 0:
        raise SystemExit("data generation failed")
    cli(["info", str(data)])
    return data


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    run(args.out, smoke=args.smoke)
