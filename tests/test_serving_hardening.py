"""The server under hostile traffic, redeploys and threads: each case was a failure found by probing `adapt serve`.

Servers run in-process on loopback (real uvicorn, real HTTP) over the tiny BBC classifier, so the file is fast.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from adapt import EasySequenceClassifier

from .contract_utils import server
from .serving_utils import http

GOOD = [f"Shares fell sharply on day {i} after the warning" for i in range(20)]


class _Poisoned:
    """The served predictor, made to fail (like a tokenizer panic) on any text containing POISON."""

    def __init__(self, inner: Any, delay: float = 0.0) -> None:
        self.inner, self.delay = inner, delay
        self.options, self.tokenizer = inner.options, inner.tokenizer

    def predict(self, texts: Any, *args: Any, **kwargs: Any) -> Any:
        if self.delay:
            time.sleep(self.delay)
        if any("POISON" in t for t in texts):
            raise RuntimeError("tokenizer panicked")
        return self.inner.predict(texts, *args, **kwargs)


def _poison(delay: float = 0.0) -> Any:
    def hook(app: Any) -> None:
        served = app.state.models.get(None)
        served.predictor = _Poisoned(served.predictor, delay)

    return hook


def test_one_bad_request_fails_alone_and_the_others_get_their_solo_answers(tiny_cls_dir: Path) -> None:
    solo = [EasySequenceClassifier().tag_text(t, tiny_cls_dir) for t in GOOD]
    with server(tiny_cls_dir, hook=_poison(), max_wait_ms=200) as base:
        def send(text: str) -> tuple[int, Any]:
            return http("POST", f"{base}/predict", {"texts": [text]})

        with ThreadPoolExecutor(21) as pool:
            results = list(pool.map(send, [*GOOD[:10], "POISON here", *GOOD[10:]]))
    bad = results.pop(10)
    assert bad[0] == 500 and "request_id" in bad[1]
    assert [status for status, _ in results] == [200] * 20
    for (_, got), want in zip(results, solo, strict=True):
        assert got["predictions"] == want["predictions"]
        assert got["probs"][0] == pytest.approx(want["probs"][0], abs=1e-5)


def _other_model(tiny_cls_dir: Path, tmp_path: Path) -> Path:
    """The same classifier with its classifier bias shifted: another model of the same shape, saved by adapt."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from adapt.modelio import read_manifest, save_hf_folder

    model = AutoModelForSequenceClassification.from_pretrained(tiny_cls_dir)
    with torch.no_grad():
        model.classifier.bias += torch.tensor([5.0, 0, 0, 0, 0])
    manifest = {k: v for k, v in read_manifest(tiny_cls_dir).items() if k not in ("files", "created", "versions")}
    return save_hf_folder(model, AutoTokenizer.from_pretrained(tiny_cls_dir), tmp_path / "other", manifest)


def test_overwriting_the_weights_never_changes_or_kills_a_running_server(tiny_cls_dir: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    shutil.copytree(tiny_cls_dir, served)
    other = _other_model(tiny_cls_dir, tmp_path)
    weights = served / "model.safetensors"
    with server(served) as base:
        before = http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1]
        subprocess.run(["cp", "-f", str(other / "model.safetensors"), str(weights)], check=True)  # same inode, rewritten
        assert http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1] == before
        with open(weights, "r+b") as f:  # rewrite bytes in place, then truncate
            f.seek(len(weights.read_bytes()) - 20)
            f.write(b"\x00" * 20)
        assert http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1] == before
        weights.write_bytes(b"")
        assert http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1] == before
        status, body = http("POST", f"{base}/reload")
        assert status == 409 and "still serving the previous model" in body["detail"]  # checksums do not verify
        assert http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1] == before
        for f in other.iterdir():  # a proper redeploy: the whole folder, manifest included
            shutil.copy2(f, served / f.name)
        status, body = http("POST", f"{base}/reload")
        assert status == 200 and body["reloaded"]
        after = http("POST", f"{base}/predict", {"texts": GOOD[:3]})[1]
    assert after == EasySequenceClassifier().tag_text(GOOD[:3], other) and after != before


@pytest.mark.parametrize("n_folders", [1, 2])
def test_concurrent_first_use_of_an_easy_module_loads_once_and_answers_right(
    tiny_cls_dir: Path, tmp_path: Path, n_folders: int
) -> None:
    folders = [tiny_cls_dir] if n_folders == 1 else [tiny_cls_dir, _other_model(tiny_cls_dir, tmp_path)]
    want = {str(f): EasySequenceClassifier().tag_text(GOOD[:2], f) for f in folders}
    clf = EasySequenceClassifier()  # a cold cache
    loads = []
    real_load = clf._load
    clf._load = lambda path: (loads.append(path), real_load(path))[1]  # type: ignore[method-assign]

    def call(i: int) -> Any:
        folder = folders[i % n_folders]
        return str(folder), clf.tag_text(GOOD[:2], folder)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(48)))
    assert len(loads) == n_folders
    assert all(got == want[folder] for folder, got in results)
    assert EasySequenceClassifier().tag_text("fresh", tiny_cls_dir)["predictions"]  # later loads still work


