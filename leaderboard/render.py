"""A static HTML page of the board: a ranked table per protocol and three plots per protocol
(aggregate scores with CI bars, performance profiles, held-out learning curves).

Every string that comes from a submission is escaped with :func:`html.escape` (and links are
kept only when they are ``http(s)``); the page carries a Content-Security-Policy that allows
no scripts at all, and its images are embedded PNGs, so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from leaderboard.aggregate import performance_profile
from leaderboard.ranking import Ranked, ranked_protocols, verified_mark
from leaderboard.store import Board, utc_now
from metaenvs.io import write_bytes_atomic

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
SAFE_URL = re.compile(r"^https?://[^\s\"'<>\\`]+$")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1b7f3b; font-weight: bold; } .bad { color: #b00020; font-weight: bold; }
.warn { color: #8a5a00; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.plots img { width: 380px; height: auto; border: 1px solid #eee; }
code { font-size: 0.9em; } .meta { color: #555; font-size: 0.9em; }
"""


def render_board(board: Board, out_dir: str | os.PathLike) -> Path:
    """Write ``index.html`` of the board into ``out_dir`` (atomically) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    groups = ranked_protocols(board)
    sections = [_section(g) for g in groups]
    if not sections:
        sections = ["<p>The board has no entries yet.</p>"]
    sections.append(_quarantine(groups.quarantined))
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            "<title>metaenvs leaderboard</title>",
            f"<style>{STYLE}</style></head><body>",
            "<h1>metaenvs leaderboard</h1>",
            f'<p class="meta">Rendered {html.escape(utc_now())}. Aggregates are recomputed from raw '
            "per-task &times; per-seed scores (IQM and mean, 95% bootstrap CIs over tasks and seeds, "
            "or seeds only for fixed game sets); P(&gt;next) is "
            "the probability of improvement over the next entry (Agarwal et al. 2021). Every entry file "
            "is re-validated when the page is made. <b>verified</b>: a re-run by <code>metaenvs board "
            "verify</code> reproduced every score; <b>unverified</b>: accepted by the validator, never "
            "re-run; <b>FAILED</b>: a re-run disagrees (listed below the ranking, not ranked).</p>",
            *sections,
            "</body></html>",
        ]
    )
    path = Path(out_dir) / "index.html"
    write_bytes_atomic(path, (page + "\n").encode("utf-8"))
    return path


def _quarantine(quarantined: list[tuple[str, str]]) -> str:
    if not quarantined:
        return ""
    e = html.escape
    items = "".join(f"<li><code>{e(name)}</code>: {e(reason[:1000])}</li>" for name, reason in quarantined)
    return (
        '<section id="quarantined"><h2>Quarantined files</h2><p class="meta">These files failed '
        f"re-validation and are not shown above.</p><ul>{items}</ul></section>"
    )


def _section(g: Ranked) -> str:
    entries = g.entries
    direction = "higher is better" if g.higher_is_better else "lower is better"
    e = html.escape
    plots = (
        [
            ("Aggregate scores with 95% CIs", _aggregate_plot(g)),
            ("Performance profiles", _profile_plot(g)),
            ("Held-out learning curves", _curve_plot(g, entries)),
        ]
        if g.rows
        else []
    )
    figures = "".join(f'<img src="data:image/png;base64,{png}" alt="{e(alt)}">' for alt, png in plots)
    return "\n".join(
        [
            f'<section id="p-{e(g.protocol_hash[:12])}">',
            f"<h2>{e(g.protocol_id)}</h2>",
            f'<p class="meta">Protocol hash <code>{e(g.protocol_hash)}</code>; ranked by IQM of '
            f"{e(g.score)} ({direction}).</p>",
            _table(g, entries),
            f'<div class="plots">{figures}</div>',
            "</section>",
        ]
    )


def _table(g: Ranked, entries: dict[str, dict[str, Any]]) -> str:
    e = html.escape
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "#",
            "algorithm",
            "submitter",
            "IQM [95% CI]",
            "mean [95% CI]",
            "P(&gt;next)",
            "verified",
            "runs",
            "code",
            "entry",
        )
    )
    body = []
    rows = [*g.rows, None, *g.failed] if g.failed else list(g.rows)
    for r in rows:
        if r is None:
            body.append(
                '<tr><td colspan="10" class="bad">Failed verification: a re-run disagrees with the '
                "submitted scores (not ranked)</td></tr>"
            )
            continue
        mark = verified_mark(r)
        cls = {"yes": "ok", "FAILED": "bad"}.get(mark, "warn")
        title = (
            "" if r["verify_max_abs_diff"] is None else f' title="max |diff| {r["verify_max_abs_diff"]:.3g}"'
        )
        url = r["code_url"] or ""
        link = (
            f'<a href="{e(url)}" rel="nofollow noopener noreferrer">code</a>' if SAFE_URL.match(url) else ""
        )
        cells = [
            f'<td class="num">{"-" if r["rank"] is None else r["rank"]}</td>',
            f"<td>{e(r['algorithm'])}</td>",
            f"<td>{e(r['submitter'] or '')}</td>",
            f'<td class="num">{_ci(r["iqm"], r["iqm_low"], r["iqm_high"])}</td>',
            f'<td class="num">{_ci(r["mean"], r["mean_low"], r["mean_high"])}</td>',
            f'<td class="num">{_prob(r["p_improve"])}</td>',
            f'<td class="{cls}"{title}>{e(mark)}</td>',
            f'<td class="num">{r["n_runs"]}</td>',
            f"<td>{link}</td>",
            f"<td><code>{e(r['id'])}</code> {_command(entries[r['id']])}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _command(entry: dict[str, Any]) -> str:
    commands = entry["result"].get("commands") or []
    if not commands:
        return ""
    text = html.escape(" && ".join(commands))
    return f"<details><summary>commands</summary><code>{text}</code></details>"


def _prob(p: float | None) -> str:
    return "" if p is None else f"{p:.2f}"


def _ci(est: float, low: float, high: float) -> str:
    return f"{est:.4g} [{low:.4g}, {high:.4g}]"


def _label(row: dict[str, Any]) -> str:
    """A plot label from submitted strings: mathtext switched off by escaping ``$``."""
    text = f"#{row['rank']} {row['algorithm']}" + (f" ({row['submitter']})" if row["submitter"] else "")
    text = "".join(c if c.isprintable() else "?" for c in text)[:48]
    return text.replace("$", r"\$")


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _aggregate_plot(g: Ranked) -> str:
    import matplotlib.pyplot as plt

    n = len(g.rows)
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 1.6 + 0.4 * n), sharey=True)
    y = np.arange(n)[::-1]
    for ax, stat in zip(axes, ("iqm", "mean"), strict=True):
        est = np.array([r[stat] for r in g.rows])
        low = est - np.array([r[f"{stat}_low"] for r in g.rows])
        high = np.array([r[f"{stat}_high"] for r in g.rows]) - est
        ax.barh(y, est, xerr=[low, high], color=[f"C{i % 10}" for i in range(n)], alpha=0.8, capsize=3)
        ax.set_title(stat.upper() if stat == "iqm" else "Mean")
        ax.set_xlabel(g.score)
    axes[0].set_yticks(y, [_label(r) for r in g.rows], fontsize=8)
    fig.suptitle("Aggregate scores (95% CIs)")
    fig.tight_layout()
    return _png(fig)


def _profile_plot(g: Ranked) -> str:
    import matplotlib.pyplot as plt

    pooled = np.concatenate([np.concatenate([np.asarray(v) for v in s.values()]) for s in g.scores.values()])
    lo, hi = float(pooled.min()), float(pooled.max())
    log = lo > 0 and hi / lo > 100
    taus = np.geomspace(lo, hi, 200) if log else np.linspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for i, row in enumerate(g.rows):
        profile = performance_profile(g.scores[row["id"]], taus, g.higher_is_better)
        ax.plot(taus, profile, color=f"C{i % 10}", label=_label(row), drawstyle="steps-post")
    if log:
        ax.set_xscale("log")
    sign = ">" if g.higher_is_better else "<"
    ax.set_xlabel(f"{g.score} threshold τ")
    ax.set_ylabel(f"fraction of runs with score {sign} τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Performance profiles")
    ax.legend(fontsize=7)
    return _png(fig)


def _curve_plot(g: Ranked, entries: dict[str, dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    unit, name, positive = "step", "value", True
    for i, row in enumerate(g.rows):
        c = entries[row["id"]]["curves"]
        unit, name = c["x_unit"], c["y_name"]
        ax.plot(c["steps"], c["mean"], color=f"C{i % 10}", label=_label(row))
        ax.fill_between(c["steps"], c["q25"], c["q75"], color=f"C{i % 10}", alpha=0.2)
        positive = positive and min(c["q25"]) > 0
    ax.set_xlabel(unit.replace("_", " "))
    shown = "training loss (not the ranked score)" if name.endswith("loss") else name.replace("_", " ")
    ax.set_ylabel(f"{shown}: mean, IQR band")
    if name.endswith("loss") and positive:
        ax.set_yscale("log")
    ax.set_title("Held-out learning curves")
    ax.legend(fontsize=7)
    return _png(fig)
