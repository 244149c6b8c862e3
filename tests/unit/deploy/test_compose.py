"""docker-compose.yml is written and validated, not run (no Docker engine here): it must be a
valid Compose file and start the same processes with the same commands as the Procfile and
`make run`."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.procfile import processes
from services.kit.config import SERVICES

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (.ci/run installs it)")
def test_compose_file_is_valid_for_docker_compose():
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr


def test_compose_runs_exactly_the_procfile_processes_with_the_same_commands():
    services = compose()["services"]
    built = {name for name, spec in services.items() if "build" in spec} - {"migrate"}
    assert built == set(processes())
    for name, command in processes().items():
        assert command_of(services[name]) == shlex.split(command), name


def test_procfile_names_every_service_and_the_gateway():
    assert set(processes()) == {*SERVICES, "gateway", "mail"}
    for name in SERVICES:
        assert processes()[name] == f"python -m services.kit.runner {name}"


def test_services_wait_for_migrations_and_a_healthy_broker():
    services = compose()["services"]
    assert command_of(services["migrate"]) == ["python", "-m", "deploy.bootstrap"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in processes():
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["rabbitmq"]["condition"] == "service_healthy", name
        assert "healthcheck" in services[name], name
        # the gateway writes uploads, attachments and serves recordings the services store
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {"/data/files", "/data/recordings", "/data/statements"} <= mounts, name
    for infra in ("postgres", "rabbitmq"):
        assert "healthcheck" in services[infra]
        assert services[infra]["volumes"], f"{infra} keeps its data on a volume"


def test_postgres_runs_with_the_settings_the_local_setup_gives_it():
    # deploy/ensure-services.sh raises the same two on a developer's machine and in CI
    settings = dict(arg.split("=", 1) for arg in command_of(compose()["services"]["postgres"])
                    if "=" in arg)
    assert int(settings["max_connections"]) >= 300
    assert settings["shared_buffers"] == "1GB"
    script = (ROOT / "deploy" / "ensure-services.sh").read_text(encoding="utf-8")
    assert "ALTER SYSTEM SET max_connections = 300" in script
    assert "ALTER SYSTEM SET shared_buffers" in script and "1024" in script
