"""The Kubernetes manifests in deploy/k8s/ against the code they deploy, with no cluster and no Docker.

Every YAML document is read with PyYAML; ports, probes, `ADAPT_*` variables, the model mount, security settings and
GPU requests are checked against what the code does: the Dockerfiles (EXPOSE, ENV, USER, CMD, HEALTHCHECK), the image
tags of `scripts/docker_build.sh`, `adapt serve` (the images' CMD, and the reader of their variables), and the routes
and API-key guard of the app that `create_app` builds for a saved folder (without loading its weights).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
GPU = "nvidia.com/gpu"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _workloads() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in MANIFESTS for d in _documents(p) if d.get("kind") in ("Deployment", "InferenceService")]


WORKLOADS = _workloads()
WORKLOAD_IDS = [f"{p.name}:{d['kind']}" for p, d in WORKLOADS]
workloads = pytest.mark.parametrize(("path", "doc"), WORKLOADS, ids=WORKLOAD_IDS)


def _flavour(path: Path) -> str:
    """`cpu` or `cuda`: the image a manifest deploys, from its name (kserve-cpu.yaml, deployment-cuda.yaml)."""
    return path.stem.rsplit("-", 1)[-1]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's pod template spec, or a KServe predictor (a PodSpec inlined in the predictor)."""
    return doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]["predictor"]


# ---------------------------------------------------------------------------------------------------
# what the code says: the Dockerfiles, the build script's tags, `adapt serve`, ServerConfig
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Image:
    """What a runtime Dockerfile declares that a manifest must agree with."""

    tag: str
    expose: list[int]
    env: dict[str, str]
    user: str
    cmd: list[str]
    start_period_s: float


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    lines, cur = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cur = cur + " " + line.removesuffix("\\")
        if not line.endswith("\\"):
            lines.append(cur.strip())
            cur = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def _image(flavour: str) -> Image:
    ins = _instructions(ROOT / "docker" / f"Dockerfile.{flavour}")
    env = dict(tok.partition("=")[::2] for name, args in ins if name == "ENV" for tok in shlex.split(args))
    health = [a for n, a in ins if n == "HEALTHCHECK"][-1]
    period = re.search(r"--start-period=(\d+)s", health)
    script = (ROOT / "scripts" / "docker_build.sh").read_text(encoding="utf-8")
    repo = re.search(r'-t "([\w./-]+):\$kind"', script)
    assert repo, "scripts/docker_build.sh no longer tags images as NAME:$kind; update this test"
    return Image(
        tag=f"{repo.group(1)}:{flavour}",
        expose=[int(p.split("/")[0]) for n, a in ins if n == "EXPOSE" for p in a.split()],
        env=env,
        user=[a for n, a in ins if n == "USER"][-1],
        cmd=json.loads([a for n, a in ins if n == "CMD"][-1]),
        start_period_s=float(period.group(1)) if period else 0.0,
    )


def _serve_options() -> dict[str, Any]:
    """`adapt serve`'s parameters: name -> typer's OptionInfo/ArgumentInfo (`.envvar`, `.default`)."""
    from adapt.cli import serve

    return {name: p.default for name, p in inspect.signature(serve).parameters.items()}


@functools.cache
def _serve_envvars() -> frozenset[str]:
    out: set[str] = set()
    for info in _serve_options().values():
        envvar = getattr(info, "envvar", None)
        out.update([envvar] if isinstance(envvar, str) else envvar or [])
    return frozenset(out)


def _config_envvars() -> dict[str, str]:
    """`ADAPT_<NAME>` -> ServerConfig field, as `ServerConfig.from_env` maps them (`ADAPT_MODEL` is `model_dir`)."""
    from adapt.serving.app import ServerConfig

    fields = {f"ADAPT_{f.name.upper()}": f.name for f in dataclasses.fields(ServerConfig) if f.name != "model_dir"}
    return {"ADAPT_MODEL": "model_dir", **fields}


@functools.cache
def _named_in_source() -> frozenset[str]:
    """Every string constant in adapt/ that is exactly a variable name `ADAPT_...` (what `os.environ.get` is given)."""
    names: set[str] = set()
    for path in (ROOT / "adapt").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"ADAPT_[A-Z0-9_]+", node.value):
                names.add(node.value)
    return frozenset(names)


