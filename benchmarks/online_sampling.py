"""Online sampling: a 1M-trace JSONL window read, parsed and decided at 2 % with 20 strata.

    python -m benchmarks.online_sampling [--traces 1000000] [--small 250000] [--rate 0.02] [--repeat 3] [--json]

Writes a window file (about 300 bytes per trace; 20 locales whose shares run
from 46 % down to 0.5 %; sessions of 1-9 traces; 3 % internal-tenant and 1 %
judge traces that the ``where`` filters leave out) to a temporary folder,
then measures, in this process:

1. ``decide()`` alone: ``online.sampling.Decider.decide`` over every trace as
   a raw dict, parsed beforehand in batches of 100,000 (parsing untimed);
2. the two passes of a window job as a stream: read the lines, ``orjson.loads``
   each, ``decide()``; the count pass counts per stratum, ``plan_rates`` turns
   the counts into rates (2 %, ``min_per_stratum`` 200), the sample pass keeps
   ``u < p`` (the trace source's own work, e.g. checking ``ts``, is not in it);
3. memory of both passes in a child process, for ``--small`` and ``--traces``
   traces: peak RSS (VmHWM) and the peak of Python allocations
   (``tracemalloc``, started after the imports). Flat means the same at both sizes.

Timings are the best of ``--repeat`` runs, one process (one core).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from online.sampling import Decider, Decision, SamplingPolicy, parse_policy, plan_rates

STRATA = 20
BATCH = 100_000
POLICY = {"strata": "metadata.locale", "rate": 0.02, "min_per_stratum": 200,
          "where": {"metadata.tenant": {"not_in": ["internal"]}, "metadata.is_judge": {"absent": True}}}


def policy() -> SamplingPolicy:
    return parse_policy(POLICY, "benchmark")


def write_window(path: Path, n: int) -> float:
    """Write ``n`` traces of one hour; return the mean bytes per line."""
    shares = [1 / (k + 1) ** 1.5 for k in range(STRATA)]
    cumulative, total = [], 0.0
    for share in shares:
        total += share / sum(shares)
        cumulative.append(total)
    size = 0
    session, left = 0, 0
    with path.open("wb") as f:
        for i in range(n):
            if left == 0:
                session, left = session + 1, 1 + (session * 7919) % 9
                locale = next(k for k, c in enumerate(cumulative) if (session * 0.6180339887) % 1 < c)
            left -= 1
            meta: dict[str, Any] = {"locale": f"l{locale:02d}", "tenant": "internal" if i % 33 == 0 else f"t{i % 13}",
                                    "session_id": f"s{session:07d}", "user_id": f"u{session % 50_000:05d}"}
            if i % 100 == 7:
                meta["is_judge"] = True
            line = orjson.dumps({
                "trace_id": f"tr-{i:09d}",
                "ts": f"2026-11-22T13:{i * 60 // n:02d}:{i * 3600 // n % 60:02d}.{i % 1000:03d}Z",
                "query": f"What is the capital of region {i}?",
                "response": f"The capital of region {i} is Town {i % 9973}.",
                "retrieved_chunks": [f"Region {i} is governed from Town {i % 9973}."],
                "metadata": meta,
            }) + b"\n"
            f.write(line)
            size += len(line)
    return size / n


def lines(path: Path) -> Iterator[dict[str, Any]]:
    loads = orjson.loads
    with path.open("rb") as f:
        for line in f:
            yield loads(line)


def time_decide(path: Path) -> tuple[int, float]:
    """(traces, seconds) of decide() alone over every trace, parsed beforehand a batch at a time."""
    decide = Decider(policy()).decide
    done, seconds = 0, 0.0
    batch: list[dict[str, Any]] = []
    for raw in lines(path):
        batch.append(raw)
        if len(batch) == BATCH:
            seconds += _decide_all(decide, batch)
            done, batch = done + len(batch), []
    if batch:
        seconds += _decide_all(decide, batch)
        done += len(batch)
    return done, seconds


def _decide_all(decide: Any, batch: list[dict[str, Any]]) -> float:
    gc.collect()
    started = time.perf_counter()
    for raw in batch:
        decide(raw)
    return time.perf_counter() - started


def count_pass(path: Path) -> tuple[Counter[str], int]:
    """Traces per stratum that pass the filters, and how many the filters left out."""
    decide = Decider(policy()).decide
    counts: Counter[str] = Counter()
    filtered = 0
    for raw in lines(path):
        decision: Decision | None = decide(raw)
        if decision is None:
            filtered += 1
        else:
            counts[decision.stratum] += 1
    return counts, filtered


def sample_pass(path: Path, rates: dict[str, float]) -> Counter[str]:
    """Sampled traces per stratum (u < p)."""
    decide = Decider(policy()).decide
    sampled: Counter[str] = Counter()
    for raw in lines(path):
        decision = decide(raw)
        if decision is not None and decision.u < rates[decision.stratum]:
            sampled[decision.stratum] += 1
    return sampled


def both_passes(path: Path) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    counts, filtered = count_pass(path)
    middle = time.perf_counter()
    p = policy()
    rates = plan_rates(counts, p.base_rate, p.min_per_stratum, p.floor)
    sampled = sample_pass(path, rates)
    ended = time.perf_counter()
    return {"count_s": middle - started, "sample_s": ended - middle, "cpu_s": time.process_time() - cpu,
            "counts": dict(counts), "filtered": filtered, "rates": rates, "sampled": dict(sampled)}


def child_memory(path: Path) -> None:
    """In a child process: both passes under tracemalloc; print the peaks as JSON."""
    tracemalloc.start()
    both_passes(path)
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"traced_peak_bytes": peak, "max_rss_bytes": _vm_hwm()}))


def _vm_hwm() -> int:
    """This process's peak RSS. Not ru_maxrss: a child's starts at the parent's RSS when it was forked."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: the best there is


