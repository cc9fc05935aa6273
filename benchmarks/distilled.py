"""Distilled judges: throughput per core, artifact load time, and a cascade on 10k items.

    python -m benchmarks.distilled                     # 5,000 training rows, 10,000 cascade items
    python -m benchmarks.distilled --train 20000 --items 10000 --json
    python -m benchmarks.distilled --fit-only 100000   # training alone on 100k rows, in this process

1. **Training**: ``--train`` teacher verdicts of the test rule
   (``tests/distill_data.py``, outputs of ~1 KB) are written into a scratch
   SQLite ledger as a teacher run, and the real ``judgeq distill`` trains on
   them (its wall time is printed).
2. **Throughput per core**: the distilled judge (``DistilledJudge.judge``)
   on 20,000 fresh ~1 KB records in chunks of 500 (a local chunk), in this
   process with BLAS held to one thread: items/s on one core (target >= 2,000).
3. **Load time**: ``load_artifact`` of the file (hash check, type allow-list,
   skops load) in a fresh process, median of 3 (target < 1 s), and before it
   the first import of scikit-learn and skops, which a worker pays once.
4. **Cascade**: ``--items`` fresh records submitted with ``judgeq submit
   --judge bench-cascade --wait`` in embedded mode, the LLM judge being the
   fake provider (tests/provider.py) over HTTP: share escalated, calls made,
   cost against all-remote (``judgeq report``), and agreement with the
   teacher's rule of the cascade and of the student alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.distill_data import records, teacher_label, write  # noqa: E402
from tests.processes import base_env, run_cli  # noqa: E402
from tests.provider import FakeProvider  # noqa: E402

from benchmarks.remote import CONFIG  # noqa: E402  (the teacher is the remote benchmark's judge, unlimited)

WORDS_1KB = 150  # ~1 KB of output per record (the words average ~6 characters with their space)


def fill_teacher(url: str, config: Path, n: int) -> None:
    """A teacher run of ``n`` verdicts of the test rule, written straight into the ledger."""
    from judges.config import load_config
    from ledger.models import Run
    from ledger.rows import ItemIn, ScoreIn
    from ledger.store import Ledger

    version = load_config(config).resolve("bench", check_env=False).version
    ledger = Ledger(url)
    ledger.runs.create_run(Run(id="teacher", kind="offline", dataset_name="bench", dataset_hash="h",
                          judges={"bench": {"version": version}}, n_items=n, expected=n, status="done"))
    batch: list[dict[str, Any]] = []
    for i, record in enumerate(records(n, seed=1, words=WORDS_1KB), 1):
        batch.append(record)
        if len(batch) == 2000 or i == n:
            ledger.runs.add_items("teacher", [ItemIn(r["id"], i, r["id"], r) for r in batch])
            ledger.scores.write_scores([ScoreIn(run_id="teacher", trace_id=r["id"], eval="bench", judge_version=version,
                                         dataset="h", label=teacher_label(r),
                                         score=float(teacher_label(r) == "pass"), cost_usd=0.0001)
                                 for r in batch])
            batch = []


def throughput(artifact: Path, n: int = 20_000, chunk: int = 500) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from judges.artifact import load_artifact
    from judges.distilled import DistilledJudge
    from judges.record import Record

    judge = DistilledJudge("bench-mini", "bench-mini@x", load_artifact(artifact))
    fresh = [Record.model_validate(r) for r in records(n, seed=7, words=WORDS_1KB, prefix="p")]
    size = statistics.mean(len(json.dumps(r.to_message())) for r in fresh[:1000])
    with threadpool_limits(limits=1):
        judge.judge(fresh[:chunk])  # warm
        started = time.process_time()
        wall = time.perf_counter()
        for i in range(0, n, chunk):
            judge.judge(fresh[i:i + chunk])
        cpu_s = time.process_time() - started
        wall_s = time.perf_counter() - wall
    return {"items": n, "record_bytes": round(size), "cpu_s": round(cpu_s, 2), "wall_s": round(wall_s, 2),
            "items_per_cpu_s": round(n / cpu_s), "items_per_wall_s": round(n / wall_s)}


_COLD_LOAD = """
import json, sys, time
started = time.perf_counter()
import skops.io, sklearn.linear_model
imported = time.perf_counter()
from judges.artifact import load_artifact
load_artifact(__import__("pathlib").Path(sys.argv[1]))
print(json.dumps({"imports_s": imported - started, "load_s": time.perf_counter() - imported}))
"""


def load_times(artifact: Path) -> dict[str, Any]:
    """A worker's first load, in fresh processes (median of 3): the imports, then the artifact itself."""
    import subprocess

    runs = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", _COLD_LOAD, str(artifact)], capture_output=True, text=True,
                              cwd=REPO, check=True, timeout=120)
        runs.append(json.loads(done.stdout))
    return {"imports_s": round(statistics.median(r["imports_s"] for r in runs), 3),
            "load_s": round(statistics.median(r["load_s"] for r in runs), 3),
            "artifact_bytes": artifact.stat().st_size}


