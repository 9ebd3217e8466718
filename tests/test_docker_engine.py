"""The Docker images in a real Docker engine: build both, serve folders exactly as `tuner.save()` and `adapt export`
wrote them (mounted read-only, the container as its default non-root user), and answer as `Easy*` does on the host.

The engine and the builds start in the background when this file is collected (`tests/docker_utils.py`,
`scripts/docker_prepare.sh`); where no engine can be started the tests are skipped with the reason printed.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapt.tasks import get_task

from .contract_utils import INPUTS, easy_call, json_close
from .docker_utils import STATE, docker, host_port, inspect, wait_for
from .readme_utils import rewrite, run_shell, section_blocks
from .serving_utils import free_port, http

SERVED = ("sequence_classification", "token_classification", "language_modeling", "summarization")


@pytest.fixture(scope="module")
def cpu_image() -> str:
    return wait_for("cpu")


@pytest.fixture(scope="module")
def cuda_image() -> str:
    return wait_for("cuda")


@pytest.fixture(scope="module")
def folders(trained_tasks, tmp_path_factory) -> dict[str, Path]:
    """task -> a folder as `tuner.save()` wrote it, plus "exported": `adapt export --onnx` of the classifier."""
    out = {task: trained_tasks[task][1] for task in SERVED}
    root = tmp_path_factory.mktemp("docker-export")
    parity = root / "parity.txt"
    parity.write_text("\n".join(["Shares fell sharply after the profit warning", "The striker scored twice",
                                 "The minister resigned", "A new phone went on sale", "The film won an award"]) + "\n")
    exported = root / "bbc-onnx"
    cli = Path(sys.executable).with_name("adapt")
    done = subprocess.run([str(cli), "export", str(out["sequence_classification"]), str(exported), "--onnx",
                           "--parity-file", str(parity), "--on-parity-fail", "warn"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out["exported"] = exported
    return out


@contextlib.contextmanager
def container(image: str, folder: Path | None = None, *options: str) -> Iterator[str]:
    """A detached container of `image` serving `folder` at /model (read-only), published on a loopback port."""
    name = f"adapt-smoke-{uuid.uuid4().hex[:10]}"
    mount = ["-v", f"{folder}:/model:ro"] if folder is not None else []
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8000", *mount, *options, image)
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def wait_ready(name: str, timeout: float = 180) -> str:
    """The container's base URL once /ready answers 200; fails with its log if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inspect(name, "{{.State.Running}}") != "true":
            pytest.fail(f"{name} exited with {inspect(name, '{{.State.ExitCode}}')}:\n{logs(name)}")
        try:
            base = f"http://127.0.0.1:{host_port(name)}"
            if http("GET", f"{base}/ready", timeout=2)[0] == 200:
                return base
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{name} not ready after {timeout} s:\n{logs(name)}")


def logs(name: str) -> str:
    out = docker("logs", name, check=False)
    return out.stdout + out.stderr