# ---------------------------------------------------------------------------------------------------
# what a manifest says, resolved as the kubelet and the image would
# ---------------------------------------------------------------------------------------------------
def _server(doc: dict[str, Any], image: Image) -> dict[str, Any]:
    """The one container running the flavour's adapt image (its tag exactly: no other registry, no other tag)."""
    containers = _pod(doc)["containers"]
    found = [c for c in containers if c.get("image") == image.tag]
    assert len(found) == 1, f"expected one container with image {image.tag!r}, got {[c.get('image') for c in containers]}"
    return found[0]


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    """The container's variables; None for those taken from a Secret or a field (`valueFrom`)."""
    return {e["name"]: (str(e["value"]) if "value" in e else None) for e in container.get("env") or []}


def _effective(container: dict[str, Any], image: Image, name: str) -> str | None:
    """A variable as the server sees it: the manifest's value over the image's ENV."""
    return _env(container).get(name, image.env.get(name))


def _command(container: dict[str, Any], image: Image) -> list[str]:
    """What runs: `command` replaces the image's ENTRYPOINT (none here) and drops its CMD; `args` replaces the CMD."""
    command = list(container.get("command") or [])
    args = container.get("args")
    return command + [str(a) for a in args] if args is not None else command or image.cmd


def _flag(command: list[str], flag: str) -> str | None:
    for i, tok in enumerate(command):
        if tok == flag and i + 1 < len(command):
            return command[i + 1]
        if tok.startswith(flag + "="):
            return tok.split("=", 1)[1]
    return None


def _served_port(container: dict[str, Any], image: Image) -> int:
    command = _command(container, image)
    port = _flag(command, "--port") or _effective(container, image, "ADAPT_PORT") or _serve_options()["port"].default
    return int(port)


def _resolve_port(port: int | str, container: dict[str, Any]) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    assert port in named, f"port {port!r} names none of the container's ports {sorted(n for n in named if n)}"
    return named[port]


def _route_pattern(template: str) -> re.Pattern[str]:
    """A route template as a regex: `{name}` matches one path segment, `{name:path}` the rest."""
    parts = re.split(r"(\{[^}]+\})", template)
    body = "".join((".+" if p.endswith(":path}") else "[^/]+") if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body)


# ---------------------------------------------------------------------------------------------------
# the app the image would serve, built on a real saved folder (create_app without preload loads no weights)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def route_templates(tiny_cls_dir: Path) -> list[str]:
    from adapt.serving.app import ServerConfig, create_app

    return _templates(create_app(ServerConfig(str(tiny_cls_dir))).routes)


def _templates(routes: list[Any], prefix: str = "") -> list[str]:
    """Every route's path template, a mounted sub-app's routes under its mount path included."""
    out = []
    for route in routes:
        path = prefix + getattr(route, "path", "")
        out.append(path)
        if not hasattr(route, "endpoint"):  # a Mount: its own routes (none for static files)
            out += _templates(list(getattr(route, "routes", None) or []), path)
    return out