def memory(path: Path) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.online_sampling", "--child-memory", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000, help="the smaller window of the memory comparison")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child-memory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(args.child_memory)
        return
    MiB = 2**20
    from .machine import describe, per_loop, reference

    ref = reference()  # the machine's speed today, so the figures compare across days
    with tempfile.TemporaryDirectory(prefix="judgeq-online-bench-") as tmp:
        big, small = Path(tmp) / "big.jsonl", Path(tmp) / "small.jsonl"
        started = time.perf_counter()
        per_line = write_window(big, args.traces)
        written = time.perf_counter() - started
        write_window(small, args.small)
        report: dict[str, Any] = {"traces": args.traces, "bytes_per_trace": per_line, "strata": STRATA,
                                  "written_s": written, "policy": POLICY}
        decided = min(time_decide(big)[1] for _ in range(args.repeat))
        runs = [both_passes(big) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["count_s"] + r["sample_s"])
        report |= {"decide_s": decided, "passes": best,
                   "memory": {str(args.small): memory(small), str(args.traces): memory(big)}}
    both = best["count_s"] + best["sample_s"]
    report |= {"reference": ref, "decided_per_loop": round(per_loop(args.traces / decided, ref)),
               "window_per_loop": round(per_loop(args.traces / both, ref))}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    n = args.traces
    sampled = sum(best["sampled"].values())
    print(describe(ref))
    print(f"window: {n:,} traces, {per_line:.0f} B/trace, {STRATA} strata, written in {report['written_s']:.1f} s")
    print(f"decide() alone on parsed dicts: {n / decided:,.0f} traces/s ({decided / n * 1e6:.2f} µs each) = "
          f"{report['decided_per_loop']:,} per loop")
    for name in ("count", "sample"):
        seconds = best[f"{name}_s"]
        print(f"{name} pass (read lines + orjson.loads + decide): {n / seconds:,.0f} traces/s ({seconds:.2f} s)")
    print(f"both passes: {both:.2f} s, {best['cpu_s']:.2f} CPU-s: a window decided at {n / both:,.0f} traces/s "
          f"on one core = {report['window_per_loop']:,} per loop")
    smallest = min(best["counts"], key=best["counts"].get)
    print(f"filtered out: {best['filtered']:,}; sampled: {sampled:,} ({sampled / (n - best['filtered']):.2%} of "
          f"the rest); strata of {min(best['counts'].values()):,} to {max(best['counts'].values()):,} traces; "
          f"the smallest sampled at p = {best['rates'][smallest]:.4f}")
    for size, figures in report["memory"].items():
        print(f"memory, {int(size):>9,} traces: peak RSS {figures['max_rss_bytes'] / MiB:.1f} MiB, "
              f"peak traced allocations {figures['traced_peak_bytes'] / MiB:.2f} MiB")


if __name__ == "__main__":
    main()
