"""Publishing to the Hub: `adapt push` and `tuner.push_to_hub` upload a saved folder with huggingface_hub
(`create_repo` + `upload_folder`), here against a local HTTP stub of the Hub API that records what it was sent.

The upload runs in a subprocess with `HF_ENDPOINT` pointing at the stub, since the suite runs with
`HF_HUB_OFFLINE=1` (which huggingface_hub reads once, at import).
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class _Hub(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        entry = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body.decode()}
        self.seen.append(entry)
        parts = self.path.split("?")[0].strip("/").split("/")
        if self.path == "/api/repos/create":
            req = json.loads(body)
            self._json({"url": f"{base}/{req['organization']}/{req['name']}", "name": f"{req['organization']}/{req['name']}"})
        elif parts[:2] == ["api", "models"] and "tree" in parts:  # the repo's files before this push
            self._json([{"type": "file", "oid": "0" * 40, "size": 3, "path": name} for name in ("model.onnx", "README.md")])
        elif self.path == "/api/validate-yaml":  # the Hub checks a model card's metadata before the upload
            self._json({"errors": [], "warnings": []})
        elif parts[:2] == ["api", "models"] and parts[-2] == "preupload":
            files = json.loads(body)["files"]
            self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        elif parts[:2] == ["api", "models"] and parts[-2] == "commit":
            repo = "/".join(parts[2:-2])
            self._json({"commitUrl": f"{base}/{repo}/commit/0123abcd", "commitOid": "0123abcd", "pullRequestUrl": None})
        else:
            self._json({"error": "not in the stub"}, 404)

    do_GET = do_POST

    def _json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Hub", (_Hub,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _online_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": endpoint, "HF_TOKEN": "hf_stub_token"}


def test_adapt_push_uploads_the_saved_folder_and_its_card(hub, trained_tasks) -> None:
    endpoint, seen = hub
    _, folder = trained_tasks["sequence_classification"]
    cli = Path(sys.executable).with_name("adapt")
    done = subprocess.run([str(cli), "push", str(folder), "me/bbc-tiny", "--private", "--message", "first upload"],
                          env=_online_env(endpoint), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["repo_id"] == "me/bbc-tiny" and out["commit_oid"] == "0123abcd"
    assert all(s["auth"] == "Bearer hf_stub_token" for s in seen), seen
    create = next(s for s in seen if s["path"] == "/api/repos/create")
    assert json.loads(create["body"]) == {"name": "bbc-tiny", "organization": "me", "private": True, "type": "model"}
    validated = next(s for s in seen if s["path"] == "/api/validate-yaml")
    assert "pipeline_tag: text-classification" in json.loads(validated["body"])["content"]
    commit = next(s for s in seen if "/commit/" in s["path"])
    assert commit["path"] == "/api/models/me/bbc-tiny/commit/main"
    lines = [json.loads(line) for line in commit["body"].splitlines() if line.strip()]
    assert lines[0] == {"key": "header", "value": {"summary": "first upload", "description": ""}}
    sent = {entry["value"]["path"]: base64.b64decode(entry["value"]["content"]) for entry in lines[1:] if entry["key"] == "file"}
    deleted = [entry["value"]["path"] for entry in lines[1:] if entry["key"] == "deletedFile"]
    assert deleted == ["model.onnx"]  # a file of an earlier push that this save does not have
    local = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
    assert sent == local and {"README.md", "adapt.json", "model.safetensors", "config.json"} <= set(sent)
    assert out["files"] == sorted(local)


def test_a_damaged_folder_is_refused_before_anything_is_sent(hub, trained_tasks, tmp_path: Path) -> None:
    import shutil

    endpoint, seen = hub
    bad = tmp_path / "bad"
    shutil.copytree(trained_tasks["sequence_classification"][1], bad)
    with (bad / "model.safetensors").open("r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\0")
    cli = Path(sys.executable).with_name("adapt")
    done = subprocess.run([str(cli), "push", str(bad), "me/bbc-tiny"], env=_online_env(endpoint), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("adapt: error:") and "checksum" in done.stderr, done.stderr
    assert seen == []


def test_push_refuses_at_once_offline_and_the_tuner_pushes_a_fresh_save(trained_tasks, monkeypatch) -> None:
    import adapt
    from adapt import publish as publish_module
    from adapt.hub import HubUnavailableError
    from adapt.publish import push_to_hub

    assert adapt.push_to_hub is push_to_hub and adapt.PushResult is publish_module.PushResult  # the top-level names

    tuner, folder = trained_tasks["sequence_classification"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE"):
        push_to_hub(folder, "me/bbc-tiny")
    pushed: dict[str, Any] = {}

    def fake_push(path: Path, repo_id: str, **kwargs: Any) -> str:
        pushed.update(repo_id=repo_id, files=sorted(p.name for p in Path(path).iterdir()), **kwargs,
                      card=(Path(path) / "README.md").read_text())
        return "pushed"

    monkeypatch.setattr(publish_module, "push_to_hub", fake_push)
    assert tuner.push_to_hub("me/bbc-tiny", private=True, card_data={"license": "mit"}) == "pushed"
    assert pushed["repo_id"] == "me/bbc-tiny" and pushed["private"] is True and "license: mit" in pushed["card"]
    assert {"adapt.json", "README.md", "model.safetensors"} <= set(pushed["files"])
