"""judgeq's commands run in this test process, through ``cli.main.main`` and typer's ``CliRunner`` isolation.

A command that neither signals, kills nor times a process needs no process of
its own (simonw/llm tests its CLI so): :func:`invoke` runs ``judgeq ARGS`` here,
with ``main``'s own ending (an error is one line on stderr and its exit code,
as ``run_cli`` sees it), and returns what ``run_cli`` returns, so a test moves
from one to the other by its call alone. The environment is the one given,
whole, for the call's duration; the working directory, the signal handlers
and the unraisable hook a command installs (``scheduler.interrupts``) are put
back afterwards. The zygote (``tests/processes.py``) stays for the calls that
need a real process: signals, kills, timings, file modes as non-root,
``JUDGEQ_TEST_ZYGOTE=0``, what only a process's exit does (it closes the
SQLite ledger, folding the WAL into the file), calls made from several
threads at once (the isolation swaps this process's streams and environment),
and the servers (worker, beat, flower, exporter); and for the workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from typer.testing import CliRunner

from .processes import REPO


def invoke(args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``judgeq ARGS`` in this process with exactly ``env`` as its environment (in ``cwd``, default the repo)."""
    from cli.main import main

    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    unraisable, argv, before = sys.unraisablehook, sys.argv, Path.cwd()
    code: int | str | None = 0
    with CliRunner().isolation(env=overrides) as (stdout, stderr, _):
        sys.argv = ["judgeq", *args]
        os.chdir(cwd or REPO)
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.argv, sys.unraisablehook = argv, unraisable
            os.chdir(before)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    if code is None:
        code = 0
    elif not isinstance(code, int):  # as Python ends a process: sys.exit("text") prints the text, exits 1
        err, code = f"{err}{code}\n", 1
    return subprocess.CompletedProcess(["judgeq", *args], code, out, err)