def wait_healthy(name: str, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status = inspect(name, "{{.State.Health.Status}}")
        if status == "healthy":
            return time.monotonic() - start
        assert status in ("starting", ""), f"{name} is {status}:\n{logs(name)}"
        time.sleep(0.5)
    pytest.fail(f"{name} not healthy after {timeout} s")


def stop_cleanly(name: str) -> float:
    """`docker stop` time in seconds; the container must exit with code 0."""
    start = time.monotonic()
    docker("stop", "-t", "20", name, timeout=60)
    took = time.monotonic() - start
    assert inspect(name, "{{.State.ExitCode}}") == "0", logs(name)
    return took


def check_served(base: str, task: str, folder: Path, host_folder: Path) -> None:
    """/health, /metadata (no host paths), POST /predict equal to Easy* on the host at every detail level."""
    spec = get_task(task)
    assert http("GET", f"{base}/health") == (200, {"status": "ok"})
    status, meta = http("GET", f"{base}/metadata")
    assert status == 200 and meta["task"] == task, meta
    text = json.dumps(meta)
    assert str(host_folder) not in text and str(host_folder.parent) not in text, meta
    assert not str(meta.get("base_model") or "").startswith("/"), meta
    easy = spec.easy()
    for level in ("low", "high"):
        want = easy_call(spec, easy, INPUTS[task], folder, level)
        status, got = http("POST", f"{base}/predict", {"texts": INPUTS[task], "detail_level": level})
        assert status == 200, got
        assert json_close(got, want), f"{task} at {level}: container {got} != host {want}"


def test_cpu_image_serves_saved_and_exported_folders_as_easy_does_on_the_host(cpu_image: str, folders) -> None:
    runs = {  # folder -> extra docker run options: once read-only with a tmpfs /tmp, once with two workers
        "sequence_classification": ("--read-only", "--tmpfs", "/tmp"),
        "token_classification": (),
        "language_modeling": ("-e", "ADAPT_WORKERS=2"),
        "summarization": (),
        "exported": (),
    }
    with contextlib.ExitStack() as stack:
        names = {key: stack.enter_context(container(cpu_image, folders[key], *opts)) for key, opts in runs.items()}
        bases = {key: wait_ready(name) for key, name in names.items()}
        for key, base in bases.items():
            task = "sequence_classification" if key == "exported" else key
            check_served(base, task, folders[key], folders[key])
        assert http("GET", f"{bases['exported']}/metadata")[1]["model_dir"] == "model"  # the mount, not a host path
        cls = bases["sequence_classification"]
        assert http("POST", f"{cls}/predict", raw=b'{"texts": "not a list"')[0] == 422
        assert http("POST", f"{cls}/predict", {"texts": [42]})[0] == 422
        assert http("POST", f"{cls}/predict", {"texts": ["x" * 20_001]})[0] == 413
        assert wait_healthy(names["sequence_classification"]) < 30
        for key in ("sequence_classification", "language_modeling"):  # read-only; two workers
            assert stop_cleanly(names[key]) < 10


def test_cpu_image_holds_the_installed_package_only(cpu_image: str) -> None:
    probe = ("import adapt, os, sys, importlib.util as u; print(json.dumps({'file': adapt.__file__, 'cwd': os.getcwd(), "
             "'here': sorted(os.listdir('.')), 'src': os.path.exists('/tmp/adapt-src'), 'onnx': u.find_spec('onnx') is not None, "
             "'ort': u.find_spec('onnxruntime') is not None, 'uid': os.getuid()}))")
    out = docker("run", "--rm", "--entrypoint", "python", cpu_image, "-c", f"import json; {probe}").stdout
    got = json.loads(out)
    assert "/site-packages/adapt/" in got["file"], got
    assert not [n for n in got["here"] if n in ("adapt", "build") or n.endswith(".egg-info")], got
    assert not got["src"] and got["ort"] and not got["onnx"] and got["uid"] == 10001, got


def test_an_unreadable_model_file_stops_the_container_with_an_adapt_error(cpu_image: str, folders, tmp_path: Path) -> None:
    """A folder whose weights only their owner may read (what safetensors writes, mode 0600): the error names
    the file and the fix, instead of a raw PermissionError traceback."""
    bad = tmp_path / "private"
    shutil.copytree(folders["sequence_classification"], bad)
    (bad / "model.safetensors").chmod(0o600)
    with container(cpu_image, bad) as name:
        deadline = time.monotonic() + 120
        while inspect(name, "{{.State.Running}}") == "true" and time.monotonic() < deadline:
            time.sleep(0.5)
        out = logs(name)
        assert inspect(name, "{{.State.Running}}") == "false", out
        assert inspect(name, "{{.State.ExitCode}}") == "2", out  # the CLI's exit code for an AdaptError
    lines = out.strip().splitlines()  # (an UntestedVersionWarning line may come first, never a traceback)
    assert lines[-1].startswith("adapt: error: /model/model.safetensors cannot be read") and "Traceback" not in out, out
    assert "chmod" in out and "tuner.save()" in out, out


def test_cuda_image_pins_torch_for_cuda_and_serves_on_the_cpu(cuda_image: str, cpu_image: str, folders) -> None:
    probe = "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda, torch.cuda.is_available()]))"
    version, cuda, available = json.loads(docker("run", "--rm", "--entrypoint", "python", cuda_image, "-c", probe).stdout)
    cpu_version = json.loads(docker("run", "--rm", "--entrypoint", "python", cpu_image, "-c", probe).stdout)[0]
    assert version.split("+")[0] == cpu_version.split("+")[0] == "2.13.0", (version, cpu_version)
    assert cuda.startswith("13.0") and available is False, (cuda, available)
    folder = folders["sequence_classification"]
    with container(cuda_image, folder) as name:
        check_served(wait_ready(name), "sequence_classification", folder, folder)
        assert stop_cleanly(name) < 10


# ---------------------------------------------------------------------------------------------------
# README's "Docker" section, as written (a free loopback port in place of 8000)
# ---------------------------------------------------------------------------------------------------
def _readme_docker_blocks() -> list[str]:
    blocks = section_blocks("Docker", "bash")
    assert len(blocks) == 4, "build, run, GPU run, hardened run"
    return blocks


def test_readme_docker_build_lines_are_what_the_smoke_test_builds(cpu_image: str, cuda_image: str) -> None:
    """The build lines run as written, plus only the arguments this machine needs (`docker_build.sh` logs them):
    `--network host` and, without a registry, a stand-in `BASE_IMAGE` and a local torch index."""
    ran = [line.split("docker build ", 1)[1] for line in STATE.joinpath("prepare.log").read_text().splitlines()
           if "] docker build " in line]
    for line in _readme_docker_blocks()[0].splitlines():
        documented = line.split("#")[0].split()
        kind = documented[documented.index("-t") + 1].split(":")[1]
        actual = next(r.split(" (log: ")[0].split() for r in ran if f"-t adapt:{kind} " in r)
        assert actual[-(len(documented) - 2):] == documented[2:], (documented, actual)
        extra = actual[: len(actual) - len(documented) + 2]
        assert all(a == "--network" or a in ("host", "--build-arg") or a.startswith(("BASE_IMAGE=", "TORCH_INDEX_URL="))
                   for a in extra), extra


def _readme_scratch(tmp_path: Path, folder: Path) -> tuple[Path, dict[str, str]]:
    shutil.copytree(folder, tmp_path / "models" / "bbc")
    for path in [tmp_path / "models", *(tmp_path / "models").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path, {"PORT": str(free_port())}


README_PORT = {"-p 8000:8000": "-p 127.0.0.1:$PORT:8000", "localhost:8000": "localhost:$PORT"}


def test_readme_docker_run_blocks_run_as_written(cpu_image: str, folders, tmp_path: Path) -> None:
    _, run_block, _, hardened = _readme_docker_blocks()
    cwd, env = _readme_scratch(tmp_path, folders["sequence_classification"])
    docker("rm", "-f", "bbc", check=False)
    try:
        out = run_shell(rewrite(run_block, README_PORT), cwd, env, timeout=240).stdout
    finally:
        docker("rm", "-f", "bbc", check=False)
    lines = out.splitlines()  # the container id from `docker run -d`, the answer on a line of its own, `bbc`
    assert len(lines) == 3 and lines[2] == "bbc", out
    assert json.loads(lines[1])["predictions"][0] in folders_labels(folders), out
    # the hardened run is a foreground `docker run --rm`; detach it to send it a request with its key
    detached = rewrite(hardened, {**{k: v for k, v in README_PORT.items() if k.startswith("-p")},
                                  "docker run --rm": "docker run -d --rm --name bbc-hardened"})
    try:
        run_shell(detached, cwd, env, timeout=60)
        base = wait_ready("bbc-hardened")
        assert http("POST", f"{base}/predict", {"texts": ["Shares fell"]})[0] == 401
        status, body = http("POST", f"{base}/predict", {"texts": ["Shares fell"]},
                            headers={"Authorization": "Bearer change-me"})
        assert status == 200 and body["predictions"][0] in folders_labels(folders), body
        assert wait_healthy("bbc-hardened") < 30
    finally:
        docker("rm", "-f", "bbc-hardened", check=False)


def test_readme_docker_gpu_block_runs_as_written(cuda_image: str, folders, tmp_path: Path) -> None:
    gpu_block = _readme_docker_blocks()[2]
    if "nvidia" not in docker("info", "-f", "{{json .Runtimes}}").stdout:
        pytest.skip(f"README GPU block not run: this engine has no NVIDIA runtime (needs a GPU):\n{gpu_block}")
    cwd, env = _readme_scratch(tmp_path, folders["sequence_classification"])
    detached = rewrite(gpu_block, {**README_PORT, "docker run --rm": "docker run -d --rm --name bbc-gpu"})
    try:
        run_shell(detached, cwd, env, timeout=60)
        check_served(wait_ready("bbc-gpu"), "sequence_classification", folders["sequence_classification"], cwd)
    finally:
        docker("rm", "-f", "bbc-gpu", check=False)


def folders_labels(folders: dict[str, Path]) -> list[str]:
    return list(json.loads((folders["sequence_classification"] / "adapt.json").read_text())["labels"])
