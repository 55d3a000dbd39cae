"""The docker-compose rendering: parsed and checked structurally (no Docker engine here);
`docker compose config` also runs when the compose plugin is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobyard.deploy import compose
from jobyard.deploy.k8s_storage import ARTIFACTS_PATH
from tests.deploy.manifests import seeds_settings


def rendered() -> dict[str, Any]:
    document = compose.render(seeds_settings(), {"media": 900.0}, image="example/app:1")
    # What docker compose reads: the YAML text, not our dict.
    parsed: dict[str, Any] = yaml.safe_load(yaml.safe_dump(document, sort_keys=False))
    return parsed


def test_one_service_per_pool_plus_the_platform() -> None:
    services = rendered()["services"]
    assert set(services) == {
        "postgres", "redis", "migrate", "web", "scheduler",
        "worker-general", "worker-media", "worker-vision",
    }  # fmt: skip
    for name in ("worker-general", "worker-media", "worker-vision"):
        worker = services[name]
        assert worker["command"] == ["worker", "--pool", name.removeprefix("worker-")]
        assert "container_name" not in worker and "ports" not in worker  # --scale works
        assert worker["healthcheck"]["test"][-1] == "--check"
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker-media"]["stop_grace_period"] == "930s"
    assert services["worker-vision"]["image"] == "registry.example.com/vision:1.0"
    devices = services["worker-vision"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_every_long_running_service_has_a_healthcheck_and_secrets_come_from_env() -> None:
    document = rendered()
    for name, service in document["services"].items():
        if name != "migrate":
            assert "healthcheck" in service, name
    text = yaml.safe_dump(document)
    assert re.search(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", text)
    # file:// artifact storage: one volume shared by web, scheduler and workers.
    assert set(document["volumes"]) == {"postgres", "redis", "artifacts"}
    for name, service in document["services"].items():
        shared = f"artifacts:{ARTIFACTS_PATH}" in service.get("volumes", [])
        assert shared == (name not in ("migrate", "postgres", "redis")), name


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    (tmp_path / "docker-compose.yaml").write_text(yaml.safe_dump(rendered()))
    (tmp_path / "jobyard.toml").write_text("")
    done = subprocess.run(
        ["docker", "compose", "config", "--quiet"],
        cwd=tmp_path,
        env={"POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
