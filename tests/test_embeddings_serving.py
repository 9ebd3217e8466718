"""Sentence embeddings (`adapt.sentence_embeddings`) and OpenAI's embeddings API (`adapt.serving.openai_api`).

Pooling and normalisation are checked against a computation by hand with torch on the MiniLM sentence-transformers
folder; the OpenAI routes are called with the real `openai` client over loopback HTTP, first on a small stand-in
for the server's models, then on the real server (`adapt serve` of the folder).
"""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapt.errors import (
    AdaptError,
    CorruptModelError,
    InvalidChoiceError,
    InvalidInputError,
    InvalidOptionError,
    ModelNotFoundError,
    WrongTaskError,
)
from adapt.sentence_embeddings import (
    EasySentenceEmbeddings,
    SentencePooling,
    is_embedding_folder,
    load_embedder,
    save_embedder,
)
from adapt.serving.served import ServeError

from .contract_utils import json_close
from .serving_utils import free_port, http

TEXTS = ["Shares in the bank fell sharply", "The striker scored twice as the team won the cup final on Sunday", "MPs voted"]
LONG = "the market rose and fell again " * 200  # ~1,200 tokens, over MiniLM's 256


# ---------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedder(model_path: str) -> Any:
    return load_embedder(model_path)


@pytest.fixture(scope="module")
def by_hand(model_path: str) -> Any:
    """Embeddings computed with torch alone: padded batch, pooling over the attention mask, L2 normalisation."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()

    def embed(texts: list[str], pooling: str = "mean", normalize: bool = True, max_length: int = 256) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = (states * mask).sum(1) / mask.sum(1) if pooling == "mean" else states[:, 0]
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=1)
        return vectors.numpy()

    return embed


@pytest.fixture(scope="module")
def cls_folder(model_path: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_embedder(model_path, tmp_path_factory.mktemp("emb") / "minilm-cls", pooling="cls", normalize=False)


@pytest.fixture(scope="module")
def easy() -> EasySentenceEmbeddings:
    return EasySentenceEmbeddings()


# ---------------------------------------------------------------------------------------------------
# folders, pooling, normalisation
# ---------------------------------------------------------------------------------------------------
def test_which_folders_are_embedding_folders(model_path: str, tmp_path: Path) -> None:
    assert is_embedding_folder(model_path) and is_embedding_folder(Path(model_path))
    task = tmp_path / "task"
    task.mkdir()
    (task / "adapt.json").write_text(json.dumps({"task": "sequence_classification"}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("{not json")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "modules.json").write_text(json.dumps([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}]))
    for folder in (task, broken, plain, tmp_path / "missing", tmp_path):
        assert not is_embedding_folder(folder), folder
    assert not is_embedding_folder(None)  # type: ignore[arg-type]


def test_mean_pooling_and_normalize_match_a_computation_by_hand(embedder: Any, by_hand: Any) -> None:
    predictor, manifest = embedder
    assert manifest == {"task": "embeddings", "base_model": manifest["base_model"], "pooling": "mean", "normalize": True,
                        "dimensions": 384, "max_length": 256}
    assert predictor.pooling == (SentencePooling.Mean,) and predictor.normalize
    result = predictor.predict(TEXTS, batch_size=2)  # texts of several lengths: padding must not leak into the mean
    vectors = np.array(result.vectors)
    assert vectors.shape == (3, 384) and result.dimensions == 384
    np.testing.assert_allclose(vectors, by_hand(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = np.array(predictor.predict(TEXTS, normalize=False).vectors)
    np.testing.assert_allclose(raw, by_hand(TEXTS, normalize=False), atol=1e-5)
    cut = np.array(predictor.predict(TEXTS, dimensions=64).vectors)  # OpenAI's shortening: cut, then normalise
    expected = raw[:, :64] / np.linalg.norm(raw[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(cut, expected, atol=1e-5)


def test_tokens_are_counted_and_long_texts_cut_to_the_model_length(embedder: Any, by_hand: Any) -> None:
    predictor, _ = embedder
    result = predictor.predict([TEXTS[0], LONG])
    assert [r.tokens for r in result.items] == [8, 256] and [r.truncated for r in result.items] == [False, True]
    assert result.total_tokens == 264
    np.testing.assert_allclose(np.array(result.vectors), by_hand([TEXTS[0], LONG], max_length=256), atol=1e-5)
    high = result.to_dict("high")
    assert high["tokens"] == [8, 256] and high["truncated"] == [False, True] and high["normalized"] is True
    assert set(result.to_dict("low")) == {"sentences", "embeddings", "dimensions"}
    json.dumps(high)  # JSON-safe at every level
    part = result.select(1, 2)  # how the micro-batcher cuts a batched call into requests
    assert part.items == result.items[1:] and part.dimensions == 384


def test_cls_pooling_on_a_folder_written_by_save_embedder(cls_folder: Path, by_hand: Any) -> None:
    config = json.loads((cls_folder / "1_Pooling" / "config.json").read_text())
    assert config["pooling_mode_cls_token"] and not config["pooling_mode_mean_tokens"]
    assert [m["type"].rsplit(".", 1)[1] for m in json.loads((cls_folder / "modules.json").read_text())] == ["Transformer", "Pooling"]
    assert json.loads((cls_folder / "adapt.json").read_text())["task"] == "embeddings" and is_embedding_folder(cls_folder)
    predictor, manifest = load_embedder(cls_folder)
    assert manifest["pooling"] == "cls" and manifest["normalize"] is False and manifest["dimensions"] == 384
    np.testing.assert_allclose(np.array(predictor.predict(TEXTS).vectors), by_hand(TEXTS, "cls", normalize=False), atol=1e-5)


def test_a_saved_mean_folder_gives_the_original_vectors(model_path: str, tmp_path: Path, easy: EasySentenceEmbeddings) -> None:
    folder = EasySentenceEmbeddings.save_embedder(model_path, tmp_path / "minilm")  # mean, normalised
    assert (folder / "2_Normalize").is_dir() and json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    ours = easy.embed(TEXTS, folder)["embeddings"]
    assert json_close(ours, easy.embed(TEXTS, model_path)["embeddings"], 1e-5)


def test_easy_embed_is_the_predictor_through_the_front_door(easy: EasySentenceEmbeddings, model_path: str, embedder: Any) -> None:
    one = easy.embed(TEXTS[0], model_path)
    assert one["sentences"] == [TEXTS[0]] and len(one["embeddings"]) == 1 and one["dimensions"] == 384
    medium = easy.embed(TEXTS, model_path, detail_level="medium", dimensions=32, batch_size=2)
    assert medium["dimensions"] == 32 and all(len(v) == 32 for v in medium["embeddings"]) and medium["tokens"][0] == 8
    assert json_close(medium, embedder[0].predict(TEXTS, dimensions=32).to_dict("medium"), 1e-6)


def test_bad_input_is_refused_with_adapt_errors(easy: EasySentenceEmbeddings, model_path: str, embedder: Any, tmp_path: Path) -> None:
    predictor, _ = embedder
    for bad in ("", "   ", None, 3, [], ["ok", ""], [b"bytes"]):
        with pytest.raises(InvalidInputError):
            easy.embed(bad, model_path)
    for dims in (0, 385, 2.5, True):
        with pytest.raises(InvalidInputError, match="dimensions"):
            predictor.predict(TEXTS, dimensions=dims)
    with pytest.raises(InvalidOptionError, match="Did you mean 'dimensions'"):
        easy.embed(TEXTS, model_path, dimension=8)
    with pytest.raises(InvalidChoiceError, match="Did you mean 'Mean'"):
        save_embedder(model_path, tmp_path / "x", pooling="meen")
    with pytest.raises(InvalidInputError, match="normalize"):
        save_embedder(model_path, tmp_path / "x", normalize="yes")  # type: ignore[arg-type]
    with pytest.raises(ModelNotFoundError):
        load_embedder(tmp_path / "no" / "such" / "folder")
    task = tmp_path / "task"
    task.mkdir()
    (task / "adapt.json").write_text(json.dumps({"task": "sequence_classification"}))
    with pytest.raises(WrongTaskError, match="save_embedder"):
        load_embedder(task)
    assert not (tmp_path / "x").exists()  # nothing was written by a refused save


def test_unsupported_modules_and_pooling_are_named(tmp_path: Path) -> None:
    from adapt.sentence_embeddings import read_embedding_config

    st = "sentence_transformers.models."
    dense = tmp_path / "dense"
    (dense / "1_Pooling").mkdir(parents=True)
    (dense / "modules.json").write_text(json.dumps([{"idx": 0, "path": "", "type": st + "Transformer"},
                                                    {"idx": 1, "path": "1_Pooling", "type": st + "Pooling"},
                                                    {"idx": 2, "path": "2_Dense", "type": st + "Dense"}]))
    with pytest.raises(CorruptModelError, match="Dense"):
        read_embedding_config(dense)
    (dense / "modules.json").write_text(json.dumps([{"idx": 1, "path": "1_Pooling", "type": st + "Pooling"}]))
    (dense / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_min_tokens": True}))
    with pytest.raises(CorruptModelError, match="pooling_mode_min_tokens"):
        read_embedding_config(dense)


# ---------------------------------------------------------------------------------------------------
# OpenAI's API on a stand-in for the server's models (the interface of adapt.serving.models.ModelSet)
# ---------------------------------------------------------------------------------------------------
class _Served:
    def __init__(self, name: str, predictor: Any, manifest: dict[str, Any], kind: str = "embeddings") -> None:
        self.name, self.predictor, self.manifest, self.kind, self.task = name, predictor, manifest, kind, "embeddings"


class _Models:
    """`names`, `get`, `predict` as the server's `ModelSet` has them; "busy" answers 503, "classifier" is a task model."""

    def __init__(self, predictor: Any, manifest: dict[str, Any]) -> None:
        self.models = {"minilm": _Served("minilm", predictor, manifest), "busy": _Served("busy", predictor, manifest),
                       "classifier": _Served("classifier", predictor, {}, kind="task")}
        self.models["classifier"].task = "sequence_classification"

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> _Served:
        if name not in self.models:
            raise ServeError(404, f"No model named {name!r} is served here.")
        return self.models[name]

    async def predict(self, name: str | None, items: list[Any], detail_level: Any = "low",
                      parameters: dict[str, Any] | None = None) -> tuple[_Served, Any, Any]:
        from adapt.inference import TEXT, prepare, run

        served = self.get(name)
        if name == "busy":
            raise ServeError(503, "The server is busy.", {"Retry-After": "1"})
        try:
            call = prepare(served.predictor, items, TEXT, detail_level, parameters or {})
            return served, await asyncio.to_thread(run, served.predictor, call), call.level
        except AdaptError as e:
            raise ServeError(422, str(e)) from e


