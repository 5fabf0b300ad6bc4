"""Fuzzing: mutated dataset files, model directories and solver inputs, by outcome class.

Each area's driver lives in :mod:`pdesurrogates.testing` (``fuzz_datasets``,
``fuzz_models``, ``fuzz_solvers``): it builds valid inputs, mutates them reproducibly from
``(seed, index)`` and sorts every case into an outcome class. The promise
(docs/guide/reliability.md) is that only two classes occur: *rejected clearly* (a
``PdeSurrogatesError`` naming the file, object or argument) and *accepted correct* (the data
or the solution checked against the original). Tracebacks, crashes of the main process,
hangs and silent acceptances must all be zero.

Run: ``python benchmarks/bench_fuzz.py`` (default 700 dataset, 300 model and 300 solver
cases; ``--quick`` for a few dozen).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, markdown_table, write_results

BAD = ("traceback", "crash", "hang", "silent_acceptance")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few dozen cases per area")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", type=int, default=700, help="dataset-file cases")
    ap.add_argument("--models", type=int, default=300, help="model-directory cases")
    ap.add_argument("--solvers", type=int, default=300, help="solver-input cases")
    args = ap.parse_args(argv)
    from pdesurrogates import testing

    budgets = {"datasets": args.datasets, "models": args.models, "solvers": args.solvers}
    if args.quick:
        budgets = {k: 20 for k in budgets}
    rows, results = [], {}
    for area, n in budgets.items():
        driver = getattr(testing, f"fuzz_{area}")
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            out = driver(n, args.seed, Path(work))
            seconds = time.perf_counter() - t0
        results[area] = {**out, "seconds": seconds}
        rows.append(
            {
                "area": area,
                "cases": out["cases"],
                "rejected clearly": out["rejected_clearly"],
                "accepted correct": out["accepted_correct"],
                **{k.replace("_", " "): out[k] for k in BAD},
                "seconds": round(seconds, 1),
            }
        )
        print(rows[-1], flush=True)
    total = {k: sum(r[k.replace("_", " ")] for r in rows) for k in ("cases", *BAD)}
    command = "python benchmarks/bench_fuzz.py" + (" --quick" if args.quick else "")
    md = (
        "Outcome of every fuzz case by class. Only *rejected clearly* and *accepted correct* "
        "may occur.\n\n"
        + markdown_table(rows)
        + f"\n\nTotal: {total['cases']} cases; "
        + ", ".join(f"{k.replace('_', ' ')} {total[k]}" for k in BAD)
        + ".\n"
    )
    write_results(
        "fuzz",
        {"environment": environment(), "seed": args.seed, "areas": results, "total": total},
        md,
        command=command,
    )
    return 1 if any(total[k] for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
