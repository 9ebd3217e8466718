"""The `adapt` command line: serve, predict, tune and export."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="adapt",
    help="Fine-tune Hugging Face transformers with fastai, and serve or run the saved models.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve(
    model_dir: str = typer.Argument(..., envvar="ADAPT_MODEL", help="Saved or exported model folder (or $ADAPT_MODEL)."),
    host: str = typer.Option("127.0.0.1", envvar="ADAPT_HOST", help="Interface to bind."),
    port: int = typer.Option(8000, envvar="ADAPT_PORT", help="Port to bind."),
    workers: int = typer.Option(1, envvar="ADAPT_WORKERS", help="Worker processes; each loads the model once."),
    max_batch_size: int = typer.Option(32, envvar="ADAPT_MAX_BATCH_SIZE", help="Most texts per model call."),
    max_wait_ms: float = typer.Option(5.0, envvar="ADAPT_MAX_WAIT_MS", help="How long to wait to fill a batch."),
    max_texts: int = typer.Option(256, envvar="ADAPT_MAX_TEXTS", help="Most texts per request (else 413)."),
    max_chars: int = typer.Option(20_000, envvar="ADAPT_MAX_CHARS", help="Most characters per text (else 413)."),
    max_body_bytes: int = typer.Option(2_000_000, envvar="ADAPT_MAX_BODY_BYTES", help="Largest request body (else 413)."),
    device: Optional[str] = typer.Option(None, envvar="ADAPT_DEVICE", help="cpu, cuda, cuda:1 ... (default: auto)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve a model over REST: POST /predict, GET /health /ready /metadata /metrics, docs at /docs."""
    import uvicorn

    from .serving.app import ServerConfig
    from .tasks import task_for_folder

    config = ServerConfig(model_dir, device, max_batch_size, max_wait_ms, max_texts, max_chars, max_body_bytes)
    task_for_folder(model_dir)  # fail fast, before workers start
    os.environ.update(config.to_env())
    uvicorn.run("adapt.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level)


@app.command()
def predict(
    model_dir: str = typer.Argument(..., help="Saved or exported model folder, or a hub name."),
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to predict (or use --file).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A text file with one input per line.")] = None,
    detail_level: str = typer.Option("low", help="low, medium or high."),
    batch_size: int = typer.Option(32, help="Texts per model call."),
) -> None:
    """Predict and print one JSON line per input, in input order."""
    from .enums import DetailLevel
    from .tasks import TASKS, task_for_folder

    items = list(texts or [])
    if file is not None:
        items += [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not items:
        raise typer.BadParameter("Give texts as arguments or --file.")
    spec = task_for_folder(model_dir) if Path(model_dir).exists() else TASKS["sequence_classification"]
    easy = spec.easy_class()()
    result = easy.get_model(model_dir).predict(_validated(items, spec.allow_pairs), batch_size=batch_size)
    level = DetailLevel(detail_level)
    for i in range(len(result.items)):  # one line per input, in the Easy modules' shape (lists of length 1)
        sys.stdout.write(json.dumps(dataclasses.replace(result, items=result.items[i : i + 1]).to_dict(level)) + "\n")


def _validated(items: list[str], allow_pairs: bool) -> list[str]:
    from .inference import normalize_texts

    return normalize_texts(items, allow_pairs=allow_pairs)[0]  # type: ignore[return-value]


@app.command()
def tune(
    data: Annotated[Path, typer.Argument(help="A CSV file, a folder of .txt files (one per label), or a CoNLL file (ner).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the fine-tuned model to.")],
    task: str = typer.Option("classification", help="classification or ner."),
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local model folder to start from."),
    epochs: int = typer.Option(1, help="Total epochs."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate; default: found with the LR finder."),
    strategy: str = typer.Option("one_cycle", help="one_cycle, flat_cos, sgdr or constant."),
    batch_size: int = typer.Option(16, help="Training batch size."),
    max_length: int = typer.Option(256, help="Tokens kept per text (windows for ner)."),
    text_col: str = typer.Option("text", help="CSV text column."),
    label_col: str = typer.Option("label", help="CSV label column."),
    valid_pct: float = typer.Option(0.2, help="Validation share when no validation set is given."),
    max_items: Optional[int] = typer.Option(None, help="Folders only: sample this many files."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the data files."),
    seed: int = typer.Option(42, help="Random seed."),
) -> None:
    """Fine-tune a model on a CSV, a folder of .txt files or a CoNLL file, then save it."""
    from . import set_seed

    set_seed(seed)
    kwargs = {"tokenize_kwargs": {"max_length": max_length}}
    if task in ("ner", "token_classification"):
        from .tasks.token_classification import TokenClassificationDatasets as TD
        from .tasks.token_classification import TokenClassificationTuner as Tuner

        dsets = TD.from_conll(data, model, split_pct=valid_pct, encoding=encoding, seed=seed, **kwargs)
    elif task in ("classification", "sequence_classification"):
        from .tasks.sequence_classification import SequenceClassificationDatasets as SD
        from .tasks.sequence_classification import SequenceClassificationTuner as Tuner  # type: ignore[assignment]

        if data.is_dir():
            dsets = SD.from_folders(
                data, tokenizer_name=model, split_pct=valid_pct, encoding=encoding, max_items=max_items, seed=seed, **kwargs
            )
        else:
            dsets = SD.from_csvs(data, text_col, label_col, model, split_pct=valid_pct, seed=seed, encoding=encoding, **kwargs)
    else:
        raise typer.BadParameter(f"Unknown task {task!r}; use classification or ner.", param_hint="--task")
    tuner = Tuner(dsets.dataloaders(batch_size=batch_size), model)
    metrics = tuner.tune(epochs, lr=lr, strategy=strategy)
    tuner.save(out)
    sys.stdout.write(json.dumps({"saved": str(out), "metrics": metrics}) + "\n")


@app.command()
def export(
    model_dir: Annotated[str, typer.Argument(help="A folder written by tuner.save() (or save_pretrained).")],
    out: Annotated[Path, typer.Argument(help="Where to write the deployable artifact.")],
) -> None:
    """Verify a saved folder (checksums included) and write it, with a model card, as a deployable artifact."""
    from .modelio import export_folder

    target = export_folder(model_dir, out)
    sys.stdout.write(json.dumps({"exported": str(target)}) + "\n")


def main() -> None:
    """Console-script entry point."""
    from .errors import AdaptError

    try:
        app()
    except AdaptError as e:
        sys.stderr.write(f"adapt: error: {e}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