@pytest.fixture(scope="module")
def openai_base(embedder: Any) -> Iterator[str]:
    import uvicorn
    from fastapi import FastAPI

    from adapt.serving.openai_api import add_openai_routes

    app = FastAPI()
    add_openai_routes(app, _Models(*embedder))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


def _client(base: str) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)


def test_the_openai_client_gets_the_easy_vectors(openai_base: str, easy: EasySentenceEmbeddings, model_path: str) -> None:
    client = _client(openai_base)
    expected = easy.embed(TEXTS, model_path, detail_level="medium")
    plain = client.embeddings.create(model="minilm", input=TEXTS)  # the client asks for base64 unless told otherwise
    floats = client.embeddings.create(model="minilm", input=TEXTS, encoding_format="float")
    for answer in (plain, floats):
        assert answer.model == "minilm" and [d.index for d in answer.data] == [0, 1, 2]
        assert json_close([d.embedding for d in answer.data], expected["embeddings"], 1e-5)
        assert answer.usage.prompt_tokens == answer.usage.total_tokens == sum(expected["tokens"])
    one = client.embeddings.create(model="minilm", input=TEXTS[0], dimensions=64)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 64
    assert abs(np.linalg.norm(one.data[0].embedding) - 1) < 1e-5
    status, raw = http("POST", f"{openai_base}/v1/embeddings", {"model": "minilm", "input": "x", "encoding_format": "base64"})
    assert status == 200 and len(np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), "<f4")) == 384
    assert [m.id for m in client.models.list()] == ["minilm", "busy", "classifier"]
    assert client.models.retrieve("minilm").owned_by == "adapt"


