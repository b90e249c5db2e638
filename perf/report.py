"""Writes a run's results: results.json (the rows), report.md (speedups and % of copy bandwidth) and PNG plots."""
import json
import math
from collections import defaultdict
from pathlib import Path

from .runner import COMPILE_MODE, DIRECTIONS, IMPLS, STOPPED


def _key(row):
    return (row["op"], tuple(row["shape"]), row["note"], row["dtype"], row["layout"], row["direction"])


def _grouped(rows):
    groups = defaultdict(dict)
    for row in rows:
        groups[_key(row)][row["impl"]] = row
    return groups


def _order(key):
    """Cases in a stable order, directions as fwd, bwd, fwd+bwd."""
    return (*key[1:5], DIRECTIONS.index(key[5]))


def _ms(row):
    return row["ms"] if row and row["ms"] is not None else None


def _fmt(value, digits=3):
    return "error" if value is None else f"{value:.{digits}f}"


def _optional(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


def _ratio(numerator, denominator):
    return None if numerator is None or denominator is None else numerator / denominator


def _geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _timers(rows):
    counts = defaultdict(int)
    for row in rows:
        if row.get("timer"):
            counts[row["timer"]] += 1
    return ", ".join(f"{name} {count} rows" for name, count in sorted(counts.items())) or "none"


def markdown(rows, identity, copy_gbps, dry_run):
    groups = _grouped(rows)
    compile_args = 'backend="eager"' if dry_run else f'mode="{COMPILE_MODE}"'
    lines = ["# tritonlayers benchmark report", "",
             f"- device: {identity['device']}", f"- torch {identity['torch']}, triton {identity['triton']}",
             f"- commit {identity['commit']}, {identity['date']}",
             f"- copy bandwidth measured in this run: {copy_gbps:.1f} GB/s (bytes read + written)",
             f"- compile: torch.compile({compile_args}, dynamic=False)",
             "- time: median ms; GB/s on the op's minimal byte count; speedup = other impl's time / tritonlayers'",
             "- peak MiB: device memory one forward+backward allocates beyond what existed before it",
             f"- timers: {_timers(rows)} (cuda-graph: replays of captured calls, no host time; do_bench: "
             "launches from Python, host time included where it exceeds the GPU's)",
             ""]
    if dry_run:
        lines += ["**Dry run on tiny shapes (on a CPU, through Triton's interpreter): the times say nothing about "
                  "GPU speed.**", ""]
    summary = defaultdict(lambda: {"eager": [], "compile": []})
    for op in sorted({key[0] for key in groups}):
        lines += [f"## {op}", "",
                  "| shape | note | dtype | layout | dir | tritonlayers ms | eager ms | compile ms | vs eager | "
                  "vs compile | GB/s | % copy BW | TFLOP/s | % cuBLAS | peak MiB (ours / eager / compile) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key in sorted((k for k in groups if k[0] == op), key=_order):
            impls = groups[key]
            ours, eager, compiled = (_ms(impls.get(name)) for name in IMPLS)
            vs_eager, vs_compile = _ratio(eager, ours), _ratio(compiled, ours)
            summary[(op, key[5])]["eager"].append(vs_eager)
            summary[(op, key[5])]["compile"].append(vs_compile)
            ours_row = impls.get("tritonlayers") or {}
            peaks = [(impls.get(name) or {}).get("peak_mb") for name in IMPLS]
            peak = " / ".join(_fmt(v, 0) for v in peaks) if any(v is not None for v in peaks) else ""
            lines.append(f"| {'x'.join(map(str, key[1]))} | {key[2]} | {key[3]} | {key[4]} | {key[5]} | {_fmt(ours)} | "
                         f"{_fmt(eager)} | {_fmt(compiled)} | {_fmt(vs_eager, 2)} | {_fmt(vs_compile, 2)} | "
                         f"{_fmt(ours_row.get('gbps'), 0)} | {_fmt(ours_row.get('pct_copy_bw'), 1)} | "
                         f"{_optional(ours_row.get('tflops'), 1)} | {_optional(ours_row.get('pct_cublas'), 1)} | {peak} |")
        lines.append("")
    lines += ["## Geometric-mean speedup of tritonlayers", "", "| op | dir | vs eager | vs compile |", "|---|---|---|---|"]
    for (op, direction), ratios in sorted(summary.items()):
        lines.append(f"| {op} | {direction} | {_fmt(_geomean(ratios['eager']), 2)} | "
                     f"{_fmt(_geomean(ratios['compile']), 2)} |")
    errors = [row for row in rows if row["error"] and row["error"] != STOPPED]
    stopped = sum(row["error"] == STOPPED for row in rows)
    if stopped:
        lines += ["", f"**The run was stopped before it finished: {stopped} of {len(rows)} measurements were not "
                      "made (they read `error` above).**"]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {row['op']} {row['shape']} {row['dtype']} {row['direction']} "
                                          f"{row['impl']}: {row['error']}" for row in errors]
    return "\n".join(lines) + "\n"


def plot(rows, out_dir):
    """bandwidth.png: % of copy bandwidth of each impl for every case, a row of panels (one per direction) for
    each op family; one file, so a device run's results stay within what comes back from the machine."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install -e '.[perf]')")
        return []
    by_family = defaultdict(list)
    for row in rows:
        by_family[row.get("family", "other")].append(row)
    families = sorted(by_family)
    labels_by_family = {family: sorted({key[:5] for key in _grouped(by_family[family])}) for family in families}
    heights = [0.35 * len(labels_by_family[family]) + 1.2 for family in families]
    fig, axes = plt.subplots(len(families), len(DIRECTIONS), figsize=(6 * len(DIRECTIONS), sum(heights)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for axes_row, family in zip(axes, families):
        groups, labels = _grouped(by_family[family]), labels_by_family[family]
        for axis, direction in zip(axes_row, DIRECTIONS):
            for offset, impl in enumerate(IMPLS):
                values = [((groups.get((*label, direction)) or {}).get(impl) or {}).get("pct_copy_bw") or 0
                          for label in labels]
                axis.barh([i + 0.27 * (offset - 1) for i in range(len(labels))], values, height=0.27, label=impl)
            axis.set_title(f"{family}, {direction}")
            axis.set_yticks(range(len(labels)))
            axis.set_yticklabels([f"{op} {'x'.join(map(str, shape))} {dtype} {layout}"
                                  for op, shape, _, dtype, layout in labels] if axis is axes_row[0] else [],
                                 fontsize=7)
        axes_row[0].legend(fontsize=7)
    for axis in axes[-1]:
        axis.set_xlabel("% of measured copy bandwidth")
    fig.tight_layout()
    path = Path(out_dir) / "bandwidth.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path, *_plot_row_sweep(rows, out_dir, plt)]


def _plot_row_sweep(rows, out_dir, plt):
    """Softmax throughput against row length at a fixed total size: flat is the goal, a dip is a cliff."""
    sweep = [row for row in rows if "row sweep" in row["note"] and row["ms"] is not None]
    if len({row["shape"][-1] for row in sweep}) < 2:
        return []
    fig, axes = plt.subplots(1, len(DIRECTIONS), figsize=(6 * len(DIRECTIONS), 4), sharey=True, squeeze=False)
    for axis, direction in zip(axes[0], DIRECTIONS):
        series = defaultdict(list)
        for row in sweep:
            if row["direction"] == direction:
                series[(row["op"], row["dtype"], row["impl"])].append((row["shape"][-1], row["pct_copy_bw"]))
        for (op, dtype, impl), points in sorted(series.items()):
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{op} {dtype} {impl}")
        axis.set_xscale("log", base=2)
        axis.set_title(f"softmax row sweep, {direction}")
        axis.set_xlabel("row length")
    axes[0][0].set_ylabel("% of measured copy bandwidth")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    path = Path(out_dir) / "softmax_rows.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def write(rows, identity, copy_gbps, out_dir, dry_run):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out_dir / "report.md").write_text(markdown(rows, identity, copy_gbps, dry_run))
    return [out_dir / "results.json", out_dir / "report.md", *plot(rows, out_dir)]
