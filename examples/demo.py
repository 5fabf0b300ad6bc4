"""The main job end to end on an embedded default (``make demo``).

1. Generate a Darcy-flow dataset (-div(a grad u) = 1, thresholded random permeability).
2. Train a small deep ensemble of multigrid neural operators (MgNO) on it.
3. Evaluate on the test split: relative L2/H1 per sample, UQ metrics of the ensemble
   (CRPS, coverage, calibration), figures of the best/median/worst samples.
4. Evaluate the same ensemble, without retraining, on the same test fields sampled on a
   grid twice as fine (MgNO is resolution-consistent).
5. Write ``<out>/REPORT.md`` (+ PNG figures and JSON) and print where it is.

Run: ``python examples/demo.py --out demo_output`` (about 5 minutes on 2 cores;
``--smoke`` for a seconds-long run).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import time
from pathlib import Path

from pdesurrogates.cli import main as cli
from pdesurrogates.io import atomic_write_bytes, atomic_write_text

SETTINGS = {
    "full": {
        "n": 500,
        "res": 32,
        "members": 3,
        "seconds_per_member": 60.0,
        "model": {"channels": 16, "layers": 3, "projection_channels": 32},
    },
    "smoke": {
        "n": 24,
        "res": 16,
        "members": 2,
        "seconds_per_member": 2.0,
        "model": {"channels": 4, "layers": 1, "projection_channels": 8},
    },
}


def _generate(path: Path, n: int, res: int) -> Path:
    args = [
        "generate",
        "darcy",
        "-n",
        str(n),
        "-r",
        str(res),
        "--seed",
        "0",
        "-o",
        str(path),
        "--quiet",
    ]
    if path.exists():
        args.append("--overwrite")
    if cli(args) != 0:
        raise SystemExit(f"data generation failed ({path})")
    return path


def _training_curves(histories):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, h in enumerate(histories):
        ep = [r["epoch"] for r in h]
        ax.semilogy(ep, [r["train_loss"] for r in h], color=f"C{i}", label=f"member {i} train")
        if h and "valid_rel_l2" in h[0]:
            ax.semilogy(
                ep,
                [r["valid_rel_l2"] for r in h],
                color=f"C{i}",
                ls="--",
                label=f"member {i} valid",
            )
    ax.set(xlabel="epoch", ylabel="relative L2", title="Training")
    ax.legend(fontsize="small")
    return fig


def run(out: Path, *, smoke: bool = False) -> Path:
    """Run the demo into ``out``; return the path of the report."""
    from pdesurrogates.runs import evaluate_run, train_run

    s = SETTINGS["smoke" if smoke else "full"]
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    print(f"1/4 generating {s['n']} Darcy samples at {s['res']}² ...", flush=True)
    data = _generate(out / "darcy.h5", s["n"], s["res"])
    fine = _generate(out / f"darcy_{2 * s['res']}.h5", s["n"], 2 * s["res"])

    print(
        f"2/4 training an MgNO ensemble of {s['members']} members "
        f"({s['seconds_per_member']:.0f} s each) ...",
        flush=True,
    )
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = {
        "model": s["model"],
        "training": {
            "lr": 3e-3,
            "batch_size": 8,
            "epochs": 1000,
            "loss": "rel_l2",
            "max_time": s["seconds_per_member"],
            "seed": 0,
        },
        "data": {},
    }
    record = train_run(
        "mgno", data, run_dir, config=config, ensemble=s["members"], progress=not smoke
    )

    print("3/4 evaluating on the test split ...", flush=True)
    report_dir = out / "report"
    m = evaluate_run(run_dir, data, report_dir, split="test", overwrite=True)
    print(f"4/4 evaluating zero-shot at {2 * s['res']}² ...", flush=True)
    m_fine = evaluate_run(
        run_dir, fine, out / f"report_{2 * s['res']}", split="test", overwrite=True
    )

    fig = _training_curves(record["histories"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(report_dir / "training.png", buf.getvalue())

    import pdesurrogates

    n_params = sum(p.numel() for p in pdesurrogates.load(run_dir / "model").members[0].parameters())
    total = time.perf_counter() - t_start
    summary = {
        "dataset": {
            "file": str(data),
            "n_samples": s["n"],
            "resolution": s["res"],
            "n_train": record["n_train"],
            "n_valid": record["n_valid"],
        },
        "model": {
            "kind": "MgNO ensemble",
            "members": s["members"],
            "config": record["model"]["config"],
        },
        "test": {"rel_l2": m["rel_l2"], "rel_h1": m["rel_h1"], "uq": m.get("uq", {})},
        f"zero_shot_{2 * s['res']}": {"rel_l2": m_fine["rel_l2"], "rel_h1": m_fine["rel_h1"]},
        "seconds": total,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    uq = m.get("uq", {})
    uq_rows = [
        (k, uq[k])
        for k in (
            "crps",
            "coverage_90",
            "coverage_95",
            "miscalibration_area",
            "spread_skill_ratio",
            "sharpness",
        )
        if k in uq
    ]
    lines = [
        "# pdesurrogates demo: an MgNO ensemble for Darcy flow",
        "",
        f"Data: {s['n']} Darcy samples at {s['res']}² (train {record['n_train']}, valid "
        f"{record['n_valid']}, test {m['n_samples']}), generated by "
        "`pdesurrogates generate darcy`.",
        f"Model: deep ensemble of {s['members']} MgNO ({n_params:,} parameters each, "
        f"configuration in `run/run.json`), each trained for "
        f"{s['seconds_per_member']:.0f} s.",
        "",
        "| test set | rel L2 (mean) | rel L2 (median) | rel H1 (mean) |",
        "|---|---|---|---|",
        f"| {s['res']}² (training grid) | {m['rel_l2']['mean']:.4f} | "
        f"{m['rel_l2']['median']:.4f} | {m['rel_h1']['mean']:.4f} |",
        f"| {2 * s['res']}² (zero-shot) | {m_fine['rel_l2']['mean']:.4f} | "
        f"{m_fine['rel_l2']['median']:.4f} | {m_fine['rel_h1']['mean']:.4f} |",
        "",
    ]
    if uq_rows:
        lines += [
            "Uncertainty of the ensemble on the test split:",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.4g} |" for k, v in uq_rows]
        lines += ["", "![calibration](report/calibration.png)", ""]
    lines += [
        "![training](report/training.png)",
        "",
        "Worst test sample (input, truth, prediction, error, ensemble spread):",
        "",
        "![worst](report/sample_worst.png)",
        "",
        "Details: `report/report.md` (training grid), "
        f"`report_{2 * s['res']}/report.md` (zero-shot), `summary.json`.",
        "",
        f"Total time: {total:.0f} s.",
        "",
    ]
    report = out / "REPORT.md"
    atomic_write_text(report, "\n".join(lines))
    print(
        f"test rel L2 {m['rel_l2']['mean']:.4f} at {s['res']}², "
        f"{m_fine['rel_l2']['mean']:.4f} zero-shot at {2 * s['res']}²"
    )
    print(f"report: {report.resolve()}")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs/demo"),
        help="output directory (default: runs/demo)",
    )
    parser.add_argument(
        "--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling of -o
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    run(args.output, smoke=args.smoke)
