"""docker-compose.yml and the Dockerfile, checked as far as a machine without a Docker engine allows.

Every judgeq command a service runs must exist and parse its arguments, every
setting it passes must be one judgeq reads, and every file the Dockerfile
copies must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .cli_runner import invoke
from .processes import REPO, base_env

pytestmark = pytest.mark.timeout(120)

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def judgeq_services() -> dict[str, dict]:
    return {name: svc for name, svc in SERVICES.items() if svc.get("image", "").startswith("judgeq")}


def test_compose_has_the_fleet() -> None:
    assert {"redis", "postgres", "migrate", "worker-local", "worker-remote", "flower"} <= set(SERVICES)
    assert "--appendonly" in SERVICES["redis"]["command"] and "yes" in SERVICES["redis"]["command"]
    # The remote worker must be scalable: no fixed container name or host port.
    assert "container_name" not in SERVICES["worker-remote"] and "ports" not in SERVICES["worker-remote"]
    assert SERVICES["worker-local"]["command"][:3] == ["worker", "--queues", "local"]
    assert SERVICES["worker-remote"]["command"][:3] == ["worker", "--queues", "remote"]
    for name in ("worker-local", "worker-remote", "flower"):
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_compose_settings_are_ones_judgeq_reads() -> None:
    from scheduler.settings import SECTIONS

    known = {f"JUDGEQ_{n.upper()}" for cls in SECTIONS for n in cls.model_fields}
    for name, svc in judgeq_services().items():
        for var in (svc.get("environment") or {}):
            if var.startswith("JUDGEQ_"):
                assert var in known, f"{name} sets {var}, which judgeq does not read"
    flower_env = SERVICES["flower"]["environment"]
    assert "FLOWER_BASIC_AUTH" in flower_env and "FLOWER_UNAUTHENTICATED_API" not in flower_env
    # Secrets are passed through from the host, never written in the file.
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.search(r"sk-[A-Za-z0-9]{8,}", text)


@pytest.mark.parametrize("service", sorted(judgeq_services()))
def test_compose_commands_parse(service: str, tmp_path: Path) -> None:
    command = SERVICES[service].get("command")
    if not command:
        return
    res = invoke([*command, "--help"], base_env(), cwd=tmp_path)
    assert res.returncode == 0, f"{service}: judgeq {' '.join(command)} --help failed: {res.stderr}"


def test_dockerfile_copies_what_exists_and_runs_as_a_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", text, re.M):
        for part in src.split():
            assert (REPO / part).exists(), f"Dockerfile copies {part}, which does not exist"
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'ENTRYPOINT ["judgeq"]' in text
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in text


def test_compose_has_one_beat_with_the_workers_settings() -> None:
    beat = SERVICES["beat"]
    assert beat["command"] == ["beat"] and beat["image"] == SERVICES["worker-local"]["image"]
    assert beat["environment"] == SERVICES["worker-local"]["environment"]  # the same broker, ledger and config
    assert beat["depends_on"]["redis"]["condition"] == "service_healthy"  # its schedule state lives there
    assert "deploy" not in beat and "ports" not in beat  # one beat, nothing to reach from outside
    assert beat["restart"] == "unless-stopped"


def test_workers_beat_and_flower_send_task_events() -> None:
    from workers.settings import WorkerSettings

    for name in ("worker-local", "worker-remote", "beat", "flower"):
        value = SERVICES[name]["environment"].get("JUDGEQ_TASK_EVENTS", "true")
        assert WorkerSettings(task_events=value).task_events, f"{name} sends no task events; Flower needs them"


def test_dockerfile_copies_every_package() -> None:
    import tomllib

    text = (REPO / "Dockerfile").read_text()
    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in wanted:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} \./{package}$", text, re.M), f"the image lacks the {package} package"


def test_the_shipped_sources_are_mounted_where_ticks_and_cli_read_them() -> None:
    """A relative source path starts at judgeq.toml's folder, /etc/judgeq in the containers."""
    import tomllib

    sources = tomllib.loads((REPO / "judgeq.toml").read_text()).get("sources", {})
    assert sources, "judgeq.toml ships an example source"
    for name in ("worker-local", "submit"):
        mounts = dict(reversed(v.rsplit(":", 2)[:2]) for v in SERVICES[name]["volumes"])  # container -> host
        for source, table in sources.items():
            if table.get("type") != "jsonl":
                continue
            inside = f"/etc/judgeq/{table['path']}"
            found = [c for c in mounts if inside == c or inside.startswith(c.rstrip("/") + "/")]
            assert found, f"{name}: sources.{source} ({inside}) is not mounted"
            host = REPO / mounts[found[0]] / inside[len(found[0]):].lstrip("/")
            assert host.exists(), f"{name}: sources.{source} is mounted from {host}, which does not exist"
