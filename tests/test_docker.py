"""Docker images without a Docker engine: lint with hadolint, check COPY sources, and run each image's own
CMD (read from the Dockerfile, not retyped) outside Docker against a real saved model. The images themselves
are built and run in a real engine by `test_docker_engine.py`."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .serving_utils import free_port, http, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile*"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    lines, cur = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cur = f"{cur} {line[:-1]}" if line.endswith("\\") else f"{cur} {line}"
        if not line.endswith("\\"):
            lines.append(cur.strip())
            cur = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def _env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins, args in _instructions(path):
        if ins == "ENV":
            for tok in shlex.split(args):
                key, _, value = tok.partition("=")
                env[key] = value
    return env


def test_there_are_cpu_and_cuda_images():
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.cpu", "Dockerfile.cuda"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_image_is_well_formed(dockerfile):
    ins = _instructions(dockerfile)
    for name, args in ins:
        if name == "COPY":
            for src in shlex.split(args)[:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"{dockerfile.name} copies missing {src}"
    names = [n for n, _ in ins]
    assert "HEALTHCHECK" in names and "CMD" in names
    assert [a for n, a in ins if n == "USER"][-1] not in ("root", "0")  # runs as a non-root user
    env = _env(dockerfile)
    assert env["ADAPT_MODEL"] == "/model" and env["ADAPT_PORT"] == "8000"
    # dependencies are installed before the source is copied, so source edits keep the dependency layers
    sources = [shlex.split(a)[0] for n, a in ins if n == "COPY"]
    assert sources.index("adapt") > sources.index("adapt/__init__.py")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_command_serves_a_saved_model(dockerfile, saved_dir):
    ins = _instructions(dockerfile)
    cmd = json.loads([a for n, a in ins if n == "CMD"][-1])
    health = [a for n, a in ins if n == "HEALTHCHECK"][-1]
    health_cmd = json.loads(health[health.index("CMD") + 3 :].strip())
    port = free_port()
    env = {**os.environ, **_env(dockerfile), "ADAPT_MODEL": str(saved_dir), "ADAPT_PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        status, body = http("POST", f"{base}/predict", {"texts": ["The striker scored twice"]})
        assert status == 200 and body["predictions"] == ["sports"]
        hc = subprocess.run(health_cmd, env=env, capture_output=True, text=True, timeout=30)
        assert hc.returncode == 0, hc.stderr
    finally:
        assert stop(proc) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in proc.stdout.read()
