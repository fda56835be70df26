"""How far a re-run of a board entry moves across thread counts and CPU kernels: the evidence for the
verification tolerances each metric declares (``metaenvs.metrics.VERIFY_TOLERANCES``).

Usage:
    python benchmarks/verify_tolerance.py --out benchmarks/results/verify_tolerance/result.json

Every shipped entry (or those of ``--dist``) is re-evaluated from its stored initialization under the
official protocol in a fresh process per variant: torch with 1 or 2 threads, and ATen's CPU kernels
forced to the portable ``default`` ones (``ATEN_CPU_CAPABILITY=default``, what a CPU without AVX2
runs) or left to this CPU's best. Each run's final score is compared with the submitted one; the JSON
holds the largest absolute and relative difference per entry, variant and metric.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

RERUN = """
import json, sys
import torch
torch.set_num_threads(int(sys.argv[3]))
import metaenvs
from agents import make_agent
from metaenvs.evaluation import evaluate
entry = json.loads(open(sys.argv[1]).read())
dist = metaenvs.make(entry["result"]["dist_id"])
init = sys.argv[2] if sys.argv[2] != "-" else None
result = evaluate(make_agent(dist, seed=0), dist, init, dist.protocol)
print(json.dumps([[r["task_id"], r["seed"], r["final"]] for r in result.records]))
"""
VARIANTS = {
    "1-thread-native": {"threads": 1, "env": {}},
    "2-threads-native": {"threads": 2, "env": {}},
    "1-thread-portable": {"threads": 1, "env": {"ATEN_CPU_CAPABILITY": "default"}},
    "2-threads-portable": {"threads": 2, "env": {"ATEN_CPU_CAPABILITY": "default"}},
}
"""Torch threads, and ATen's kernels: this CPU's best (``native``) or the portable ones (``portable``)."""


TOLERANCES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
"""Tolerances (relative and absolute alike) at which the runs beyond are counted."""


def iqm(values: list[float]) -> float:
    from metaenvs.aggregates import iqm as interquartile_mean

    return float(interquartile_mean(values))


def rerun(entry_path: Path, init: str, variant: dict) -> dict[tuple[str, int], float]:
    env = {**os.environ, **variant["env"], "OMP_NUM_THREADS": str(variant["threads"])}
    done = subprocess.run(
        [sys.executable, "-c", RERUN, str(entry_path), init, str(variant["threads"])],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return {(t, s): v for t, s, v in json.loads(done.stdout.splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="leaderboard/board")
    parser.add_argument("--dist", default=None, help="only the entries of this distribution")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--out", default="benchmarks/results/verify_tolerance/result.json")
    args = parser.parse_args()
    board = Path(args.board)
    rows, by_metric = [], {}
    for path in sorted((board / "entries").glob("*.json")):
        entry = json.loads(path.read_text())
        result = entry["result"]
        if args.dist and result["dist_id"] != args.dist:
            continue
        sha = result["init"]["sha256"]
        init = str(board / "inits" / f"{sha}.safetensors") if sha else "-"
        submitted = {(r["task_id"], r["seed"]): float(r["final"]) for r in result["records"]}
        metric = result["protocol"]["metric"]
        for name in args.variants.split(","):
            again = rerun(path, init, VARIANTS[name])
            diffs = [abs(submitted[k] - again[k]) for k in submitted]
            rel = [abs(submitted[k] - again[k]) / max(abs(submitted[k]), 1e-12) for k in submitted]
            iqm_submitted = iqm(list(submitted.values()))
            iqm_rerun = iqm([again[k] for k in submitted])
            row = {
                "entry": entry["id"],
                "iqm_submitted": iqm_submitted,
                "iqm_rerun": iqm_rerun,
                "iqm_rel_diff": abs(iqm_rerun - iqm_submitted) / max(abs(iqm_submitted), 1e-12),
                "runs_beyond": {
                    f"{tol:g}": sum(
                        not math.isclose(submitted[k], again[k], rel_tol=tol, abs_tol=tol) for k in submitted
                    )
                    for tol in TOLERANCES
                },
                "dist_id": result["dist_id"],
                "algorithm": (result["init"].get("card") or {}).get("algorithm", "scratch"),
                "metric": metric,
                "variant": name,
                "runs": len(diffs),
                "runs_differing": sum(d > 0 for d in diffs),
                "max_abs_diff": max(diffs),
                "max_rel_diff": max(rel),
            }
            rows.append(row)
            worst = by_metric.setdefault(metric, {"max_abs_diff": 0.0, "max_rel_diff": 0.0})
            worst["max_abs_diff"] = max(worst["max_abs_diff"], row["max_abs_diff"])
            worst["max_rel_diff"] = max(worst["max_rel_diff"], row["max_rel_diff"])
            print(
                f"{row['dist_id']:<32} {row['algorithm']:<8} {name:<32} "
                f"{row['runs_differing']:>4}/{row['runs']} differ, max abs {row['max_abs_diff']:.2e}, "
                f"max rel {row['max_rel_diff']:.2e}",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/verify_tolerance.py" + (f" --dist {args.dist}" if args.dist else "")
    out.write_text(
        json.dumps({"command": command, "rows": rows, "worst_by_metric": by_metric}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
