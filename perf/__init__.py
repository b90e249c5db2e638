"""Benchmarks and reports: `python -m perf` times every op against eager torch and torch.compile."""
