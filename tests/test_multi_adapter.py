"""Many LoRA adapters on one base model, over real HTTP on loopback: every adapter answers as it does served alone,
under mixed traffic; adapters come and go with /reload while requests keep succeeding; adapters that do not fit the
base are refused; metrics are kept per model name; 8 adapters cost about the memory of one merged model."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .contract_utils import json_close, server
from .serving_utils import free_port, http, stop, wait_ready

pytest.importorskip("peft")

TEXTS = ["Shares fell sharply after the profit warning", "The striker scored twice in the final",
         "MPs voted on the budget bill", "The new phone has a faster chip", "The film won an award"]


def _train(frame: Any, base: Path, folder: Path, epochs: int = 2) -> Path:
    """A LoRA adapter trained on `base` and saved at `folder`; with `merged`, a merged copy beside it (`folder`-merged)."""
    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    set_seed(0)
    dsets = SequenceClassificationDatasets.from_dfs(frame, tokenizer_name=str(base), max_length=32)
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=16), str(base), peft="lora")
    tuner.tune(epochs, lr=5e-3)
    tuner.save(folder.with_name(f"{folder.name}-merged"), merged=True)
    return tuner.save(folder)


@pytest.fixture(scope="module")
def adapters(bbc_df, tiny_bert_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """Four adapters on the tiny BERT: three heads (5 topics, sport or not, money/politics/other), and a second topic
    adapter (other weights, the same labels: it shares model calls with the first, each row with its own adapter)."""
    import numpy as np

    frame = bbc_df.sample(160, random_state=0).assign(text=lambda d: d.text.str.slice(0, 200))
    variants = {
        "topic": frame,
        "sport": frame.assign(label=np.where(frame.label == "sports", "sports", "other")),
        "money": frame.assign(label=frame.label.map(lambda x: x if x in ("business", "politics") else "other")),
    }
    root = tmp_path_factory.mktemp("adapters")
    trained = {name: _train(data, tiny_bert_dir, root / name) for name, data in variants.items()}
    trained["topic_b"] = _train(frame, tiny_bert_dir, root / "topic_b", epochs=1)
    return trained


def _spec(adapters: dict[str, Path]) -> str:
    return ",".join(f"{name}={folder}" for name, folder in adapters.items())


def _solo(folder: Path, base: Path) -> dict[str, Any]:
    """Each adapter served alone (merged into its base on load): its answers to TEXTS, by text."""
    with server(folder, adapter_base=str(base)) as url:
        status, body = http("POST", f"{url}/predict", {"texts": TEXTS, "detail_level": "medium"})
    assert status == 200, body
    return body


def test_every_adapter_answers_as_served_alone_under_mixed_traffic(adapters, tiny_bert_dir: Path) -> None:
    solo = {name: _solo(folder, tiny_bert_dir) for name, folder in adapters.items()}
    assert len({len(s["classes"]) for s in solo.values()}) == 3  # three head sizes on one base
    assert solo["topic"]["probs"] != solo["topic_b"]["probs"]
    jobs = [(name, i) for i in range(len(TEXTS)) for name in adapters] * 3
    calls: list[list[str]] = []

    def spy(app: Any) -> None:  # the model calls' models, one per row
        run = app.state.models.run
        app.state.models.batcher.run = lambda texts, params: calls.append([s.name for s in params["_model"]]) or run(texts, params)

    with server(tiny_bert_dir, hook=spy, adapters=_spec(adapters), max_wait_ms=20) as url:

        def ask(job: tuple[str, int]) -> bool:
            name, i = job
            key = "adapter" if i % 2 else "model"  # both names of the field
            status, body = http("POST", f"{url}/predict", {"texts": [TEXTS[i]], key: name, "detail_level": "medium"})
            want = {k: v[i:i + 1] if k != "classes" else v for k, v in solo[name].items()}
            return status == 200 and json_close(body, want)

        with ThreadPoolExecutor(12) as pool:
            assert all(pool.map(ask, jobs))
        for name in adapters:  # each adapter is a model name on the other protocols too
            tensor = {"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}
            status, v2 = http("POST", f"{url}/v2/models/{name}/infer", {"inputs": [tensor]})
            assert status == 200 and v2["model_name"] == name, v2
            outputs = {o["name"]: o["data"] for o in v2["outputs"]}
            assert outputs["label"] == solo[name]["predictions"]
            assert json_close(outputs["probabilities"], [x for row in solo[name]["probs"] for x in row])
            status, hf = http("POST", f"{url}/models/{name}", {"inputs": TEXTS[0]})
            assert status == 200 and hf[0][0]["label"] == solo[name]["predictions"][0], hf
        meta = http("GET", f"{url}/metadata")[1]
        metrics = http("GET", f"{url}/metrics")[1]
    assert sorted(meta["models"]) == sorted(adapters)
    assert any({"topic", "topic_b"} <= set(c) for c in calls)  # adapters that answer alike shared a call
    assert not any(len(set(c) - {"topic", "topic_b"}) and len(set(c)) > 1 for c in calls)  # others never mixed
    assert {n: m["labels"] for n, m in meta["models"].items()} == {n: s["classes"] for n, s in solo.items()}
    assert all(m["adapter"] and m["task"] == "sequence_classification" for m in meta["models"].values())
    for name in adapters:  # requests, latency and model calls are counted per model name
        assert re.search(rf'adapt_requests_total{{model="{name}",path="/predict",status="200"}} {len(TEXTS) * 3}\.0', metrics)
        assert f'adapt_model_batch_size_count{{model="{name}"}}' in metrics
        assert f'adapt_model_queued_texts{{model="{name}"}} 0.0' in metrics


def test_long_texts_in_a_shared_call_keep_each_window_with_its_adapter(adapters, tiny_bert_dir: Path) -> None:
    """Windows of long texts of two adapters in one model call: each window runs with its own input's adapter."""
    texts = [" ".join(TEXTS[: 1 + i % 5]) * (1 + i) for i in range(6)]  # 1 to 6+ windows of 32 tokens
    body = {"detail_level": "medium", "parameters": {"long_text": "window"}}
    pair = {"topic": adapters["topic"], "topic_b": adapters["topic_b"]}
    solo = {}
    for name, folder in pair.items():
        with server(folder, adapter_base=str(tiny_bert_dir)) as url:
            solo[name] = [http("POST", f"{url}/predict", {**body, "texts": [t]})[1] for t in texts]
    with server(tiny_bert_dir, adapters=_spec(pair), max_wait_ms=50) as url:

        def ask(job: tuple[str, int]) -> bool:
            name, i = job
            status, got = http("POST", f"{url}/predict", {**body, "texts": [texts[i]], "model": name})
            return status == 200 and json_close(got, solo[name][i])

        with ThreadPoolExecutor(12) as pool:
            assert all(pool.map(ask, [(name, i) for i in range(len(texts)) for name in pair]))


