"""Plots bench/holds.py results: throughput and p99 latency per connection count.

    .venv/bin/python bench/plot.py [bench/results/holds.json ...] [--out docs/img/holds.png]
    .venv/bin/python bench/plot.py a.json b.json --compare "before,after" [--connections 256] [--out ...]

Each results file becomes one series pair (holds/s and baseline req/s); several files (e.g. different
worker counts) are drawn side by side and labelled by their worker count and file name.

``--compare LABELS`` draws one group of bars per results file instead (one connection count, every
measured run of it): holds/s next to the baseline's req/s of the same run, and p50/p99 latency, against
the targets; for comparing configurations or commits measured one after another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

ROOT = Path(__file__).resolve().parent.parent
TARGET_HOLDS_PER_S = 3000
TARGET_P99_MS = 100


def load(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in paths:
        data = json.loads(path.read_text())
        label = f"{data['config']['workers']} worker{'s' if data['config']['workers'] != 1 else ''}"
        if len(paths) > 1:
            label += f" ({path.stem})"
        out.append((label, data))
    return out


def first_nproc(results: list[tuple[str, dict[str, Any]]]) -> int:
    return int(results[0][1]["machine"]["nproc"])


def plot(results: list[tuple[str, dict[str, Any]]], out: Path) -> None:
    fig, (ax_rate, ax_p99, ax_cpu) = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    ax_other = ax_cpu.twinx()
    ax_cpu.set_zorder(ax_other.get_zorder() + 1)  # lines above the bars
    ax_cpu.patch.set_visible(False)
    markers = "osD^v"
    for i, (label, data) in enumerate(results):
        runs = sorted(data["runs"], key=lambda r: r["connections"])
        conns = [r["connections"] for r in runs]
        holds = [r["holds"]["ok_per_s"] for r in runs]
        base = [r["baseline"]["ok_per_s"] for r in runs]
        holds_p99 = [r["holds"].get("p99_ms") for r in runs]
        base_p99 = [r["baseline"].get("p99_ms") for r in runs]
        holds_p50 = [r["holds"].get("p50_ms") for r in runs]
        base_p50 = [r["baseline"].get("p50_ms") for r in runs]
        m = markers[i % len(markers)]
        ax_rate.plot(conns, base, m + "--", color="tab:gray", label=f"baseline req/s, {label}")
        ax_rate.plot(conns, holds, m + "-", color=f"C{i}", label=f"successful holds/s, {label}")
        for c, h, b in zip(conns, holds, base, strict=True):
            ax_rate.annotate(
                f"{h:,.0f}\n({h / b:.2f}x)",
                (c, h),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
                color=f"C{i}",
            )
            ax_rate.annotate(
                f"{b:,.0f}", (c, b), textcoords="offset points", xytext=(6, 4), fontsize=8, color="tab:gray"
            )
        ax_p99.plot(conns, base_p99, m + "--", color="tab:gray", label=f"baseline p99, {label}")
        ax_p99.plot(conns, holds_p99, m + "-", color=f"C{i}", label=f"holds p99, {label}")
        ax_p99.plot(conns, base_p50, m + ":", color="tab:gray", alpha=0.6, label=f"baseline p50, {label}")
        ax_p99.plot(conns, holds_p50, m + ":", color=f"C{i}", alpha=0.6, label=f"holds p50, {label}")
        for values, color, dy in ((holds_p99, f"C{i}", 4), (base_p99, "tab:gray", -10)):
            for c, p in zip(conns, values, strict=True):
                if p is not None:
                    ax_p99.annotate(
                        f"{p:,.0f} ms",
                        (c, p),
                        textcoords="offset points",
                        xytext=(6, dy),
                        fontsize=8,
                        color=color,
                    )
        holds_cpu = [r["holds"].get("server_cpu_ms_per_ok") for r in runs]
        base_cpu = [r["baseline"].get("server_cpu_ms_per_ok") for r in runs]
        ax_cpu.plot(conns, base_cpu, m + "--", color="tab:gray", label=f"baseline, {label}")
        ax_cpu.plot(conns, holds_cpu, m + "-", color=f"C{i}", label=f"holds, {label}")
        for values, color, dy in ((holds_cpu, f"C{i}", 6), (base_cpu, "tab:gray", 6)):
            for c, v in zip(conns, values, strict=True):
                if v is not None:
                    ax_cpu.annotate(
                        f"{v:.2f}",
                        (c, v),
                        textcoords="offset points",
                        xytext=(6, dy),
                        fontsize=8,
                        color=color,
                    )
        width = 0.18 / len(results)
        for kind, offset, hatch in (("baseline", -1, ""), ("holds", 1, "//")):
            other = [r[kind]["cpu"]["other_cores"] for r in runs]
            xs = [c * 2 ** (offset * width * (i + 0.5)) for c in conns]
            ax_other.bar(
                xs,
                other,
                width=[x * width for x in xs],
                color="tab:red",
                alpha=0.12,
                hatch=hatch,
                label=f"other processes during {kind} runs" if i == 0 else None,
            )
    all_conns = sorted({r["connections"] for _, d in results for r in d["runs"]})
    ax_rate.axhline(TARGET_HOLDS_PER_S, color="tab:red", lw=0.8, ls=":", label="target: 3,000 holds/s")
    ax_p99.axhline(TARGET_P99_MS, color="tab:red", lw=0.8, ls=":", label="target: p99 < 100 ms")
    for ax in (ax_rate, ax_p99, ax_cpu):
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_conns, [str(c) for c in all_conns])
        ax.set_xlabel("concurrent connections (wrk)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left" if ax is ax_cpu else "best")
    ax_rate.set_ylabel("responses per second")
    ax_rate.set_ylim(bottom=0)
    ax_rate.set_title("Throughput: 201 holds/s vs. plain FastAPI baseline")
    ax_p99.set_yscale("log")
    ax_p99.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_p99.set_ylabel("latency (ms, log scale)")
    ax_p99.set_title("Latency: p99 (solid/dashed) and p50 (dotted)")
    cpu_values = [
        r[k].get("server_cpu_ms_per_ok") or 0
        for _, d in results
        for r in d["runs"]
        for k in ("baseline", "holds")
    ]
    ax_cpu.set_ylim(0, max(cpu_values, default=1) * 1.6)  # headroom above the lines for the legends
    ax_cpu.set_ylabel("server CPU ms per successful response")
    ax_cpu.set_title("Server CPU per response; CPU taken by other processes")
    ax_other.set_ylim(0, first_nproc(results))
    ax_other.set_ylabel("cores used by other processes (bars)")
    ax_other.legend(fontsize=8, loc="upper right")
    first = results[0][1]["config"]
    finish(fig, results, f"{first['duration_s']:g}s per point, median of {first.get('repeat', 1)}", out)


def plot_compare(results: list[tuple[str, dict[str, Any]]], connections: int, out: Path) -> None:
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(14, 5), constrained_layout=True)
    ticks, names = [], []
    x = 0.0
    for label, data in results:
        run = next((r for r in data["runs"] if r["connections"] == connections), None)
        if run is None:
            raise SystemExit(f"{label}: no run at {connections} connections")
        holds, base = run["samples"]["holds"], run["samples"]["baseline"]
        start = x
        for i, (h, b) in enumerate(zip(holds, base, strict=True)):
            first = x == 0.0 and i == 0
            ax_rate.bar(x, b["ok_per_s"], 0.4, color="tab:gray", label="baseline req/s" if first else None)
            ax_rate.bar(
                x + 0.4, h["ok_per_s"], 0.4, color="tab:blue", label="holds/s (201)" if first else None
            )
            ax_rate.annotate(
                f"{h['ok_per_s']:,.0f}", (x + 0.4, h["ok_per_s"]), ha="center", va="bottom", fontsize=8
            )
            ax_lat.bar(x, h["p50_ms"], 0.4, color="tab:cyan", label="holds p50" if first else None)
            ax_lat.bar(x + 0.4, h["p99_ms"], 0.4, color="tab:purple", label="holds p99" if first else None)
            ax_lat.annotate(
                f"{h['p99_ms']:,.0f}", (x + 0.4, h["p99_ms"]), ha="center", va="bottom", fontsize=8
            )
            x += 1.0
        ticks.append((start + x - 0.6) / 2)
        names.append(f"{label}\n({len(holds)} run{'s' if len(holds) != 1 else ''})")
        x += 0.6
    ax_rate.axhline(TARGET_HOLDS_PER_S, color="tab:red", lw=0.8, ls=":", label="target: 3,000 holds/s")
    ax_lat.axhline(TARGET_P99_MS, color="tab:red", lw=0.8, ls=":", label="target: p99 < 100 ms")
    for ax in (ax_rate, ax_lat):
        ax.set_xticks(ticks, names, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    for ax in (ax_rate, ax_lat):
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the legend above the bars
    ax_rate.set_ylabel("responses per second")
    ax_rate.set_title(f"Throughput at {connections} connections, each run with its baseline")
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.set_title("Hold latency per run")
    finish(fig, results, f"{results[0][1]['config']['duration_s']:g}s per run", out)


def finish(fig: Any, results: list[tuple[str, dict[str, Any]]], runs: str, out: Path) -> None:
    """Titles the figure with the endpoint, database and machine of the first results file, and saves it."""
    first = results[0][1]
    m, pg = first["machine"], first["postgres"]
    fig.suptitle(
        f"POST /api/v1/events/{{id}}/holds on PostgreSQL {pg['server_version'].split()[0]} "
        f"(synchronous_commit={pg['synchronous_commit']}); {m['nproc']} CPUs {m['cpu_model']}; {runs}",
        fontsize=10,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="*", type=Path, default=[ROOT / "bench" / "results" / "holds.json"])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "holds.png")
    p.add_argument("--compare", help="comma-separated labels, one per results file: bars per file")
    p.add_argument("--connections", type=int, default=256, help="with --compare: the connection count")
    args = p.parse_args()
    if args.compare:
        labels = args.compare.split(",")
        if len(labels) != len(args.results):
            raise SystemExit(f"{len(labels)} labels for {len(args.results)} results files")
        results = [
            (label, json.loads(path.read_text())) for label, path in zip(labels, args.results, strict=True)
        ]
        plot_compare(results, args.connections, args.out)
        return
    plot(load(args.results), args.out)


if __name__ == "__main__":
    main()
