"""python -m perf [--quick] [--ops softmax,relu] [--out DIR] [--dry-run]

Benchmarks every implemented op against eager torch and torch.compile on the same GPU in the same run, and
writes results.json, report.md and PNG plots. Without a GPU it stops, except --dry-run, which runs the
whole pipeline on tiny shapes (through Triton's interpreter on a machine without a GPU).
"""
import argparse
import datetime
import sys
from pathlib import Path

from .env import REPO


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="a subset that fits a few minutes")
    parser.add_argument("--ops", default="", help="comma-separated ops or families (softmax, activation, relu, ...)")
    parser.add_argument("--out", help="output folder (default perf/out/<date>)")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU through the interpreter")
    parser.add_argument("--graphs", action="store_true",
                        help="time every case as CUDA-graph replays: kernels only, no host time (what a captured "
                             "model or torch.compile(mode='reduce-overhead') runs); ops that refuse capture "
                             "(dropout) fall back to plain launches")
    args = parser.parse_args(argv)

    from .env import benchmark_device
    device = benchmark_device("python -m perf", args.dry_run)
    if device is None:
        return 2

    from . import report, runner
    from .cases import all_cases, select
    from .env import run_identity
    from .timing import copy_bandwidth_gbps

    profile = "dry" if args.dry_run else "quick" if args.quick else "full"
    cases = select(all_cases(profile), [op for op in args.ops.split(",") if op])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out) if args.out else REPO / "perf" / "out" / stamp
    identity = run_identity(device)
    copy_gbps = copy_bandwidth_gbps(device)
    print(f"{identity['device']}: copy bandwidth {copy_gbps:.1f} GB/s; {len(cases)} cases ({profile})")
    rows = runner.run(cases, device, identity, copy_gbps, dry_run=args.dry_run, graphs=args.graphs)
    for path in report.write(rows, identity, copy_gbps, out_dir, dry_run=args.dry_run):
        print(f"wrote {path}")
    failed = [row for row in rows if row["error"]]
    if failed:
        print(f"{len(failed)} of {len(rows)} measurements failed; see the report's Errors section", file=sys.stderr)
    return 1 if failed and args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
