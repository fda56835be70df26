"""Run the scale benchmarks and write ``benchmarks/README.md`` from ``benchmarks/results/*/result.json``.

Usage:
    python benchmarks/run_all.py                      # run overhead, batched, ray_scaling; write the page
    python benchmarks/run_all.py --only batched       # run one (comma-separated names)
    python benchmarks/run_all.py --report-only        # only re-write the page from the stored results
    python benchmarks/run_all.py --with-memory        # also second_order_cost (memory against K; slow)

Every figure on the page is a ratio against the plain baseline measured in the same
run (machines are shared and noisy). Atari throughput is the issue-#6 benchmark
(``benchmarks/atari_throughput.py``); the page reads its result when present.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = {
    "overhead": ["benchmarks/overhead.py"],
    "batched": ["benchmarks/batched.py"],
    "ray_scaling": ["benchmarks/ray_scaling.py"],
    "second_order_cost": ["benchmarks/second_order_cost.py", "--ks", "10,100,1000"],
}


def load(name: str, file: str = "result.json") -> dict | None:
    path = RESULTS / name / file
    return json.loads(path.read_text()) if path.is_file() else None


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def overhead_section() -> list[str]:
    data = load("overhead")
    out = ["## Overhead per inner step of every meta-learner", ""]
    if data is None:
        return [*out, "Not measured yet: `python benchmarks/overhead.py`.", ""]
    out += [
        f"`{data.get('command', 'python benchmarks/overhead.py')}`. Ratio = time with the meta-learner / "
        "time of plain training (1.00 = free), median of interleaved pairs. *hook*: `agent.learn` with the "
        "hook against without; *driver*: `meta_train` with the learner against `meta_train` with Scratch "
        "(lockstep CTS, and the second-order learners whose meta-gradient is the cost).",
        "",
    ]
    rows = []
    for family in ("mlp_regression", "a2c_cartpole"):
        for r in data.get(family, []):
            rows.append(
                [
                    family,
                    r["algo"],
                    r.get("measure", "hook"),
                    f"{r['ratio_median']:.2f}",
                    f"{r['ratio_min']:.2f}",
                    f"{r['ratio_max']:.2f}" if "ratio_max" in r else "n/a",
                ]
            )
    header = ["agent", "meta-learner", "measured as", "ratio (median)", "ratio (min)", "ratio (max)"]
    note = "`noop` is a hook with no handlers: its spread is the measurement's noise."
    return [*out, *table(header, rows), "", note, ""]


def batched_section() -> list[str]:
    out = ["## Batched inner loops (vmap) against the per-task loop", ""]
    found = False
    for file, label in (("result.json", "CPU"), ("result_cuda.json", "GPU")):
        data = load("batched", file)
        if data is None:
            continue
        found = True
        out += [
            f"**{label}** ({data['device']}, torch threads {data.get('torch_threads')}): "
            f"`{data['command']}`. "
            "Speedup = loop seconds / batched seconds, median of interleaved pairs; throughput in "
            "tasks x inner steps per second.",
            "",
        ]
        rows = [
            [
                r["family"],
                r["method"],
                r["meta_batch"],
                r["inner_steps"],
                f"{r['loop_task_steps_per_s']:.0f}",
                f"{r['batched_task_steps_per_s']:.0f}",
                f"**{r['speedup_median']:.2f}x**",
            ]
            for r in data["rows"]
        ]
        out += [*table(["family", "learner", "meta-batch", "K", "loop", "batched", "speedup"], rows), ""]
    if not found:
        out += ["Not measured yet: `python benchmarks/batched.py`.", ""]
    if load("batched", "result_cuda.json") is None:
        out += ["GPU: not measured (no GPU was lent to the run that produced this page).", ""]
    return out


def ray_section() -> list[str]:
    data = load("ray_scaling")
    out = ["## Ray executor with 1 and 2 workers against the local executor", ""]
    if data is None:
        return [*out, "Not measured yet: `python benchmarks/ray_scaling.py`.", ""]
    out += [
        f"`{data['command']}` on {data['machine']['cpus']} CPUs. Speedup = local seconds / Ray seconds "
        "(median of per-repeat ratios; Ray started and warmed up before timing). *identical*: Ray's "
        "initialization equals the local one bitwise in every repeat.",
        "",
    ]
    rows = [
        [
            r["workload"],
            f"{r['local_s_median']:.2f}",
            f"{r['ray_1_s_median']:.2f}",
            f"{r['ray_2_s_median']:.2f}",
            f"{r['speedup_ray_1_vs_local']:.2f}x",
            f"{r['speedup_ray_2_vs_local']:.2f}x",
            r["identical_to_local"],
        ]
        for r in data["rows"]
    ]
    header = ["workload", "local s", "ray 1 s", "ray 2 s", "1 worker", "2 workers", "identical"]
    return [*out, *table(header, rows), ""]


def atari_section() -> list[str]:
    data = load("atari_throughput")
    out = ["## Atari throughput against SB3's default pipeline (issue #6)", ""]
    if data is None:
        return [*out, "Pending: `benchmarks/results/atari_throughput/result.json` is not there yet.", ""]
    out += [
        f"`{data.get('command', 'python benchmarks/atari_throughput.py')}`. Ratios against SB3's pipeline:",
        "",
    ]
    rows = [[k, f"{v:.2f}"] for k, v in data.get("ratios", {}).items()]
    return [*out, *table(["ratio", "value"], rows), ""]


def memory_section() -> list[str]:
    data = load("second_order_cost")
    out = ["## Memory of one meta-gradient against K (issue #4)", ""]
    if data is None:
        return [*out, "Not measured yet: `python benchmarks/second_order_cost.py`.", ""]
    out += [
        f"`{data['command']}` ({data['device']}; {data['peak_memory']}). Peak memory of each method at K "
        "as a ratio to MAML's peak at K = 100, and time as a ratio to a plain K-step inner loop. "
        "(The stored result; `run_all.py --with-memory` re-runs it.)",
        "",
    ]
    maml = {r["K"]: r["peak_bytes"] for r in data["rows"] if r["method"] == "maml"}
    base = maml.get(100)
    rows = []
    for r in data["rows"]:
        if r["K"] not in (10, 100, 1000) or r["method"] == "inner_loop":
            continue
        peak = f"{r['peak_bytes'] / base:.2f}" if base else "n/a"
        rows.append(
            [
                r["method"],
                r["K"],
                f"{r['peak_bytes'] / 2**20:.2f}",
                peak,
                f"{r['time_ratio_to_inner_loop']:.2f}",
            ]
        )
    header = ["method", "K", "peak MiB", "peak / MAML peak at K=100", "time / inner loop"]
    return [*out, *table(header, rows), ""]


def render() -> str:
    lines = [
        "# Benchmarks: cost and scale",
        "",
        "Written by `python benchmarks/run_all.py` from `benchmarks/results/*/result.json`; every figure is "
        "a ratio against the plain baseline measured in the same run, on the machine named in its result.",
        "",
    ]
    for section in (overhead_section, batched_section, ray_section, atari_section, memory_section):
        lines += section()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="overhead,batched,ray_scaling")
    parser.add_argument("--with-memory", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    names = (
        [] if args.report_only else args.only.split(",") + (["second_order_cost"] if args.with_memory else [])
    )
    for name in names:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, *RUNS[name]], check=True, cwd=HERE.parent)
    (HERE / "README.md").write_text(render() + "\n")
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