def _app_from_manifest(container: dict[str, Any], folder: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> Any:
    """The app `ServerConfig.from_env` configures from the manifest's literal ADAPT_* values, on `folder`, with `key`."""
    from adapt.serving.app import ServerConfig, create_app

    for name in [n for n in os.environ if n.startswith("ADAPT_")]:
        monkeypatch.delenv(name)
    for name, value in _env(container).items():
        if name.startswith("ADAPT_") and value is not None:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("ADAPT_MODEL", str(folder))
    monkeypatch.setenv("ADAPT_API_KEY", key)  # the manifests take it from a Secret: set one, as production would
    return create_app(ServerConfig.from_env())


# ---------------------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------------------
def test_every_manifest_is_there_and_well_formed():
    assert {p.name for p in MANIFESTS} >= {"kserve-cpu.yaml", "kserve-cuda.yaml", "deployment-cpu.yaml", "deployment-cuda.yaml"}
    for path in MANIFESTS:
        docs = _documents(path)
        assert docs, f"{path.name} holds no document"
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys() and doc["metadata"].get("name"), f"{path.name}: {doc}"
        kinds = {d["kind"] for d in docs}
        wanted = {"InferenceService"} if path.stem.startswith("kserve") else {"Deployment", "Service"}
        assert wanted <= kinds, f"{path.name} holds {sorted(kinds)}, not {sorted(wanted)}"
        for doc in docs:
            if doc["kind"] == "InferenceService":
                assert doc["apiVersion"] == "serving.kserve.io/v1beta1"


@workloads
def test_ports_are_the_images_port(path, doc):
    """Every container port is the port the Dockerfile EXPOSEs and the one the image's command serves on."""
    image = _image(_flavour(path))
    container = _server(doc, image)
    command = _command(container, image)
    assert command[:2] == ["adapt", "serve"], f"{path.name} runs {command}, not the image's `adapt serve`"
    assert len(image.expose) == 1, f"Dockerfile.{_flavour(path)} EXPOSEs {image.expose}"
    served = _served_port(container, image)
    assert served == image.expose[0], f"the server listens on {served}, the image EXPOSEs {image.expose[0]}"
    ports = [p["containerPort"] for p in container.get("ports") or []]
    assert ports and set(ports) == {served}, f"{path.name} declares container ports {ports}; the server listens on {served}"
    host = _flag(command, "--host") or _effective(container, image, "ADAPT_HOST") or _serve_options()["host"].default
    assert host in ("0.0.0.0", "::"), f"the server binds {host}: the kubelet and the Service cannot reach it"


@pytest.mark.parametrize("path", [p for p in MANIFESTS if p.stem.startswith("deployment")], ids=lambda p: p.name)
def test_services_reach_the_pods(path):
    docs = _documents(path)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = _server(deployment, _image(_flavour(path)))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in [d for d in docs if d["kind"] == "Service"]:
        assert service["spec"]["selector"].items() <= labels.items(), f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            target = _resolve_port(port.get("targetPort", port["port"]), container)
            assert target == _served_port(container, _image(_flavour(path)))


@workloads
def test_probe_paths_are_routes_of_the_app(path, doc, route_templates):
    """Every probe's `httpGet.path` is a route of the real app (templates such as /v2/models/{name}/ready match), on
    the served port. Fails until the app has the Open Inference Protocol routes the manifests probe."""
    image = _image(_flavour(path))
    container = _server(doc, image)
    assert {"livenessProbe", "readinessProbe"} <= container.keys(), f"{path.name}: liveness and readiness probes wanted"
    patterns = [_route_pattern(t) for t in route_templates]
    for probe in [p for p in PROBES if p in container]:
        get = container[probe]["httpGet"]
        assert any(p.fullmatch(get["path"]) for p in patterns), (
            f"{path.name} {probe} probes {get['path']}, which is no route of the app; its routes: {sorted(route_templates)}"
        )
        assert _resolve_port(get["port"], container) == _served_port(container, image), f"{probe} probes another port"


@workloads
def test_probe_routes_need_no_api_key(path, doc, tiny_cls_dir, monkeypatch):
    """With an API key set, the probe routes still answer without one: the kubelet sends none, so a guarded probe
    would fail and the pod would never turn ready (readiness) or be restarted forever (liveness)."""
    from fastapi.testclient import TestClient

    container = _server(doc, _image(_flavour(path)))
    app = _app_from_manifest(container, tiny_cls_dir, monkeypatch, key="k8s-test-key")
    client = TestClient(app)  # no lifespan: the model is not loaded, the guards still run
    assert client.get("/metadata").status_code == 401, "the API-key guard is not on: this test proves nothing"
    for probe in [p for p in PROBES if p in container]:
        route = container[probe]["httpGet"]["path"]
        status = client.get(route).status_code
        assert status != 401, (
            f"{path.name} {probe} {route} answers 401 without an API key once ADAPT_API_KEY is set: the kubelet sends "
            "none. Open it in adapt/serving/app.py (_add_middleware: ApiKeyGuard's open_paths, as /health is), or, "
            "for a readiness route, leave ADAPT_PUBLIC_READY true in the manifest"
        )


@workloads
def test_adapt_variables_are_read_by_the_server(path, doc):
    """Every ADAPT_* variable set is read by what the image runs: `adapt serve` (an option's envvar), or elsewhere in
    adapt/ by name. A ServerConfig field alone is not enough: `adapt serve` builds its config from its own options."""
    container = _server(doc, _image(_flavour(path)))
    serve_reads, config_vars, named = _serve_envvars(), _config_envvars(), _named_in_source()
    problems = []
    for name in [n for n in _env(container) if n.startswith("ADAPT_")]:
        if name in serve_reads or name in named:
            continue
        if name in config_vars:
            problems.append(f"{name}: ServerConfig.{config_vars[name]} exists, but `adapt serve` (the image's CMD) has "
                            f"no option with envvar={name!r}, so with one worker the variable is ignored")
        else:
            problems.append(f"{name}: no ServerConfig field, no `adapt serve` option, and nothing in adapt/ reads it")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@workloads
def test_model_is_mounted_read_only(path, doc):
    """ADAPT_MODEL lies under a volume mount that is read-only (and a PVC volume is claimed read-only too)."""
    image = _image(_flavour(path))
    container = _server(doc, image)
    model = _effective(container, image, "ADAPT_MODEL")
    assert model, f"{path.name} sets no ADAPT_MODEL"
    mounts = [m for m in container.get("volumeMounts") or []
              if Path(model) == Path(m["mountPath"]) or Path(m["mountPath"]) in Path(model).parents]
    assert mounts, f"ADAPT_MODEL={model} is under no volume mount of {path.name}"
    mount = max(mounts, key=lambda m: len(Path(m["mountPath"]).parts))
    assert mount.get("readOnly") is True, f"{path.name} mounts the model volume {mount['name']!r} writable"
    volume = next(v for v in _pod(doc).get("volumes") or [] if v["name"] == mount["name"])
    if "persistentVolumeClaim" in volume:
        assert volume["persistentVolumeClaim"].get("readOnly") is True, f"{path.name} claims {mount['name']!r} writable"


@workloads
def test_gpus_only_in_the_cuda_manifests(path, doc):
    flavour = _flavour(path)
    container = _server(doc, _image(flavour))  # the flavour's image: adapt:cuda in a cuda manifest
    resources = container.get("resources") or {}
    assert resources.get("requests") and resources.get("limits"), f"{path.name} sets no requests and limits"
    device = _env(container).get("ADAPT_DEVICE")
    if flavour == "cuda":
        assert int(resources["limits"].get(GPU, 0)) >= 1, f"{path.name} requests no {GPU}"
        assert device in (None, "") or device.startswith("cuda"), f"{path.name} sets ADAPT_DEVICE={device}"
    else:
        for c in _pod(doc)["containers"]:
            gpus = [k for k in ("requests", "limits") if GPU in (c.get("resources") or {}).get(k, {})]
            assert not gpus, f"{path.name} is a CPU manifest but its container {c['name']!r} asks for a GPU ({gpus})"
        assert device in (None, "", "cpu"), f"{path.name} sets ADAPT_DEVICE={device}"


@workloads
def test_runs_unprivileged(path, doc):
    """Non-root as the image's user, no privilege escalation, no capabilities, and a read-only root file system with a
    writable /tmp (the image needs one, docker/README.md)."""
    image = _image(_flavour(path))
    container, pod = _server(doc, image), _pod(doc)
    sc, psc = container.get("securityContext") or {}, pod.get("securityContext") or {}
    assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{path.name}: runAsNonRoot is not true"
    assert str(sc.get("runAsUser", psc.get("runAsUser"))) == image.user, f"{path.name}: not the image's user {image.user}"
    assert sc.get("allowPrivilegeEscalation") is False, f"{path.name}: allowPrivilegeEscalation is not false"
    assert "ALL" in (sc.get("capabilities") or {}).get("drop", []), f"{path.name}: capabilities not dropped (drop: [ALL])"
    assert sc.get("readOnlyRootFilesystem") is True, f"{path.name}: the root file system is writable"
    tmp = [m for m in container.get("volumeMounts") or [] if m["mountPath"] == "/tmp" and not m.get("readOnly")]
    assert tmp and any("emptyDir" in v for v in pod.get("volumes") or [] if v["name"] == tmp[0]["name"]), "no writable /tmp"


@workloads
def test_startup_and_shutdown_leave_time(path, doc):
    """The startup probe waits at least the image's own HEALTHCHECK start period for the model to load, and the grace
    period outlasts the server's request timeout, so requests in flight finish."""
    from adapt.serving.app import ServerConfig

    image = _image(_flavour(path))
    container, pod = _server(doc, image), _pod(doc)
    startup = container.get("startupProbe")
    assert startup, f"{path.name} has no startupProbe: a slow model load would trip the liveness probe"
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= image.start_period_s, f"startup allows {budget} s, the image's HEALTHCHECK {image.start_period_s} s"
    timeout = float(_effective(container, image, "ADAPT_REQUEST_TIMEOUT") or ServerConfig.request_timeout)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    assert grace > timeout, f"{path.name}: terminationGracePeriodSeconds={grace} is not over request_timeout={timeout:g}"


@pytest.mark.parametrize("path", [p for p in MANIFESTS if p.stem.startswith("kserve")], ids=lambda p: p.name)
def test_kserve_predictor_declares_the_v2_protocol(path):
    """A custom KServe predictor is the container named kserve-container; it declares its protocol with the env
    PROTOCOL (KServe's custom-container counterpart of `protocolVersion`), which KServe accepts as v1 or v2."""
    for doc in [d for d in _documents(path) if d["kind"] == "InferenceService"]:
        container = _server(doc, _image(_flavour(path)))
        assert container["name"] == "kserve-container", f"{path.name}: KServe looks for the container 'kserve-container'"
        assert _env(container).get("PROTOCOL") == "v2", f"{path.name}: set PROTOCOL=v2 on the predictor container"