def test_work_is_bounded_per_request_in_the_queue_and_in_time(tiny_cls_dir: Path) -> None:
    with server(tiny_cls_dir, max_tokens=50) as base:
        status, body = http("POST", f"{base}/predict", {"texts": ["word " * 60]})
        assert status == 413 and "max_tokens=50" in body["detail"]
    with server(tiny_cls_dir, hook=_poison(delay=0.5), max_queued_texts=2, request_timeout=30) as base:
        def send(n: int) -> tuple[int, Any]:
            return http("POST", f"{base}/predict", {"texts": GOOD[:n]})

        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(send, 2)
            time.sleep(0.1)
            status, body = pool.submit(send, 2).result()
            assert first.result()[0] == 200
        assert status == 503 and "busy" in body["detail"]
    with server(tiny_cls_dir, hook=_poison(delay=1.0), request_timeout=0.2) as base:
        status, body = http("POST", f"{base}/predict", {"texts": GOOD[:1]})
        assert status == 504 and "request_timeout" in body["detail"]


def test_a_short_request_does_not_wait_for_a_huge_one(tiny_cls_dir: Path) -> None:
    huge = {"texts": [("The markets moved. " * 1000)[:19_950]] * 20, "parameters": {"long_text": "window"}}
    done: dict[str, float] = {}
    with server(tiny_cls_dir, max_tokens=500_000) as base:  # within every limit: ~100k tokens
        def send(name: str, body: Any) -> None:
            status, got = http("POST", f"{base}/predict", body)
            assert status == 200, got
            done[name] = time.monotonic()

        big = threading.Thread(target=send, args=("huge", huge))
        big.start()
        time.sleep(0.3)
        send("short", {"texts": ["Shares fell"]})
        big.join()
    assert done["short"] < done["huge"], "the short request waited for the whole huge one"


