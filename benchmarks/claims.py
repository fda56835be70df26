"""The claims ledger: one row per headline claim of Leap, CTS and A-MAML, generated from the result JSON.

Usage:
    python benchmarks/claims.py            # writes benchmarks/CLAIMS.md
    python benchmarks/claims.py --check    # exit 1 if CLAIMS.md is not what the results give

Each claim names the result file that measures it and the protocols that result must have been measured
under, computed from the installed suite (``metaenvs.make(id).protocol`` and the benchmark's documented
customisation). A result file whose recorded protocol hash differs, or that records none, is refused
(:class:`ClaimsError`): a number measured under another protocol never stands in for the claim's.
A claim whose result is missing is listed as *not run*. Verdicts are computed from our numbers where a
rule can decide (the direction of a comparison, with confidence intervals), else fixed with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VERDICTS = ("reproduced", "direction only", "not reproduced", "not reachable as published", "not run")


class ClaimsError(Exception):
    """A result file cannot back its claim (protocol hash missing or different, unreadable)."""


@dataclass(frozen=True)
class Claim:
    """One headline claim of a paper and how this suite measures it.

    Attributes:
        key: Short id.
        paper: The paper.
        claim: What the paper claims.
        paper_number: The paper's figure (as printed) and ``where`` it is stated.
        command: The command that writes ``result`` (``None``: not run here).
        result: The result file, relative to ``benchmarks/``.
        protocols: ``{path in the result (keys joined by |): expected hash}``, from the installed suite.
        measure: ``data -> (our number, fraction of the paper's scale, verdict, note)``.
        deviations: Differences between the paper's text and its authors' code that we found.
        needs: For a claim not run: what running it needs.
    """

    key: str
    paper: str
    claim: str
    paper_number: str
    where: str
    command: str | None
    result: str | None
    protocols: Callable[[], dict[str, str]] = field(default=lambda: {})
    measure: Callable[[dict], tuple[str, str, str, str]] | None = None
    deviations: tuple[str, ...] = ()
    needs: str = ""


def recorded(data: dict, path: str) -> Any:
    """The value at ``path`` (keys joined by ``|``) of a result, or ``None``."""
    node: Any = data
    for part in path.split("|"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_protocols(claim: Claim, data: dict, source: str) -> None:
    """Refuse a result whose recorded protocol hashes are not the claim's (or are not recorded)."""
    for path, expected in claim.protocols().items():
        got = recorded(data, path)
        if got is None:
            raise ClaimsError(
                f"{source}: records no protocol hash for {path.replace('|', ' / ')}; claim {claim.key!r} "
                f"needs protocol {expected[:16]}... Re-run `{claim.command}` with this suite."
            )
        if got != expected:
            raise ClaimsError(
                f"{source}: protocol hash {str(got)[:16]}... for {path.replace('|', ' / ')} is not the "
                f"{expected[:16]}... claim {claim.key!r} is measured under (the installed suite's). Re-run "
                f"`{claim.command}` with this suite."
            )


def row(claim: Claim, root: Path = ROOT) -> dict[str, str]:
    """The ledger row of ``claim`` (refusing a result under another protocol)."""
    base = {
        "paper": claim.paper,
        "claim": claim.claim,
        "paper_number": f"{claim.paper_number} ({claim.where})",
        "command": f"`{claim.command}`" if claim.command else "-",
        "deviations": "; ".join(claim.deviations) or "-",
    }
    path = None if claim.result is None else root / claim.result
    if path is None or not path.is_file() or claim.measure is None:
        why = claim.needs or f"{claim.result} is not there"
        return {**base, "ours": f"not run: {why}", "scale": "-", "verdict": "not run"}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClaimsError(f"{path}: unreadable ({exc}).") from None
    check_protocols(claim, data, str(path))
    ours, scale, verdict, note = claim.measure(data)
    if verdict not in VERDICTS:
        raise ClaimsError(f"claim {claim.key!r}: verdict {verdict!r} is not one of {VERDICTS}.")
    return {**base, "ours": ours + (f" ({note})" if note else ""), "scale": scale, "verdict": verdict}


HEADER = (
    "paper",
    "claim",
    "paper's number (where)",
    "our command",
    "our number (95% CI)",
    "scale used",
    "paper text vs authors' code",
    "verdict",
)
KEYS = ("paper", "claim", "paper_number", "command", "ours", "scale", "deviations", "verdict")


def render(rows: list[dict[str, str]]) -> str:
    """``CLAIMS.md`` from the rows."""
    lines = [
        "# Claims ledger",
        "",
        "Generated by `python benchmarks/claims.py` from the result JSON under `benchmarks/results/` (do not "
        "edit by hand; `--check` fails when this file and the results disagree). Each row's result was "
        "refused unless it records the protocol hash the claim is measured under. Verdicts: reproduced / "
        "direction only / not reproduced / not reachable as published / not run.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
    ]
    for r in rows:
        lines.append("| " + " | ".join(r[k].replace("|", "/").replace("\n", " ") for k in KEYS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from claims_table import CLAIMS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "CLAIMS.md"))
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    try:
        text = render([row(c) for c in CLAIMS])
    except ClaimsError as exc:
        print(f"claims: refused: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text() != text:
            print(
                f"claims: {out} is not what the results give; run python benchmarks/claims.py",
                file=sys.stderr,
            )
            return 1
        return 0
    from metaenvs.io import write_bytes_atomic

    write_bytes_atomic(out, text.encode())
    print(f"wrote {out} ({len(CLAIMS)} claims)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