def test_openai_errors_have_openai_shape_and_status(openai_base: str) -> None:
    import openai

    client = _client(openai_base)
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="minilmm", input=["x"])
    assert e.value.code == "model_not_found" and e.value.param == "model"
    for kwargs, param in [({"input": [1, 2, 3]}, "input"), ({"input": [[1, 2]]}, "input"), ({"input": ["ok", ""]}, "input"),
                          ({"input": []}, "input"), ({"input": ["x"], "dimensions": 999}, "dimensions"),
                          ({"input": ["x"], "model": "classifier"}, "model")]:
        with pytest.raises(openai.BadRequestError) as bad:
            client.embeddings.create(**{"model": "minilm", **kwargs})
        assert bad.value.param == param and bad.value.type == "invalid_request_error", kwargs
    status, body = http("POST", f"{openai_base}/v1/embeddings", {"model": "minilm", "input": "x", "encoding_format": "hex"})
    assert status == 400 and body["error"]["param"] == "encoding_format"
    status, body = http("POST", f"{openai_base}/v1/embeddings", raw=b"{oops")
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}
    conn = HTTPConnection(openai_base.removeprefix("http://"), timeout=30)
    conn.request("POST", "/v1/embeddings", json.dumps({"model": "busy", "input": "x"}), {"Content-Type": "application/json"})
    busy = conn.getresponse()
    assert busy.status == 503 and busy.getheader("Retry-After") == "1"
    assert json.loads(busy.read())["error"] == {"message": "The server is busy.", "type": "server_error", "param": None,
                                                "code": "overloaded"}
    assert http("GET", f"{openai_base}/v1/models/nope")[0] == 404


# ---------------------------------------------------------------------------------------------------
# the real server (adapt serve of the MiniLM folder)
# ---------------------------------------------------------------------------------------------------
def test_the_server_answers_openai_and_predict_as_easy_does(model_path: str, easy: EasySentenceEmbeddings) -> None:
    from .contract_utils import server

    expected = easy.embed([*TEXTS, LONG], model_path, detail_level="medium")
    with server(Path(model_path)) as base:
        client = _client(base)
        names = [m.id for m in client.models.list()]
        assert len(names) == 1
        answer = client.embeddings.create(model=names[0], input=[*TEXTS, LONG])
        assert json_close([d.embedding for d in answer.data], expected["embeddings"], 1e-5)
        assert answer.usage.prompt_tokens == sum(expected["tokens"])
        status, body = http("POST", f"{base}/predict", {"texts": [*TEXTS, LONG], "detail_level": "medium"})
        assert status == 200 and json_close(body, expected, 1e-5)
        status, meta = http("GET", f"{base}/metadata")
        assert status == 200 and meta["task"] == "embeddings"
