"""QA, summarization and translation served over real HTTP on loopback: same JSON as the Easy modules."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapt import EasyQuestionAnswering, EasySummarizer, EasyTranslator

from .serving_utils import free_port, http, stop, wait_ready


@contextmanager
def _server(model_dir: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "adapt.cli", "serve", str(model_dir), "--port", str(port), "--max-wait-ms", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base
    finally:
        stop(proc)


def test_question_answering_server(qa_dir: Path, qa_df):
    rows = qa_df.iloc[:3]
    with _server(qa_dir) as base:
        assert http("GET", f"{base}/metadata")[1]["task"] == "question_answering"
        body = {"texts": [{"question": q, "context": c} for q, c in zip(rows.question, rows.context, strict=True)],
                "detail_level": "medium", "parameters": {"n_best_size": 3}}
        status, got = http("POST", f"{base}/predict", body)
        assert status == 200, got
        want = EasyQuestionAnswering().predict_qa(list(rows.question), list(rows.context), n_best_size=3,
                                                  model_name_or_path=qa_dir, detail_level="medium")
        assert got == want
        status, err = http("POST", f"{base}/predict", {"texts": [{"question": "Who?"}]})
        assert status == 422 and "must have the fields ['question', 'context']" in err["detail"]


def test_summarization_and_translation_servers(summarization_dir: Path, translation_dir: Path, aclsum_dfs, cipher_df):
    docs = list(aclsum_dfs[1].text[:2])
    with _server(summarization_dir) as base:
        status, got = http("POST", f"{base}/predict", {"texts": docs, "parameters": {"num_tokens_to_produce": 16}})
        assert status == 200, got
        assert got == EasySummarizer().summarize(docs, summarization_dir, num_tokens_to_produce=16)
    sents = list(cipher_df.source[:4])
    with _server(translation_dir) as base:
        status, got = http("POST", f"{base}/predict", {"texts": sents, "detail_level": "high"})
        assert status == 200, got
        want = EasyTranslator().translate(sents, translation_dir, detail_level="high")
        assert got["translations"] == want["translations"] and got["token_ids"] == want["token_ids"]
        assert all(len(s) == len(i) for s, i in zip(got["token_scores"], got["token_ids"], strict=True))
        status, err = http("POST", f"{base}/predict", {"texts": sents[:1], "parameters": {"num_beams": 0}})
        assert status == 422 and "num_beams must be a positive integer" in err["detail"]
        status, err = http("POST", f"{base}/predict", {"texts": sents[:1], "parameters": {"bogus": 1}})
        assert status == 422 and "num_tokens_to_produce" in err["detail"]
