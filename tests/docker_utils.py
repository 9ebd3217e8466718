"""A Docker engine and the two images for the smoke test, prepared in the background while other tests run.

`start_preparing()` (called by conftest when the smoke test is collected) runs `scripts/docker_prepare.sh`;
`wait_for(kind)` blocks until that image is built, skipping the test with the reason printed when no engine can
be started and failing it with the build's log when a build fails; `finish()` stops what was started.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("ADAPT_DOCKER_STATE", Path(tempfile.gettempdir()) / "adapt-docker"))
_prep: subprocess.Popen | None = None
_started_at = 0.0


def start_preparing() -> None:
    global _prep, _started_at
    if _prep is not None:
        return
    STATE.mkdir(parents=True, exist_ok=True)
    for name in ("engine", "cpu.rc", "cuda.rc"):  # a previous run's results must not be read as this run's
        (STATE / name).unlink(missing_ok=True)
    log = (STATE / "prepare.log").open("w")
    _started_at = time.monotonic()
    _prep = subprocess.Popen(["bash", str(ROOT / "scripts" / "docker_prepare.sh"), str(STATE)], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _log() -> str:
    path = STATE / "prepare.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _published(name: str, timeout: float) -> str:
    path = STATE / name
    deadline = time.monotonic() + timeout
    while not path.exists():
        if _prep is None or (_prep.poll() is not None and not path.exists()):
            pytest.fail(f"docker_prepare.sh ended without writing {name}:\n{_log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not ready after {timeout:.0f} s:\n{_log()}")
        time.sleep(1)
    return path.read_text().strip()


def wait_for(kind: str, timeout: float = 1500) -> str:
    """The tag of the built image `adapt:KIND`, once built; skips (reason printed) where no engine can start."""
    start_preparing()
    engine = _published("engine", 300)
    if engine.startswith("none"):
        pytest.skip(f"Docker smoke test skipped: {engine}")
    if _published(f"{kind}.rc", timeout) != "0":
        build = STATE / f"build-{kind}.log"
        tail = "\n".join(build.read_text(errors="replace").splitlines()[-40:]) if build.exists() else ""
        pytest.fail(f"building adapt:{kind} failed:\n{_log()}\n{tail}")
    (STATE / f"{kind}.waited").write_text(f"{time.monotonic() - _started_at:.0f}\n")
    return f"adapt:{kind}"


def finish() -> None:
    """Stop the preparation if it still runs, and the engine only if it was started for these tests."""
    global _prep
    if _prep is None:
        return
    if _prep.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(_prep.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            _prep.wait(timeout=30)
    _prep = None
    subprocess.run(["bash", str(ROOT / "scripts" / "docker_engine.sh"), "stop", str(STATE)], check=False)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def inspect(container: str, template: str) -> str:
    return docker("inspect", "-f", template, container).stdout.strip()


def host_port(container: str) -> int:
    ports = json.loads(inspect(container, "{{json .NetworkSettings.Ports}}"))
    return int(ports["8000/tcp"][0]["HostPort"])
