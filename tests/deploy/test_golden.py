"""Golden snapshots of what the examples in `examples/` render to.

The seeds' setups (three pools on labelled nodes with a conflicting-requirements pool; a GPU
pool) rendered through the real CLI and compared file by file, so every change to the output
is a reviewable diff. After an intended change, refresh them with
`UPDATE_GOLDEN=1 pytest tests/deploy/test_golden.py` and review `git diff`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

from tests.deploy.manifests import CUSTOM_GROUPS, VERSIONS, validate_crd
from tests.factories import ROOT

EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = {
    "media-platform": [
        ["kubernetes", "--out", "{out}/kubernetes", "--namespace", "media",
         "--image", "registry.example.com/media/app:1.4.2", "--postgres", "--redis",
         "--monitoring", "operator", "--ingress-host", "jobs.example.com",
         "--ingress-class", "nginx"],
        ["compose", "--out", "{out}/docker-compose.yaml",
         "--image", "registry.example.com/media/app:1.4.2"],
        ["dockerfiles", "--out", "{out}/dockerfiles"],
    ],
    "any-language": [
        ["kubernetes", "--out", "{out}/kubernetes", "--namespace", "stats",
         "--image", "registry.example.com/stats/app:1.0.0"],
        ["compose", "--out", "{out}/docker-compose.yaml",
         "--image", "registry.example.com/stats/app:1.0.0"],
    ],
    "gpu-inference": [
        ["kubernetes", "--out", "{out}/kubernetes", "--namespace", "vision",
         "--image", "registry.example.com/vision/app:2.0.0"],
        ["dockerfiles", "--out", "{out}/dockerfiles"],
    ],
}  # fmt: skip
CRD_MODELS = {"ScaledObject": ScaledObject, "ServiceMonitor": ServiceMonitor}
CRD_MODELS["PrometheusRule"] = PrometheusRule


def _render(example: str, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    for command in CASES[example]:
        args = [a.replace("{out}", str(out)) for a in command]
        done = subprocess.run(
            [sys.executable, "-m", "jobyard", "deploy", *args],
            cwd=EXAMPLES / example,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


def _files(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("example", sorted(CASES))
def test_the_examples_render_exactly_as_recorded(example: str, tmp_path: Path) -> None:
    _render(example, tmp_path)
    expected_dir = GOLDEN / example
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(tmp_path, expected_dir)
    got, expected = _files(tmp_path), _files(expected_dir)
    assert sorted(got) == sorted(expected), "files differ; see the module docstring to refresh"
    for name, text in expected.items():
        assert got[name] == text, f"{example}/{name} changed; see the module docstring to refresh"


@pytest.mark.parametrize("example", sorted(CASES))
def test_the_recorded_manifests_are_valid(example: str) -> None:
    folder = GOLDEN / example / "kubernetes"
    kinds: set[str] = set()
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            kinds.add(obj["kind"])
            if obj["apiVersion"].startswith(CUSTOM_GROUPS):
                validate_crd(CRD_MODELS[obj["kind"]], obj)
            else:
                kubernetes_validate.validate(obj, VERSIONS[-1], strict=True)
    assert {"Deployment", "ConfigMap", "NetworkPolicy"} <= kinds
    # Worker pools scale on queue depth; a pod-per-job pool's Jobs are its scaling.
    assert ("ScaledObject" in kinds) == (example != "any-language")
    if example == "any-language":
        assert {"Role", "RoleBinding"} <= kinds  # the launcher's, to create Jobs


def test_the_seeds_placement_is_in_the_snapshots() -> None:
    media = GOLDEN / "media-platform" / "kubernetes"
    transcode = next(yaml.safe_load_all((media / "worker-media.yaml").read_text()))
    pod = transcode["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node-role": "high-cpu"}
    assert pod["terminationGracePeriodSeconds"] == 3600  # 3600 s jobs + 30, capped at an hour
    legacy = next(yaml.safe_load_all((media / "worker-legacy.yaml").read_text()))
    assert legacy["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/media/legacy:1.4.2"
    )
    vision_dir = GOLDEN / "gpu-inference" / "kubernetes"
    vision = next(yaml.safe_load_all((vision_dir / "worker-vision.yaml").read_text()))
    container = vision["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert (GOLDEN / "gpu-inference" / "dockerfiles").is_dir()