def _raw(port: int, data: bytes, pause: float, chunks: int) -> bool:
    """Trickle `data` to the server; True when the server closed the connection before it was all sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        step = max(1, len(data) // chunks)
        for i in range(0, len(data), step):
            try:
                sock.sendall(data[i : i + step])
            except OSError:
                return True
            time.sleep(pause)
            sock.settimeout(0.01)
            try:
                if sock.recv(4096) == b"":
                    return True
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                return True
    return False


def test_slow_clients_are_cut_off(tiny_cls_dir: Path) -> None:
    with server(tiny_cls_dir, header_timeout=0.5, body_timeout=0.5) as base:
        port = int(base.rsplit(":", 1)[1])
        headers = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n"
        assert _raw(port, headers, pause=0.2, chunks=20), "a client trickling headers is never closed"
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(headers + b'{"texts"')
            answer = sock.recv(4096)
        assert b" 408 " in answer.split(b"\r\n", 1)[0] and time.monotonic() - start < 5
        assert http("POST", f"{base}/predict", {"texts": ["still serving"]})[0] == 200


def test_api_keys_protect_everything_but_health(tiny_cls_dir: Path) -> None:
    with server(tiny_cls_dir, api_key="first-key, second-key") as base:
        body = {"texts": ["Shares fell"]}
        assert http("POST", f"{base}/predict", body)[0] == 401
        assert http("POST", f"{base}/predict", body, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert http("POST", f"{base}/predict", body, headers={"Authorization": "Bearer first-key"})[0] == 200
        assert http("POST", f"{base}/predict", body, headers={"X-API-Key": "second-key"})[0] == 200
        for path, status in (("/health", 200), ("/ready", 200), ("/metadata", 401), ("/metrics", 401), ("/docs", 401),
                             ("/openapi.json", 401)):
            assert http("GET", f"{base}{path}")[0] == status, path
        assert http("POST", f"{base}/reload")[0] == 401
    with server(tiny_cls_dir, api_key="k", public_ready=False, public_metrics=True) as base:
        assert http("GET", f"{base}/ready")[0] == 401 and http("GET", f"{base}/metrics")[0] == 200


def test_metadata_shows_no_paths_and_request_ids_are_bounded(tiny_cls_dir: Path) -> None:
    with server(tiny_cls_dir) as base:
        meta = http("GET", f"{base}/metadata")[1]
        assert meta["model_dir"] == tiny_cls_dir.name and "/" not in json.dumps(meta["base_model"])
        import urllib.request

        for given, echoed in (("abc-123", True), ("x" * 8000, False), ("bad id\u00e9", False)):
            req = urllib.request.Request(f"{base}/health", headers={"X-Request-Id": given.encode("latin-1", "ignore").decode("latin-1")})
            with urllib.request.urlopen(req, timeout=10) as r:
                rid = r.headers["x-request-id"]
            assert (rid == given) == echoed and len(rid) <= 128


def test_custom_code_in_a_folder_never_runs_even_if_stdin_says_yes(tiny_cls_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    shutil.copytree(tiny_cls_dir, folder)
    marker = tmp_path / "ran"
    (folder / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nfrom transformers import BertConfig as EvilConfig\n")
    (folder / "adapt.json").unlink()
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evil-bert", auto_map={"AutoConfig": "configuration_evil.EvilConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    out = subprocess.run([sys.executable, "-m", "adapt.cli", "predict", str(folder), "x"], input="y\ny\n", text=True,
                         capture_output=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "adapt: error:" in out.stderr and not marker.exists()


def test_sighup_reloads_a_redeployed_folder(tiny_cls_dir: Path, tmp_path: Path) -> None:
    import os
    import signal

    from .serving_utils import free_port, stop, wait_ready

    served = tmp_path / "served"
    shutil.copytree(tiny_cls_dir, served)
    other = _other_model(tiny_cls_dir, tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "adapt.cli", "serve", str(served), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        before = http("POST", f"{base}/predict", {"texts": GOOD[:2]})[1]
        for f in other.iterdir():
            shutil.copy2(f, served / f.name)
        proc.send_signal(signal.SIGHUP)
        want = EasySequenceClassifier().tag_text(GOOD[:2], other)
        deadline = time.monotonic() + 60
        while http("POST", f"{base}/predict", {"texts": GOOD[:2]})[1] != want and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http("POST", f"{base}/predict", {"texts": GOOD[:2]})[1] == want != before
    finally:
        assert stop(proc) == 0


def test_the_header_deadline_reaches_worker_processes_by_name(monkeypatch) -> None:
    """`adapt serve --workers N` hands uvicorn the module-level protocol class (spawned workers cannot unpickle a
    class made inside a function), and the workers read the deadline from the environment."""
    import pickle

    from adapt.serving.guards import HeaderTimeoutProtocol, header_timeout_protocol

    cls = HeaderTimeoutProtocol
    assert pickle.loads(pickle.dumps(cls)) is cls
    monkeypatch.setenv("ADAPT_HEADER_TIMEOUT", "2.5")
    assert cls.__new__(cls)._limit() == 2.5
    in_process = header_timeout_protocol(0.5)
    assert in_process.__new__(in_process)._limit() == 0.5


def test_the_docs_pages_work_air_gapped(tiny_cls_dir: Path) -> None:
    """/docs and /redoc load Swagger UI and ReDoc from the server itself, not from a CDN."""
    from adapt.serving.app import DOCS_ASSETS

    with server(tiny_cls_dir) as base:
        for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            status, html = http("GET", f"{base}{page}")
            assert status == 200 and f"{DOCS_ASSETS}/{asset}" in html, html
            assert "cdn.jsdelivr" not in html and "unpkg.com" not in html, html
            status, js = http("GET", f"{base}{DOCS_ASSETS}/{asset}")
            assert status == 200 and len(js) > 100_000


def test_keys_limits_and_request_ids_apply_to_every_protocol(tiny_cls_dir: Path, model_path: str) -> None:
    """The API key, the size limits and the request ids of /predict hold on the v2, Hugging Face and OpenAI routes;
    the probes stay open."""
    name = tiny_cls_dir.resolve().name
    one = {"v2": (f"/v2/models/{name}/infer", {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                                             "data": ["Shares fell"]}]}),
           "hf": ("/", {"inputs": "Shares fell"})}
    many = {"v2": {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [5], "data": ["Shares fell"] * 5}]},
            "hf": {"inputs": ["Shares fell"] * 5}}
    key = {"X-API-Key": "k", "X-Request-Id": "my-id"}
    with server(tiny_cls_dir, api_key="k", max_texts=4) as base:
        for protocol, (path, body) in one.items():
            assert http("POST", f"{base}{path}", body)[0] == 401, protocol
            status, answer = http("POST", f"{base}{path}", body, headers=key)
            assert status == 200, (protocol, answer)
            status, answer = http("POST", f"{base}{path}", many[protocol], headers=key)
            assert status == 413 and "max_texts=4" in json.dumps(answer), (protocol, answer)
        for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready"):
            assert http("GET", f"{base}{path}")[0] == 200, path
        for path in (f"/v2/models/{name}", "/v2/models/ready", f"/v2/models/{name}/versions/ready", "/v2/models/x/y/ready"):
            assert http("GET", f"{base}{path}")[0] == 401, path
        assert http("GET", f"{base}/v2/models/{name}/versions/1/ready")[0] == 200
        status, answer = http("GET", f"{base}/v2/models/nope/ready")
        assert status == 404 and name not in json.dumps(answer)  # an open probe does not list the served models
        import urllib.request

        req = urllib.request.Request(f"{base}/", data=json.dumps(one["hf"][1]).encode(), headers={**key, "Content-Type":
                                                                                                   "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.headers["x-request-id"] == "my-id"
    with server(Path(model_path), api_key="k", max_texts=4) as base:
        body = {"model": Path(model_path).resolve().name, "input": ["Shares fell"]}
        assert http("POST", f"{base}/v1/embeddings", body)[0] == 401
        assert http("POST", f"{base}/v1/embeddings", body, headers=key)[0] == 200
        status, answer = http("POST", f"{base}/v1/embeddings", {**body, "input": ["a"] * 5}, headers=key)
        assert status == 413 and "max_texts=4" in answer["error"]["message"]
