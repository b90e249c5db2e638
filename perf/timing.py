"""Timing: median of repeated runs with L2 flushed (triton.testing.do_bench) on a GPU, CUDA-graph replay for
tiny problems where launch overhead would dominate, and a wall-clock median for the CPU dry run."""
import statistics
import time

import torch

# Problems moving fewer bytes than this run in microseconds: time them as CUDA-graph replays.
CUDA_GRAPH_BELOW_BYTES = 8 * 2**20


def bench(setup, device, nbytes, graphs=False):
    """(median milliseconds per call, timer name) of the function setup() returns.

    setup runs on the stream that is timed, so a backward pass set up there (its forward run by setup)
    launches on that stream too, which CUDA-graph capture needs. graphs: time every size as CUDA-graph
    replays (no host time at all: what a captured model, or torch.compile(mode="reduce-overhead"), runs).
    """
    if device.type != "cuda":
        fn = setup()
        fn()
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples), "wall-clock"
    if graphs or nbytes < CUDA_GRAPH_BELOW_BYTES:
        try:
            return _bench_cuda_graph(setup), "cuda-graph"
        except NotImplementedError:  # an op that refuses capture: plain launches
            torch.cuda.synchronize()
    import triton.testing
    return triton.testing.do_bench(setup(), warmup=25, rep=100, return_mode="median"), "do_bench"


def _bench_cuda_graph(setup, target_ms=20.0, replays=10):
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        fn = setup()
        for _ in range(3):
            fn()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(5):
            fn()
        end.record()
        torch.cuda.synchronize()
        calls = max(1, min(1000, int(target_ms / max(start.elapsed_time(end) / 5, 1e-3))))
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            for _ in range(calls):
                fn()
        samples = []
        for _ in range(replays):
            start.record()
            graph.replay()
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end) / calls)
    return statistics.median(samples)


def copy_bandwidth_gbps(device):
    """Device copy bandwidth in GB/s, counting bytes read plus bytes written, measured now on this device."""
    count = 2**28 if device.type == "cuda" else 2**20
    src = torch.randn(count, device=device)
    dst = torch.empty_like(src)
    nbytes = 2 * src.numel() * src.element_size()
    ms, _ = bench(lambda: (lambda: dst.copy_(src)), device, nbytes)
    return nbytes / (ms * 1e-3) / 1e9