def cascade(folder: Path, env: dict[str, str], provider: FakeProvider, n: int) -> dict[str, Any]:
    from ledger.store import Ledger

    data = write(folder / "fresh.jsonl", n, seed=2, words=WORDS_1KB, prefix="f")
    truth = {r["id"]: teacher_label(r) for r in records(n, seed=2, words=WORDS_1KB, prefix="f")}
    started = time.perf_counter()
    done = run_cli(["submit", str(data), "--judge", "bench-cascade", "--wait"], env, timeout=3600)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cascade submit failed ({done.returncode}): {done.stderr[-2000:]}")
    run_id = done.stdout.splitlines()[0].strip()
    shown = json.loads(run_cli(["report", run_id, "--json"], env).stdout)["cascades"][0]
    rows = list(Ledger(env["JUDGEQ_LEDGER_URL"]).scores.scores(run_id))
    agree = sum(r.label == truth[r.trace_id] for r in rows) / len(rows)
    kept = [r for r in rows if r.stage == "first"]
    student = sum(r.label == truth[r.trace_id] for r in kept) / max(1, len(kept))
    return {"items": n, "wall_s": round(wall_s, 1), "calls": provider.count(200),
            "escalation_rate": shown["escalation_rate"], "audited": shown["audited"],
            "audit_agreement": shown["audit_agreement"], "audit_agreement_ci": shown["audit_agreement_ci"],
            "cost_usd": shown["cost_usd"], "all_remote_usd": shown["all_remote_usd"],
            "saved_share": shown["saved_usd"] / shown["all_remote_usd"] if shown["all_remote_usd"] else None,
            "agreement": round(agree, 4), "confident_agreement": round(student, 4)}


