"""README.md cannot drift: its commands run here, its settings table matches the code."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import REPO, base_env

pytestmark = pytest.mark.timeout(120)

README = (REPO / "README.md").read_text()


def two_commands() -> list[str]:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_readme_gives_two_commands_and_ci_runs_the_second() -> None:
    first, second = two_commands()
    assert "judgeq submit examples/golden.jsonl" in first and "pip install" in first
    ci = (REPO / ".ci" / "run").read_text()
    assert second in ci.splitlines(), "'.ci/run' must call README's test command"


def test_readme_main_job_runs_on_the_embedded_default(tmp_path: Path) -> None:
    """The first command's job, from a copy of the repository's example and config, no broker, no key."""
    first = two_commands()[0]
    job = shlex.split(first.split("&&")[-1])
    assert job[0].endswith("judgeq")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copy(REPO / "judgeq.toml", tmp_path / "judgeq.toml")
    env = base_env()
    env.pop("OPENAI_API_KEY", None)
    res = invoke(job[1:], env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "judgeq.db").exists()
    for judge in ("exact", "overlap"):
        assert judge in res.stdout
    assert "24" in res.stdout  # items per judge in the summary table


def test_settings_table_matches_the_code() -> None:
    from scheduler.settings import SECTIONS

    table = dict(re.findall(r"^\| `(JUDGEQ_[A-Z_]+)` \| ([^|]+) \|", README, re.M))
    documented = set(table)
    in_code = set()
    for cls in SECTIONS:  # every package's section of the one settings object
        for name, field in cls.model_fields.items():
            var = f"JUDGEQ_{name.upper()}"
            in_code.add(var)
            default = field.default
            shown = table.get(var, "").strip().strip("`")
            if default is None:
                assert shown == "unset", var
            elif isinstance(default, bool):
                assert shown == str(default).lower(), var
            else:
                assert shown == str(default), (var, shown, default)
    assert documented == in_code


SYSTEM_PACKAGES = REPO / "scripts" / "system-packages"


def test_readme_test_command_installs_the_programs_the_tests_start_first(tmp_path: Path) -> None:
    """A fresh machine without prometheus or chromium: the test command installs them (root) or says how, first."""
    script = (REPO / "scripts" / "test").read_text().splitlines()
    assert script.index("bash scripts/system-packages") < next(
        i for i, line in enumerate(script) if "-m pytest" in line)
    bash = shutil.which("bash")
    assert bash is not None
    env = {"PATH": str(tmp_path / "bin"), "LANG": "C.UTF-8"}  # none of the programs: a fresh machine
    checked = subprocess.run([bash, str(SYSTEM_PACKAGES), "--check"], env=env, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 1
    assert "install with: apt-get update && apt-get install -y --no-install-recommends redis-server prometheus chromium" \
        in checked.stderr
    # Not root: nothing is installed, and the line says what to run.
    # The script comes on stdin: a clone in a folder only root may enter (mktemp -d) is no file nobody can read.
    unprivileged = subprocess.run([shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bash,
                                   "-s"], input=SYSTEM_PACKAGES.read_text(), env=env, capture_output=True, text=True,
                                  timeout=30, cwd="/")
    assert unprivileged.returncode == 1, unprivileged.stderr
    assert "only root can install them; run: sudo apt-get update && sudo apt-get install -y " \
           "--no-install-recommends redis-server prometheus chromium" in unprivileged.stderr
    # Here everything is installed: nothing to do, nothing said.
    here = subprocess.run([bash, str(SYSTEM_PACKAGES)], capture_output=True, text=True, timeout=30)
    assert (here.returncode, here.stdout, here.stderr) == (0, "", "")
