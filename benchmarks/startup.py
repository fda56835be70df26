"""Start-up time of the ``metaenvs`` command against ``python -c pass``, including its error paths.

Usage:
    python benchmarks/startup.py --repeats 7 --out benchmarks/results/startup/result.json

Every arm is a fresh process. The arms run interleaved (one round runs every arm once, in a
rotated order), so machine noise hits all of them; the JSON holds each arm's median, min and max
wall time and its ratio to ``python -c pass`` measured in the same round (median over rounds). The
error paths (a misspelt ``--algo``, a bad ``--seeds``, an unknown id) must answer as fast as
``--help``: arguments are checked before torch and SB3 are imported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "metaenvs.cli"]
ARMS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "metaenvs --help": [*CLI, "--help"],
    "metaenvs list": [*CLI, "list"],
    "train --algo reptil (error)": [
        *CLI,
        "train",
        "--dist",
        "Synthetic/Sinusoid-v0",
        "--algo",
        "reptil",
        "--out",
        "x",
    ],
    "evaluate --seeds a,b (error)": [*CLI, "evaluate", "--dist", "Synthetic/Sinusoid-v0", "--seeds", "a,b"],
    "info Synthetic/Sinusiod-v0 (error)": [*CLI, "info", "Synthetic/Sinusiod-v0"],
}
BASELINE = "python -c pass"


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(repeats: int) -> dict:
    times: dict[str, list[float]] = {name: [] for name in ARMS}
    ratios: dict[str, list[float]] = {name: [] for name in ARMS}
    names = list(ARMS)
    for _ in range(2):  # warm the file cache
        for name in names:
            wall(ARMS[name])
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        round_times = {name: wall(ARMS[name]) for name in order}
        for name, t in round_times.items():
            times[name].append(t)
            ratios[name].append(t / round_times[BASELINE])
    return {
        name: {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "ratio_to_python_median": statistics.median(ratios[name]),
            "ratio_to_python_max": max(ratios[name]),
        }
        for name, ts in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/startup/result.json")
    args = parser.parse_args()
    arms = measure(args.repeats)
    result = {
        "benchmark": "startup",
        "command": f"python benchmarks/startup.py --repeats {args.repeats}",
        "repeats": args.repeats,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "arms": arms,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, row in arms.items():
        print(
            f"{name:<36} median {row['median_s'] * 1000:7.0f} ms  [{row['min_s'] * 1000:.0f}, "
            f"{row['max_s'] * 1000:.0f}]  x{row['ratio_to_python_median']:.1f} python -c pass"
        )


if __name__ == "__main__":
    main()
