"""The offline benchmark's human-readable tables."""

from __future__ import annotations

import json
from typing import Any

from .machine import describe, in_loops



# --- output --------------------------------------------------------------------------------------------


def _fmt(value: Any, width: int, digits: int = 2) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text.rjust(width)


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [
        f"judgeq offline benchmark, {m['date']}, code {m.get('code')}",
        f"machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"load {' '.join(m['loadavg_at_start'])} at start",
        f"software: Python {m['python']}, Redis {m['redis']} (appendonly {m['redis_appendonly']}), "
        f"PostgreSQL {m['postgresql']} (" + ", ".join(f"{k}={v}" for k, v in m["postgresql_settings"].items()) + "), "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        describe(result["reference"]),
        f"broker: {cfg.get('redis')}",
        f"dataset: {cfg['items']:,} records, {cfg['bytes_per_record']:.0f} B/record; judge noop (local); "
        f"chunk {cfg['chunk']} records/task; pool {cfg.get('pool')}; extra env {cfg['extra_env'] or '-'}",
        "",
        "End to end (judgeq submit --wait; times in s from the submit process's start)",
    ]
    head = (f"{'workers':>7} {'conc':>7} {'procs':>5} {'valid.':>7} {'enqueue':>8} {'1st row':>8} {'last row':>9} "
            f"{'items/s':>8} {'drain/s':>8} {'submit RSS':>10} {'worker tree RSS':>16} {'ok':>3}")
    lines += [head, "-" * len(head)]
    for r in result["end_to_end"]:
        trees = "/".join(f"{w['tree_peak_rss_mib']:.0f}" for w in r["worker_memory"]) + " MiB"
        lines.append(
            f"{r['workers']:>7} {str(r['concurrency']):>7} {r['pool_processes']:>5} {_fmt(r['validated_s'], 7)} "
            f"{_fmt(r['enqueue_s'], 8)} {_fmt(r['first_row_s'], 8)} {_fmt(r['last_row_s'], 9)} "
            f"{_fmt(r['e2e_items_per_s'], 8)} {_fmt(r['drain_items_per_s'], 8)} "
            f"{_fmt(r['submit_max_rss_mib'], 6, 0)} MiB {trees:>16} {'yes' if r['verified'] else 'NO':>3}"
        )
    lines += ["", "CPU seconds during each end-to-end run (2 cores = 2 CPU-s per wall second; 'before': cores busy "
              "just before the run; 'other' and 'top others': other users of the machine, which perturb the figures)"]
    head = (f"{'workers':>7} {'conc':>7} {'submit':>7} {'workers':>8} {'pg':>7} {'pg bg':>6} {'redis':>6} "
            f"{'irq':>5} {'other':>6} {'busy':>7} {'busy %':>6} {'before':>6}  top others")
    lines += [head, "-" * len(head)]
    for r in result["end_to_end"]:
        c = r["cpu_s"]
        lines.append(
            f"{r['workers']:>7} {str(r['concurrency']):>7} {_fmt(c['submit'], 7)} {_fmt(c['workers'], 8)} "
            f"{_fmt(c['postgres'], 7)} {_fmt(c['postgres_bg'], 6)} {_fmt(c['redis'], 6)} {_fmt(c['irq'], 5)} "
            f"{_fmt(c['other'], 6)} {_fmt(c['machine_busy'], 7)} {c['machine_share'] * 100:>5.0f}% "
            f"{_fmt(r['quiet']['busy_cores_before'], 6)}  "
            + ", ".join(f"{k} {v}" for k, v in r.get("cpu_s_others", {}).items())
        )
    lines += ["", "Enqueue only (judgeq submit without --wait, no workers)"]
    head = (f"{'items':>8} {'valid.':>7} {'enqueue':>8} {'items/s':>8} {'exit':>6} {'max RSS':>8} {'CPU submit':>10} "
            f"{'CPU pg':>7} {'messages':>9} {'redis B/item':>12} {'ok':>3}")
    lines += [head, "-" * len(head)]
    for r in result["enqueue_only"]:
        lines.append(
            f"{r['items']:>8,} {_fmt(r['validated_s'], 7)} {_fmt(r['enqueue_s'], 8)} "
            f"{_fmt(r['enqueue_items_per_s'], 8)} "
            f"{_fmt(r['submit_exit_s'], 6)} {_fmt(r['submit_max_rss_mib'], 4, 0)} MiB {_fmt(r['submit_cpu_s'], 10)} "
            f"{_fmt(r['cpu_s']['postgres'], 7)} {r['messages']:>9,} {r['redis_bytes_per_item']:>12,} "
            f"{'yes' if r['verified'] else 'NO':>3}"
        )
    ref = result["reference"]
    lines += ["", f"Relative to the machine reference (rates x the loop's {ref['loop_s']:.2f} s, times / it): "
              "compare these across days"]
    for r in result["end_to_end"]:
        lines.append(f"  end to end, {r['workers']} worker(s), conc {r['concurrency']}: "
                     f"{r['e2e_items_per_s'] or 0:,} items/s = {r['e2e_items_per_loop']:,} items per loop")
    for r in result["enqueue_only"]:
        lines.append(f"  enqueue {r['items']:,}: {r['enqueue_items_per_s'] or 0:,} items/s = "
                     f"{r['enqueue_items_per_loop']:,} items per loop; {in_loops(r['enqueue_s'] or 0.0, ref):.2f} loops")
    targets = result["targets"]
    lines += ["", "targets (docs/architecture.md): >= {e2e:,} items/s end to end; {n:,} items enqueued in <= {enq} s; "
              "flat memory".format(**targets)]
    for r in result["end_to_end"] + result["enqueue_only"]:
        if r.get("foreign_redis_clients"):
            what = f"{r.get('workers', 0)} worker(s)" if "workers" in r else f"enqueue {r['items']:,}"
            lines.append(f"INTERFERENCE ({what}): other processes used the benchmark's Redis database: "
                         f"{r['foreign_redis_clients']}; use --redis private")
    failures = [r for r in result["end_to_end"] + result["enqueue_only"] if not r["verified"]]
    for r in failures:
        lines.append(f"NOT VERIFIED: {json.dumps({k: v for k, v in r.items() if k != 'stderr_tail'})}")
        if r.get("stderr_tail"):
            lines.append(r["stderr_tail"])
    return "\n".join(lines)
