"""Helpers for the task-contract tests: tiny per-task data files, in-process CLI calls and an in-thread server."""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapt.tasks import all_tasks

from .serving_utils import free_port

# task -> inputs sent through every door (greedy generation, so the outputs are deterministic)
INPUTS: dict[str, list[Any]] = {
    "sequence_classification": [
        "Shares fell sharply after the profit warning",
        {"text": "The striker scored twice", "text_pair": "a late goal won the cup"},
    ],
    "token_classification": ["Barack Obama visited Paris on Monday", "shares in London fell"],
    "question_answering": [
        {"question": "Who scored twice?", "context": "The striker Smith scored twice. The keeper saved a penalty."},
        {"question": "What fell?", "context": "Shares fell sharply. Bonds rose."},
    ],
    "language_modeling": ["The match ended", "Shares in"],
    "masked_language_modeling": ["Shares [MASK] sharply on Monday.", "The [MASK] won the cup."],
    "summarization": ["The company reported a loss as sales fell in every region.", "The team won the final."],
    "translation": ["the market rose", "the government said on monday"],
    "upper_case": ["THE MARKET ROSE", "the market rose"],
}


def json_close(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """Equal JSON, floats within `tol` (other kernels, or merged weights, may sum in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def easy_call(spec: Any, easy: Any, inputs: list[Any], folder: Any, level: str, **options: Any) -> dict[str, Any]:
    """The task's own Easy verb, called as its users call it."""
    verb = getattr(easy, spec.verb)
    if spec.verb == "predict_qa":
        return verb([i["question"] for i in inputs], [i["context"] for i in inputs], model_name_or_path=folder,
                    detail_level=level, **options)
    return verb(inputs, folder, detail_level=level, **options)


def tuner_call(spec: Any, tuner: Any, inputs: list[Any], level: str) -> dict[str, Any]:
    if spec.verb == "predict_qa":
        return tuner.predict([i["question"] for i in inputs], [i["context"] for i in inputs], detail_level=level)
    return tuner.predict(inputs, detail_level=level)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """`adapt ARGS` in this process (the console script's `main`): (exit code, stdout, stderr)."""
    from adapt.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@contextmanager
def server(model_dir: Path, hook: Any = None, **config: Any) -> Iterator[str]:
    """A real uvicorn server for `model_dir` on loopback, in a thread of this process (as `adapt serve` runs it).

    `hook(app)` runs on the loaded app before it serves (e.g. to wrap its predictor).
    """
    import uvicorn

    from adapt.serving.app import ServerConfig, create_app
    from adapt.serving.guards import header_timeout_protocol

    cfg = ServerConfig(str(model_dir), **{"max_wait_ms": 2.0, **config})
    app = create_app(cfg, preload=True)
    if hook is not None:
        hook(app)
    port = free_port()
    protocol = header_timeout_protocol(cfg.header_timeout)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", http=protocol))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


TASK_NAMES = [*all_tasks(), "upper_case"]

# task -> (data file in `task_files`, tiny model kind)
DATA = {
    "sequence_classification": ("cls.csv", "bert"),
    "token_classification": ("ner.conll", "bert"),
    "question_answering": ("qa.jsonl", "bert"),
    "language_modeling": ("lm.csv", "gpt2"),
    "masked_language_modeling": ("lm.csv", "bert"),
    "summarization": ("sum.jsonl", "bart"),
    "translation": ("tr.csv", "bart"),
    "upper_case": ("upper.csv", "bert"),
}


def max_length(task: str) -> int:
    return 96 if task == "question_answering" else 32  # a window must hold the question


def datasets_for(spec: Any, path: Path, model: Path, **kwargs: Any) -> Any:
    kw = {"tokenizer_name": str(model), "max_length": max_length(spec.name), **spec.data_defaults, **kwargs}
    if path.suffix == ".csv":
        return spec.datasets.from_csvs(path, **kw)
    if path.suffix == ".jsonl":
        return spec.datasets.from_jsons(path, **kw)
    return spec.datasets.from_conll(path, **kw)


def step_counter() -> Any:
    """A fastai callback counting training batches and optimizer steps (`steps`, `batches`)."""
    from fastai.callback.core import Callback

    class Steps(Callback):
        order = 100  # after GradientAccumulation, which cancels the steps it skips

        def before_fit(self) -> None:
            self.steps, self.batches = 0, 0

        def after_batch(self) -> None:
            self.batches += int(self.training)

        def after_step(self) -> None:
            self.steps += 1

    return Steps()
