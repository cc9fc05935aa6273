"""What a ``judgeq`` process costs before it does anything: wall time and imports of short commands.

Many things spawn ``judgeq`` (CI steps, scripts, the test suite's ~70 CLI
subprocesses), so the start-up of a short command is paid over and over. For
``judgeq --help``, ``judgeq runs`` (on a SQLite ledger at the newest schema)
and ``judgeq judges``, this prints the median wall time of fresh processes,
the number of modules imported, and the import time by top-level package
(``python -X importtime``, self time summed), beside the machine reference of
benchmarks/machine.py and the wall time in loop units.

    python -m benchmarks.cli_startup [--repeat 5] [--repo PATH] [--json]

``--repo`` measures another checkout of judgeq (e.g. the commit before a
change) with this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.machine import describe, in_loops, reference

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"help": ["--help"], "runs": ["runs"], "judges": ["judges"]}


def judgeq(repo: Path, args: list[str], env: dict[str, str], *, importtime: bool = False
           ) -> subprocess.CompletedProcess[str]:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run([sys.executable, *flags, "-c", "from cli.main import main; main()", *args],
                          cwd=env["JUDGEQ_BENCH_CWD"], env=env, capture_output=True, text=True, timeout=300)


def by_package(stderr: str) -> tuple[int, dict[str, float]]:
    """Modules imported, and seconds of import by top-level package (self times), from -X importtime's lines."""
    seconds: Counter[str] = Counter()
    modules = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|", 2)
        seconds[name.strip().split(".")[0]] += int(self_us) / 1e6
        modules += 1
    return modules, dict(seconds.most_common(8))


def measure(repo: Path, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="judgeq-startup-") as folder:
        env = {key: value for key, value in os.environ.items() if not key.startswith("JUDGEQ_")}
        env.update(PYTHONPATH=str(repo), JUDGEQ_LEDGER_URL=f"sqlite:///{folder}/ledger.db",
                   JUDGEQ_CONFIG=str(repo / "judgeq.toml"), JUDGEQ_BENCH_CWD=folder,
                   LITELLM_LOCAL_MODEL_COST_MAP="True", OPENAI_API_KEY="unused")
        upgraded = judgeq(repo, ["db", "upgrade"], env)
        if upgraded.returncode != 0:
            raise RuntimeError(f"judgeq db upgrade failed: {upgraded.stderr.strip()}")
        figures: dict[str, Any] = {}
        for name, args in COMMANDS.items():
            walls = []
            for _ in range(repeat):
                started = time.perf_counter()
                res = judgeq(repo, args, env)
                walls.append(time.perf_counter() - started)
                if res.returncode != 0:
                    raise RuntimeError(f"judgeq {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
            modules, packages = by_package(judgeq(repo, args, env, importtime=True).stderr)
            figures[name] = {"wall_s": round(statistics.median(walls), 3), "walls_s": [round(w, 3) for w in walls],
                             "modules": modules, "import_s_by_package": {k: round(v, 3) for k, v in packages.items()}}
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per command (median reported)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the judgeq checkout to measure")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    ref = reference()
    figures = measure(args.repo.resolve(), args.repeat)
    if args.json:
        json.dump({"machine": ref, "commands": figures}, sys.stdout, indent=2)
        print()
        return
    for name, fig in figures.items():
        top = ", ".join(f"{pkg} {s:.2f}" for pkg, s in fig["import_s_by_package"].items())
        print(f"judgeq {' '.join(COMMANDS[name])}: {fig['wall_s']:.2f} s median of {len(fig['walls_s'])} "
              f"({in_loops(fig['wall_s'], ref):.2f} loops), {fig['modules']} modules; import s: {top}")
    print(describe(ref))


if __name__ == "__main__":
    main()