def fit_only(n: int) -> dict[str, Any]:
    """``scheduler.distill``'s collect and train on ``n`` rows of ~1 KB records, without a ledger."""
    from ledger.stores.teacher import VerdictRow
    from scheduler.distill import collect, train

    rows = [VerdictRow("r", r["id"], "ok", teacher_label(r), float(teacher_label(r) == "pass"), "v", None, r)
            for r in records(n, seed=1, words=WORDS_1KB)]
    wall, cpu = time.perf_counter(), time.process_time()
    meta = train(collect(rows, "bench", "v"), 0.95).meta
    return {"rows": n, "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "fit_s": meta["fit_s"], "accuracy": meta["accuracy"], "ece": meta["ece"], "converged": meta["converged"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=5000, help="Teacher verdicts to train on.")
    parser.add_argument("--items", type=int, default=10_000, help="Items the cascade judges.")
    parser.add_argument("--audit", type=float, default=0.05, help="The cascade's audit share.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--fit-only", type=int, default=None, help="Only train on this many rows, in process.")
    args = parser.parse_args()
    # A user's `judgeq` is a fresh interpreter: not the test suite's pre-imported zygote (tests/zygote.py).
    os.environ["JUDGEQ_TEST_ZYGOTE"] = "0"
    if args.fit_only is not None:
        from .machine import reference

        print(json.dumps({"reference": reference(), "fit": fit_only(args.fit_only)}, indent=1))
        return

    from .machine import describe, per_loop, reference

    ref = reference()
    out: dict[str, Any] = {"reference": ref}
    with tempfile.TemporaryDirectory(prefix="judgeq-distilled-") as tmp, FakeProvider() as provider:
        folder = Path(tmp)
        config = folder / "judgeq.toml"
        config.write_text(CONFIG.format(base=provider.base_url, limits=""))
        url = f"sqlite:///{folder / 'ledger.db'}"
        env = base_env(JUDGEQ_CONFIG=str(config), JUDGEQ_LEDGER_URL=url, BENCH_PROVIDER_KEY="sk-bench",
                       JUDGEQ_KEY_ENDPOINTS=json.dumps({"BENCH_PROVIDER_KEY": [provider.base_url]}))
        fill_teacher(url, config, args.train)
        started = time.perf_counter()
        trained = run_cli(["distill", "--teacher", "bench", "--name", "bench-mini", "--out", str(folder / "m"),
                           "--json"], env, timeout=3600)
        if trained.returncode != 0:
            raise SystemExit(f"distill failed ({trained.returncode}): {trained.stderr[-2000:]}")
        meta = json.loads(trained.stdout)
        artifact = Path(meta["artifact"])
        out["training"] = {"rows": args.train, "wall_s": round(time.perf_counter() - started, 1),
                           "fit_s": meta["fit_s"], "accuracy": meta["accuracy"], "kappa": meta["kappa"],
                           "ece": meta["ece"], "threshold": meta["threshold"],
                           "escalation_share": meta["escalation_share"]}
        out["throughput"] = throughput(artifact)
        out["load"] = load_times(artifact)
        with config.open("a") as file:
            file.write(f'\n[judges.bench-mini]\ntype = "distilled"\nartifact = "{artifact}"\n'
                       f'\n[judges.bench-cascade]\ntype = "cascade"\nfirst = "bench-mini"\nthen = "bench"\n'
                       f'audit = {args.audit}\n')
        out["cascade"] = cascade(folder, env, provider, args.items)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"machine reference: {describe(ref)}")
    t, th, ld, c = out["training"], out["throughput"], out["load"], out["cascade"]
    print(f"training: {t['rows']:,} rows in {t['wall_s']} s (fit {t['fit_s']} s); holdout accuracy "
          f"{t['accuracy']:.3f}, kappa {t['kappa']:.3f}, ECE {t['ece']:.3f}; threshold {t['threshold']:.3f} "
          f"escalates {t['escalation_share']:.1%}")
    print(f"throughput: {th['items_per_cpu_s']:,} items per CPU-second on one core ({th['record_bytes']} B records; "
          f"{per_loop(th['items_per_cpu_s'], ref):,.0f} per loop) (target >= 2,000)")
    print(f"load: {ld['load_s']} s for {ld['artifact_bytes']:,} bytes (target < 1 s); first imports "
          f"{ld['imports_s']} s")
    print(f"cascade on {c['items']:,} items: {c['escalation_rate']:.1%} escalated, {c['calls']:,} calls, "
          f"${c['cost_usd']:.4f} against ${c['all_remote_usd']:.4f} all-remote ({c['saved_share']:.1%} saved); "
          f"agreement with the teacher's rule {c['agreement']:.3f} (of the items kept local "
          f"{c['confident_agreement']:.3f}); audited agreement {_audited(c)}; {c['wall_s']} s")


def _audited(cascade: dict[str, Any]) -> str:
    """The audited agreement and its interval; none when no confident item was audited (a weak student)."""
    if cascade["audit_agreement"] is None:
        return "none (no item was audited)"
    low, high = cascade["audit_agreement_ci"]
    return f"{cascade['audit_agreement']:.3f} [{low:.3f}, {high:.3f}]"


if __name__ == "__main__":
    main()