def test_a_request_must_name_one_of_several_models(adapters, tiny_bert_dir: Path) -> None:
    with server(tiny_bert_dir, adapters=f"topic.v2={adapters['topic']},sport={adapters['sport']}") as url:
        status, body = http("POST", f"{url}/predict", {"texts": TEXTS[:1]})
        assert status == 400 and "sport" in body["detail"] and "topic.v2" in body["detail"]
        assert http("POST", f"{url}/predict", {"texts": TEXTS[:1], "model": "topic.v2"})[0] == 200  # a dotted name
        status, body = http("POST", f"{url}/predict", {"texts": TEXTS[:1], "adapter": "topic.v3"})
    assert status == 404 and "Did you mean 'topic.v2'?" in body["detail"]
    from adapt.errors import InvalidInputError
    from adapt.serving.models import adapter_folders

    with pytest.raises(InvalidInputError, match="letters, digits"):
        adapter_folders(f"../x={adapters['topic']}")


def test_adapters_come_and_go_with_reload_while_requests_keep_succeeding(adapters, tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "adapters"
    root.mkdir()
    shutil.copytree(adapters["topic"], root / "topic")
    shutil.copytree(adapters["sport"], root / "sport")
    shutil.copytree(adapters["money"], root / ".money.tmp-1")  # an atomic save under way is not an adapter yet
    failures: list[Any] = []
    stop_event = threading.Event()
    with server(tiny_bert_dir, adapters=str(root)) as url:

        def steady() -> None:
            while not stop_event.is_set():
                status, body = http("POST", f"{url}/predict", {"texts": TEXTS, "model": "topic"})
                if status != 200:
                    failures.append(body)

        workers = [threading.Thread(target=steady) for _ in range(3)]
        for w in workers:
            w.start()
        shutil.copytree(adapters["money"], root / "money")
        status, added = http("POST", f"{url}/reload")
        assert status == 200 and added["added"] == ["money"] and added["removed"] == []
        assert http("POST", f"{url}/predict", {"texts": TEXTS, "model": "money"})[0] == 200
        shutil.rmtree(root / "sport")
        status, removed = http("POST", f"{url}/reload")
        assert status == 200 and removed["removed"] == ["sport"] and sorted(removed["models"]) == ["money", "topic"]
        time.sleep(0.5)
        stop_event.set()
        for w in workers:
            w.join()
        assert http("POST", f"{url}/predict", {"texts": TEXTS, "model": "sport"})[0] == 404
    assert failures == []


def test_an_adapter_of_another_base_is_refused_at_start_and_at_reload(
    adapters, bbc_df, model_path: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from adapt.errors import AdaptError
    from adapt.serving.app import ServerConfig, create_app

    frame = bbc_df.sample(32, random_state=0).assign(text=lambda d: d.text.str.slice(0, 80))
    other = _train(frame, Path(model_path), tmp_path / "minilm-adapter", epochs=1)
    with pytest.raises(AdaptError, match="not trained on this base model .*hidden_size"):
        create_app(ServerConfig(str(tiny_bert_dir), adapters=f"x={other}"), preload=True)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(adapters["topic"], root / "topic")
    with server(tiny_bert_dir, adapters=str(root)) as url:
        shutil.copytree(other, root / "other")
        status, body = http("POST", f"{url}/reload")
        assert status == 409 and "hidden_size" in body["detail"]
        assert http("POST", f"{url}/predict", {"texts": TEXTS, "model": "topic"})[0] == 200


def _peak_rss_mb(cmd: list[str], url: str, body: Any, adapters: list[str]) -> float:
    """Start `adapt serve` (cmd), send mixed traffic, and read the server's peak resident memory."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        wait_ready(url, proc)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: http("POST", f"{url}/predict", {**body, "model": adapters[i % len(adapters)]}), range(48)))
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    finally:
        stop(proc)


def test_eight_adapters_take_about_the_memory_of_one_merged_model(adapters, tiny_bert_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "eight"
    for i in range(8):
        shutil.copytree(adapters[("topic", "sport", "money")[i % 3]], root / f"a{i}")
    merged = adapters["topic"].with_name("topic-merged")
    body = {"texts": TEXTS * 4}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "adapt.cli", "serve", "--port", str(port)]
    one = _peak_rss_mb([*serve, str(merged)], url, body, [merged.name])
    eight = _peak_rss_mb([*serve, str(tiny_bert_dir), "--adapter", str(root)], url, body, [f"a{i}" for i in range(8)])
    assert eight <= 1.15 * one, f"8 adapters peak at {eight:.0f} MB, one merged model at {one:.0f} MB"
