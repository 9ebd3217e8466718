"""The REST server over real HTTP on loopback: predictions, micro-batching, limits, errors, shutdown."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapt import EasySequenceClassifier

from .serving_utils import free_port, http, stop, wait_ready

TEXTS = ["Shares in the bank fell sharply after profits dropped", "The striker scored twice as the team won the match",
         "MPs voted on the budget bill late on Tuesday", "The new phone has a faster chip and a better camera"]


@pytest.fixture(scope="module")
def server(saved_dir: Path):
    port = free_port()
    cmd = [sys.executable, "-m", "adapt.cli", "serve", str(saved_dir), "--port", str(port), "--max-batch-size", "16",
           "--max-wait-ms", "30", "--max-texts", "8", "--max-chars", "2000", "--max-body-bytes", "20000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, proc
    finally:
        stop(proc)


def test_health_ready_metadata_docs(server, saved_dir):
    base, _ = server
    assert http("GET", f"{base}/health") == (200, {"status": "ok"})
    assert http("GET", f"{base}/ready")[1] == {"ready": True}
    status, meta = http("GET", f"{base}/metadata")
    assert status == 200 and meta["task"] == "sequence_classification"
    assert meta["labels"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert {"adapt", "transformers", "torch"} <= set(meta["versions"])
    status, spec = http("GET", f"{base}/openapi.json")
    assert status == 200 and "/predict" in spec["paths"]
    assert http("GET", f"{base}/docs")[0] == 200


def test_predictions_match_easy(server, saved_dir):
    base, _ = server
    for level in ("low", "medium", "high"):
        status, body = http("POST", f"{base}/predict", {"texts": TEXTS, "detail_level": level})
        expected = EasySequenceClassifier().tag_text(TEXTS, saved_dir, detail_level=level)
        assert status == 200 and body["predictions"] == expected["predictions"] and set(body) == set(expected)
        assert all(abs(a - b) < 1e-5 for pa, pb in zip(body["probs"], expected["probs"], strict=True) for a, b in zip(pa, pb, strict=True))
    pair = {"texts": [{"text": TEXTS[0], "text_pair": "Markets reacted."}], "parameters": {"long_text": "window"}}
    status, body = http("POST", f"{base}/predict", pair)
    assert status == 200 and body["sentences"] == [[TEXTS[0], "Markets reacted."]]


def _batched_calls(metrics_text: str) -> tuple[float, float]:
    vals = {"le1": 0.0, "count": 0.0}  # summed over the model names (one here)
    for line in metrics_text.splitlines():
        if line.startswith("adapt_model_batch_size_bucket{") and 'le="1.0"' in line:
            vals["le1"] += float(line.split()[-1])
        elif line.startswith("adapt_model_batch_size_count"):
            vals["count"] += float(line.split()[-1])
    return vals["count"], vals["le1"]


def test_concurrent_clients_are_batched(server, saved_dir):
    base, _ = server
    expected = EasySequenceClassifier().tag_text(TEXTS, saved_dir)["predictions"]
    count0, single0 = _batched_calls(http("GET", f"{base}/metrics")[1])

    def client(i: int) -> bool:
        status, body = http("POST", f"{base}/predict", {"texts": [TEXTS[i % 4]]}, timeout=120)
        return status == 200 and body["predictions"] == [expected[i % 4]]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(client, range(20), timeout=180))
    assert all(results)
    count, single = _batched_calls(http("GET", f"{base}/metrics")[1])
    calls, single_calls = count - count0, single - single0
    assert 0 < calls < 20 and calls - single_calls > 0  # model batches larger than 1 happened
    metrics = http("GET", f"{base}/metrics")[1]
    name = saved_dir.resolve().name  # a folder is served under its name
    assert f'adapt_requests_total{{model="{name}",path="/predict",status="200"}}' in metrics
    assert f'adapt_model_batch_size_count{{model="{name}"}}' in metrics and "adapt_request_latency_seconds" in metrics


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"texts": "a string"}', b'{"texts": []}', b'{"texts": [""]}', b'{"texts": [5]}',
     b'{"texts": ["ok"], "detail_level": "hihg"}', b'{"texts": ["ok"], "parameters": {"bogus": 1}}',
     b'{"texts": [{"question": "q"}]}', b'{"texts": ["ok"], "parameters": {"max_length": -1}}',
     b'{"texts": ["ok"], "parameters": {"threshold": "high"}}'],
)
def test_bad_bodies_give_422(server, raw):
    base, _ = server
    status, body = http("POST", f"{base}/predict", raw=raw)
    assert status == 422, body


def test_oversized_requests_give_413_and_server_keeps_serving(server):
    base, _ = server
    too_many = http("POST", f"{base}/predict", {"texts": ["a b"] * 9})
    too_long = http("POST", f"{base}/predict", {"texts": ["word " * 500]})
    too_big = http("POST", f"{base}/predict", raw=b'{"texts": ["' + b"x" * 30000 + b'"]}')
    assert [too_many[0], too_long[0], too_big[0]] == [413, 413, 413]
    assert "max_texts" in too_many[1]["detail"] and "max_chars" in too_long[1]["detail"]
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
    chunks = iter([b'{"texts": ["', b"y" * 15000, b"y" * 15000, b'"]}'])  # chunked: no Content-Length
    conn.request("POST", "/predict", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()
    assert http("POST", f"{base}/predict", {"texts": TEXTS[:1]})[0] == 200
    metrics = http("GET", f"{base}/metrics")[1]
    assert 'status="413"' in metrics
    http("GET", f"{base}/no/such/path")
    assert "/no/such/path" not in http("GET", f"{base}/metrics")[1]  # metric labels stay bounded


def test_sigterm_shuts_down_cleanly(saved_dir):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "adapt.cli", "serve", str(saved_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    # a graceful stop (uvicorn finishes in-flight work and shuts the app down) exits 0, as docker stop expects
    assert stop(proc, timeout=30) == 0
    log = proc.stdout.read()
    assert "Waiting for application shutdown" in log and "Application shutdown complete" in log


def test_internal_error_gives_500_with_request_id(saved_dir, monkeypatch):
    from fastapi.testclient import TestClient

    from adapt.serving.app import ServerConfig, create_app

    app = create_app(ServerConfig(str(saved_dir)))
    with TestClient(app) as client:

        def boom(*a, **k):
            raise RuntimeError("kaboom")

        monkeypatch.setattr(app.state.models.get(None).predictor, "predict", boom)
        r = client.post("/predict", json={"texts": ["hello"]})
        assert r.status_code == 500 and r.json()["request_id"] == r.headers["x-request-id"]
        monkeypatch.undo()
        assert client.post("/predict", json={"texts": ["hello"]}).status_code == 200


def test_a_start_verifies_the_folder_once_and_metadata_reads_no_file(saved_dir, monkeypatch):
    """The folder's checksums are verified once when the app starts (a reload verifies again); `/metadata` is served
    from what was loaded, not read from `adapt.json` per call."""
    from fastapi.testclient import TestClient

    from adapt import modelio
    from adapt.serving.app import ServerConfig, create_app

    verified: list[str] = []
    real = modelio._verify_checksums
    monkeypatch.setattr(modelio, "_verify_checksums", lambda d, manifest: verified.append(str(d)) or real(d, manifest))
    app = create_app(ServerConfig(str(saved_dir)), preload=True)
    assert len(verified) == 1
    monkeypatch.setattr(modelio, "read_manifest", lambda *a, **k: pytest.fail("adapt.json read again"))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/metadata").json()["task"] == "sequence_classification"
    assert len(verified) == 1
