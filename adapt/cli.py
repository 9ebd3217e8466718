"""The `adapt` command line: tune, predict, export and serve, for every task in the registry.

Errors a user can cause print one line (`adapt: error: ...`) and exit with status 2. Progress goes to stderr;
stdout carries only JSON, so it can be piped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .errors import AdaptError, EmptyDatasetError, InvalidChoiceError, InvalidInputError, cli_names, unknown_name

if TYPE_CHECKING:
    from .tasks.base import TaskSpec

app = typer.Typer(
    name="adapt",
    help="Fine-tune Hugging Face transformers with fastai, and serve or run the saved models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"adapt {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Fine-tune Hugging Face transformers with fastai, and serve or run the saved models."""


# ---------------------------------------------------------------------------------------------------
# inputs and options
# ---------------------------------------------------------------------------------------------------
def _key_values(pairs: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"{what} {pair!r} is not key=value.")
        out[key.strip()] = value
    return out


def _parse_options(pairs: dict[str, str], declared: Sequence[Any], what: str, where: str) -> dict[str, Any]:
    """`key=value` strings -> typed values of the declared options (unknown keys refused, with the list)."""
    from .options import check_options, parse_cli_value

    table = {o.name: o for o in declared}
    raw: dict[str, Any] = {}
    for key, value in pairs.items():
        if key not in table:
            raise InvalidInputError(unknown_name(what, key, list(table), where))
        raw[key] = parse_cli_value(table[key], value)
    return check_options(raw, declared, where, what)


def _read_inputs(texts: Sequence[str], file: Path | None, as_json: bool) -> list[Any]:
    """Positional texts and `--file` lines; JSON lines (strings or objects) with `--jsonl` or a .jsonl/.json file."""
    items: list[Any] = [_json(t, f"argument {n}") if as_json else t for n, t in enumerate(texts, 1)]
    if file is not None:
        from .errors import DataNotFoundError, DecodeError

        if not file.is_file():
            raise DataNotFoundError(f"Input file {str(file)!r} does not exist.")
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise DecodeError(str(file), "utf-8", e) from e
        while lines and not lines[-1].strip():  # trailing blank lines end the file; blank lines inside it are errors
            lines.pop()
        parse = as_json or file.suffix in (".jsonl", ".json")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                raise InvalidInputError(f"{file}:{n} is blank; every line is one input (output line N answers line N).")
            items.append(_json(line, f"{file}:{n}") if parse else line)
    if not items and file is not None:
        raise EmptyDatasetError(f"{str(file)!r} holds no inputs: it is empty (one input per line, output line N "
                                "answers line N).")
    if not items:
        raise InvalidInputError("Give inputs as arguments or with --file.")
    return items


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{where} is not JSON ({e.msg}); write one JSON string or object per input.") from e


def _spec_for(model: str, task: str | None) -> TaskSpec:
    from .tasks import get_task, task_for_folder

    if task is not None:
        return get_task(task)
    from .modelio import resolve_model_source

    if resolve_model_source(model).kind != "hub":  # a missing path fails here, with its own message
        return task_for_folder(model)
    return get_task("sequence_classification")  # a hub name: a classifier, as before (--task for others)


# ---------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------
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
    max_tokens: int = typer.Option(65_536, envvar="ADAPT_MAX_TOKENS", help="Most tokens of all texts of a request (else 413)."),
    max_queued_texts: int = typer.Option(4_096, envvar="ADAPT_MAX_QUEUED_TEXTS", help="Most texts waiting (else 503)."),
    request_timeout: float = typer.Option(60.0, envvar="ADAPT_REQUEST_TIMEOUT", help="Seconds a request may take (else 504)."),
    header_timeout: float = typer.Option(10.0, envvar="ADAPT_HEADER_TIMEOUT", help="Seconds to send the headers."),
    body_timeout: float = typer.Option(30.0, envvar="ADAPT_BODY_TIMEOUT", help="Seconds to send the body (else 408)."),
    api_key: str | None = typer.Option(None, envvar="ADAPT_API_KEY", help="Key(s), comma-separated, that every route "
                                       "but /health (and /ready) requires."),
    public_ready: bool = typer.Option(True, envvar="ADAPT_PUBLIC_READY", help="/ready needs no key."),
    public_metrics: bool = typer.Option(False, envvar="ADAPT_PUBLIC_METRICS", help="/metrics needs no key."),
    ssl_certfile: str | None = typer.Option(None, envvar="ADAPT_SSL_CERTFILE", help="TLS certificate (with --ssl-keyfile)."),
    ssl_keyfile: str | None = typer.Option(None, envvar="ADAPT_SSL_KEYFILE", help="TLS private key."),
    device: str | None = typer.Option(None, envvar="ADAPT_DEVICE", help="cpu, cuda, cuda:1 ... (default: auto)."),
    log_level: str = typer.Option("info", envvar="ADAPT_LOG_LEVEL", help="uvicorn log level."),
    adapter_base: str | None = typer.Option(None, envvar="ADAPT_ADAPTER_BASE", help="A LoRA adapter folder: where its "
                                            "base model is here (Hub id or folder), when its recorded name is not reachable."),
    name: str | None = typer.Option(None, envvar="ADAPT_NAME", help="The model's name on every protocol (default: the "
                                    "folder's name)."),
    adapter: Annotated[list[str] | None, typer.Option(
        "--adapter", envvar="ADAPT_ADAPTERS", help="NAME=FOLDER of a LoRA adapter, or a folder of adapter folders "
        "(repeat it): MODEL_DIR is their base, loaded once; each adapter is a model name of its own.")] = None,
) -> None:
    """Serve a model of any task over REST (POST /predict /reload, GET /health /ready /metadata /metrics, /docs), the
    Open Inference Protocol v2 (/v2/...), Hugging Face task JSON (POST /) and, for an embedding folder, OpenAI's
    POST /v1/embeddings."""
    from .serving.app import ServerConfig

    config = ServerConfig(
        model_dir, device=device, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_texts=max_texts,
        max_chars=max_chars, max_body_bytes=max_body_bytes, max_tokens=max_tokens, max_queued_texts=max_queued_texts,
        request_timeout=request_timeout, header_timeout=header_timeout, body_timeout=body_timeout, api_key=api_key,
        public_ready=public_ready, public_metrics=public_metrics, adapter_base=adapter_base, name=name,
        adapters=",".join(adapter) if adapter else None,
    )
    server: dict[str, Any] = {
        "host": host, "port": port, "log_level": log_level, "ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile,
        "http": "auto",
    }
    _run_server(config, workers, server)


def _run_server(config: Any, workers: int, server: dict[str, Any]) -> None:
    """uvicorn on `server`'s settings: the app built here (one worker), or by each of `workers` processes."""
    import uvicorn

    from .serving.guards import HeaderTimeoutProtocol, header_timeout_protocol
    from .serving.models import ModelSet

    if workers != 1:  # fail fast, before workers start (one worker: create_app below checks the folder, once)
        ModelSet(config)
    if config.header_timeout:  # worker processes get the module-level class (pickled by name); it reads ADAPT_HEADER_TIMEOUT
        server["http"] = header_timeout_protocol(config.header_timeout) if workers == 1 else HeaderTimeoutProtocol
    with _exit_cleanly_on_stop():
        if workers == 1:  # load here, so that a bad folder is one line and exit 2, not a server traceback
            from .serving.app import create_app

            uvicorn.run(create_app(config, preload=True), **server)
            return
        os.environ.update(config.to_env())
        uvicorn.run("adapt.serving.app:app_from_env", factory=True, workers=workers, **server)


@contextlib.contextmanager
def _exit_cleanly_on_stop() -> Iterator[None]:
    """After a graceful shutdown uvicorn re-raises SIGTERM/SIGINT to the handler it found: make that exit 0. The
    process's own handlers come back afterwards (`main` may run in a process that goes on, as in the tests)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Saved or exported model folder, or a hub name (with --task).")],
    texts: Annotated[list[str] | None, typer.Argument(help="Inputs (or use --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="One input per line (.jsonl: JSON per line).")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Read inputs as JSON: strings or objects such as "
                                        '{"question": ..., "context": ...}.')] = False,
    task: Annotated[str | None, typer.Option(help="The task, for hub names (default: read from the folder).")] = None,
    detail_level: str = typer.Option("low", help="low, medium or high."),
    batch_size: int = typer.Option(32, help="Inputs per model call."),
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A task option, key=value (repeatable).")] = None,
    long_text: Annotated[str | None, typer.Option(help="truncate or window (tasks that take long_text).")] = None,
    output: Annotated[str, typer.Option(help="jsonl: one line per input; json: one object, as the Easy verb; csv: the "
                                        "input columns and the predictions.")] = "jsonl",
    text_col: Annotated[str | None, typer.Option(help="A .csv/.tsv --file: the column of the texts (default: the "
                                                 "task's first field, text or question).")] = None,
    adapter_base: Annotated[str | None, typer.Option(help="A LoRA adapter folder: where its base model is here (Hub id "
                                                     "or folder), when the name it records is not reachable.")] = None,
) -> None:
    """Predict with a model of any task and print JSON (one line per input, in input order) or CSV. A .csv/.tsv
    --file is a table: the task's fields are read from its columns, and `--output csv` keeps every column."""
    from .enums import DetailLevel
    from .inference import prepare, run, showing_progress

    level = DetailLevel(detail_level)  # checked before any model loads
    if output not in OUTPUTS:
        raise InvalidChoiceError(unknown_name("--output", output, OUTPUTS))
    spec = _spec_for(model, task)
    pairs = _key_values(param, "--param")
    if long_text is not None:
        pairs["long_text"] = long_text
    options = _parse_options(pairs, spec.predictor.options, "option", spec.name)
    is_table = file is not None and file.suffix.lower() in TABLES
    if text_col is not None and not is_table:
        raise InvalidInputError("--text-col names a column of a .csv/.tsv --file; give one, or pass the texts as they are.")
    table = _read_table(file, spec, text_col) if file is not None and is_table else None
    items = table[1] if table is not None else _read_inputs(texts or [], file, jsonl)
    predictor = spec.easy(adapter_base=adapter_base).get_model(model)
    call = prepare(predictor, items, spec.fields, level, options, where=f"{spec.name} prediction")
    with showing_progress(len(call.inputs)):  # on stderr: stdout stays JSON
        result = run(predictor, call, batch_size)
    if output == "json":
        sys.stdout.write(json.dumps(result.to_dict(level)) + "\n")
        return
    if output == "csv":
        rows = table[0] if table is not None else [{"text": json.dumps(i) if not isinstance(i, str) else i} for i in items]
        _write_csv(rows, [result.select(i, i + 1).to_dict(level) for i in range(len(result.items))])
        return
    for i in range(len(result.items)):  # one line per input, in the Easy verbs' shape (lists of length 1)
        sys.stdout.write(json.dumps(result.select(i, i + 1).to_dict(level)) + "\n")


OUTPUTS = ("jsonl", "json", "csv")
TABLES = {".csv": ",", ".tsv": "\t"}


def _read_table(file: Path, spec: TaskSpec, text_col: str | None) -> tuple[list[dict[str, str]], list[Any]]:
    """(the rows of a CSV/TSV file, each row's input): the task's fields from the columns of their names, the first
    field from `text_col` when given; a missing required column is named with the columns there are."""
    import csv

    from .data import check_columns
    from .errors import DataNotFoundError, DecodeError

    if not file.is_file():
        raise DataNotFoundError(f"Input file {str(file)!r} does not exist.")
    try:  # utf-8-sig: spreadsheet programs start "CSV UTF-8" files with a byte-order mark
        with file.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=TABLES[file.suffix.lower()])
            rows = []
            for row in reader:
                if None in row or None in row.values():
                    raise InvalidInputError(f"{file}:{reader.line_num} has {'more' if None in row else 'fewer'} fields "
                                            f"than the header ({len(reader.fieldnames or [])}); quote fields that hold "
                                            "the separator.")
                rows.append(row)
    except UnicodeDecodeError as e:
        raise DecodeError(str(file), "utf-8", e) from e
    if not rows:
        raise EmptyDatasetError(f"{str(file)!r} holds no rows under its header.")
    columns = {f.name: (text_col if k == 0 and text_col else f.name) for k, f in enumerate(spec.fields)}
    check_columns(list(rows[0]), [columns[f.name] for f in spec.fields if f.required], f"file {file.name!r}")
    present = [f.name for f in spec.fields if columns[f.name] in rows[0]]
    if len(present) == 1:
        return rows, [row[columns[present[0]]] for row in rows]
    return rows, [{name: row[columns[name]] for name in present if row[columns[name]] != ""} for row in rows]


# the result keys that repeat the inputs (AdaptNLP's `sentences`, QA's `questions`/`queries`/`context`)
ECHO_KEYS = ("sentences", "questions", "queries", "context", "inputs")


def _write_csv(inputs: list[dict[str, str]], results: list[dict[str, Any]]) -> None:
    """The input columns, then each prediction key but those that repeat the inputs (one value per row; lists and
    objects as JSON), to stdout."""
    import csv

    values = [{k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in r.items()} for r in results]
    keys = [k for k in (values[0] if values else {}) if k not in ECHO_KEYS]
    rows = [{**given, **{k: _cell(v[k]) for k in keys}} for given, v in zip(inputs, values, strict=True)]
    names = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _cell(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


def _data_form(data: Path, spec: TaskSpec) -> str:
    form = "folder" if data.is_dir() else {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(
        data.suffix.lower(), "conll" if "conll" in spec.data_forms else ""
    )
    if form not in spec.data_forms:
        raise InvalidChoiceError(
            f"{spec.name} trains on {', '.join(spec.data_forms)} data; {str(data)!r} is "
            f"{'a folder' if data.is_dir() else repr(data.suffix or 'a file without a suffix')}."
        )
    return form


def _load_data(spec: TaskSpec, data: Path, valid: Path | None, form: str, model: str, kwargs: dict[str, Any]) -> Any:
    cls = spec.datasets
    if not data.exists():
        from .errors import DataNotFoundError

        raise DataNotFoundError(f"Data {str(data)!r} does not exist.")
    valid_name = {"csv": "valid_csv", "jsonl": "valid_json"}.get(form, "valid_path")
    valid_kw: dict[str, Any] = {} if valid is None else {valid_name: valid}
    if form == "csv":
        return cls.from_csvs(data, tokenizer_name=model, **({"sep": "\t"} if data.suffix == ".tsv" else {}), **valid_kw, **kwargs)
    if form == "jsonl":
        return cls.from_jsons(data, tokenizer_name=model, **valid_kw, **kwargs)
    if form == "conll":
        return getattr(cls, "from_conll")(data, tokenizer_name=model, **valid_kw, **kwargs)  # noqa: B009 - the task's own form
    return cls.from_folders(data, tokenizer_name=model, **valid_kw, **kwargs)


def _route_options(spec: TaskSpec, pairs: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--option key=value` -> (dataset keywords, tuner keywords), by the names each declares."""
    from .data import SHARED_OPTIONS

    data_opts = [*SHARED_OPTIONS, *spec.datasets.columns, *spec.datasets.options]
    data_names = {o.name for o in data_opts}
    tuner_names = {o.name for o in spec.tuner.options}
    unknown = sorted(set(pairs) - data_names - tuner_names)
    if unknown:
        where = f"adapt tune --task {spec.name}"
        raise InvalidInputError(unknown_name("option", unknown[0], sorted(data_names | tuner_names), where))
    data = _parse_options({k: v for k, v in pairs.items() if k in data_names}, data_opts, "option", spec.name)
    tuner = _parse_options({k: v for k, v in pairs.items() if k in tuner_names}, spec.tuner.options, "option", spec.name)
    return data, tuner


_TUNE_CLI_NAMES = {"resume_from": "--resume", "checkpoint_every": "--checkpoint-every"}


def _check_tune_flags(
    *, peft: str | None, merged: bool, search: int | None, lr: float | None, resume: Path | None,
    checkpoint_every: int | None, work_dir: Path | None,
) -> None:
    """Refuse `adapt tune` options that cannot go together, before anything loads."""
    if peft is not None:
        from .adapters import check_kind

        check_kind(peft)
    if merged and peft is None:
        raise InvalidInputError("--merged merges a LoRA adapter into its base model; it needs --peft lora.")
    if search is not None and (lr is not None or resume is not None):
        raise InvalidInputError("--search chooses the learning rate and starts a new run; leave out --lr and --resume.")
    if checkpoint_every is not None and work_dir is None:
        raise InvalidInputError("--checkpoint-every needs --work-dir DIR, a folder that outlives this run.")


def _tune_pairs(option: Sequence[str] | None, text_col: str | None, label_col: str | None) -> dict[str, str]:
    """`--option key=value` pairs, with `--text-col` and `--label-col` when given."""
    pairs = _key_values(option, "--option")
    for name, value in (("text_col", text_col), ("label_col", label_col)):
        if value is not None:
            pairs[name] = value
    return pairs


def _tune_data_kwargs(
    spec: TaskSpec, form: str, data_kwargs: dict[str, Any], *, valid_pct: float, seed: int, encoding: str,
    max_length: int | None, max_items: int | None,
) -> dict[str, Any]:
    """The keywords `adapt tune` reads its data with: split, seed, encoding, the task's defaults, --option's, lengths."""
    kwargs: dict[str, Any] = {"split_pct": valid_pct, "seed": seed, "encoding": encoding, **spec.data_defaults, **data_kwargs}
    if max_length is None and spec.datasets.max_length_option is None:
        max_length = 256  # tasks that truncate texts: as adapt tune always did
    if max_length is not None:
        kwargs["max_length"] = max_length
    if max_items is not None:
        kwargs["max_items"] = max_items
    if form != "folder":
        kwargs.pop("max_items", None)
    return kwargs


def _build_tuner(
    spec: TaskSpec, dls: Any, model: str, tuner_kwargs: dict[str, Any], *, peft: str | None, work_dir: Path | None,
    gradient_checkpointing: bool, base_model_name: str | None,
) -> Any:
    """The task's tuner for `model` on the dataloaders, with the CLI's settings and the task's own (--option)."""
    return spec.tuner(dls, model, peft=peft, work_dir=work_dir, gradient_checkpointing=gradient_checkpointing,
                      base_model_name=base_model_name, **tuner_kwargs)


def _train(tuner: Any, fit: dict[str, Any], *, search: int | None, epochs: int, lr: float | None, seed: int) -> Any:
    """Train with the `fit` settings: `epochs` at `lr`, or with `search`, the best of that many Optuna trials."""
    if search is None:
        return tuner.tune(epochs, lr=lr, **fit)
    final = {k: v for k, v in fit.items() if k not in ("strategy", "accumulate")}
    # the trials train as the final run does: same strategy and accumulation
    tuner.search(search, monitor=fit["monitor"], max_epochs=epochs, seed=seed, strategy=fit["strategy"],
                 accumulate=fit["accumulate"])
    return tuner.tune_best(**final)


def _print_json(row: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(row) + "\n")


@app.command()
def tune(
    data: Annotated[Path, typer.Argument(help="Training data: a CSV/TSV, JSON Lines, a folder of .txt files or CoNLL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the fine-tuned model to.")],
    task: str = typer.Option("classification", help="Task name or alias (adapt tasks lists them)."),
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local model folder to start from."),
    valid: Annotated[Path | None, typer.Option(help="Validation data, of the same form.")] = None,
    epochs: int = typer.Option(1, help="Total epochs."),
    lr: float | None = typer.Option(None, help="Peak learning rate; default: found with the LR finder."),
    strategy: str = typer.Option("one_cycle", help="one_cycle, flat_cos, sgdr or constant."),
    batch_size: int = typer.Option(16, help="Training batch size."),
    max_length: int | None = typer.Option(
        None, help="Tokens kept per item (the task's window, block or source); default 256 for classification and ner."
    ),
    text_col: str | None = typer.Option(None, help="Column of the texts (classification, lm)."),
    label_col: str | None = typer.Option(None, help="Column of the labels (classification)."),
    valid_pct: float = typer.Option(0.2, help="Validation share when no validation set is given."),
    max_items: int | None = typer.Option(None, help="Folders only: sample this many files."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the data files."),
    seed: int = typer.Option(42, help="Random seed."),
    accumulate: int = typer.Option(1, help="Batches per optimizer step (gradient accumulation)."),
    early_stopping: int | None = typer.Option(None, help="Stop after this many epochs without improving --monitor."),
    keep_best: bool = typer.Option(False, "--keep-best", help="End with the weights of the best epoch at --monitor."),
    monitor: str | None = typer.Option(None, help="The metric early stopping and --keep-best watch (default valid_loss)."),
    report_to: Annotated[list[str] | None, typer.Option(help="Track the run: csv, tensorboard, wandb.")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Folder for checkpoints, history.csv and runs/.")] = None,
    checkpoint_every: int | None = typer.Option(None, help="Write a resumable checkpoint every N epochs (needs --work-dir)."),
    resume: Annotated[Path | None, typer.Option(help="Continue the run of this checkpoint (same epochs, lr, strategy).")] = None,
    peft: str | None = typer.Option(None, help="Train a peft adapter instead of the whole model: lora."),
    base_model_name: str | None = typer.Option(None, help="The base's Hub id, for the card, when --model is a folder."),
    merged: bool = typer.Option(False, "--merged", help="With --peft: save the merged model, not the adapter folder."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations: less memory."),
    option: Annotated[list[str] | None, typer.Option("--option", "-O", help="A dataset or tuner option, key=value.")] = None,
    search: int | None = typer.Option(None, min=1, help="First search N settings with Optuna (lr, epochs up to --epochs, batch "
                                      "size, weight decay, class weights) at --monitor, then train with the best."),
) -> None:
    """Fine-tune a model for any task, then save it; prints one JSON line (folder and final metrics) to stdout."""
    from .enums import Strategy
    from .tasks import get_task
    from .utils import set_seed

    spec = get_task(task)
    strategy_ = Strategy(strategy)  # checked before anything loads
    _check_tune_flags(peft=peft, merged=merged, search=search, lr=lr, resume=resume, checkpoint_every=checkpoint_every,
                      work_dir=work_dir)
    data_kwargs, tuner_kwargs = _route_options(spec, _tune_pairs(option, text_col, label_col))
    form = _data_form(data, spec)
    kwargs = _tune_data_kwargs(spec, form, data_kwargs, valid_pct=valid_pct, seed=seed, encoding=encoding,
                               max_length=max_length, max_items=max_items)
    set_seed(seed)
    fit: dict[str, Any] = {"strategy": strategy_, "accumulate": accumulate, "monitor": monitor,
                           "early_stopping": early_stopping, "keep_best": keep_best, "report_to": report_to,
                           "checkpoint_every": checkpoint_every, "resume_from": resume}
    with contextlib.redirect_stdout(sys.stderr), cli_names(_TUNE_CLI_NAMES):  # fastai's tables and bars are progress, not output
        dsets = _load_data(spec, data, valid, form, model, kwargs)
        tuner = _build_tuner(spec, dsets.dataloaders(batch_size=batch_size), model, tuner_kwargs, peft=peft, work_dir=work_dir,
                             gradient_checkpointing=gradient_checkpointing, base_model_name=base_model_name)
        metrics = _train(tuner, fit, search=search, epochs=epochs, lr=lr, seed=seed)
        tuner.save(out, merged=merged)
    _print_json({"saved": str(out), "task": spec.name, "metrics": metrics})


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="A saved model folder (tuner.save(), an adapter folder, or an export).")],
    data: Annotated[Path, typer.Argument(help="Labelled data in a form adapt tune reads: CSV/TSV, JSON Lines, CoNLL or "
                                        "a folder of .txt files.")],
    task: Annotated[str | None, typer.Option(help="The task (default: read from the folder).")] = None,
    batch_size: int = typer.Option(32, help="Items per model call."),
    max_length: int | None = typer.Option(None, help="Tokens kept per item (default: as the model was trained)."),
    text_col: str | None = typer.Option(None, help="Column of the texts (classification, lm)."),
    label_col: str | None = typer.Option(None, help="Column of the labels (classification)."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the data files."),
    option: Annotated[list[str] | None, typer.Option("--option", "-O", help="A dataset option, key=value.")] = None,
    adapter_base: Annotated[str | None, typer.Option(help="A LoRA adapter folder: where its base model is here (Hub id "
                                                     "or folder), when the name it records is not reachable.")] = None,
) -> None:
    """Score a saved model on labelled data: one JSON line with the metrics tune() reports for its task (per-class
    report and majority baseline for classification)."""
    from .modelio import read_manifest

    spec = _spec_for(model, task)
    pairs = _key_values(option, "--option")
    pairs.update({k: v for k, v in (("text_col", text_col), ("label_col", label_col)) if v is not None})
    data_kwargs, _ = _route_options(spec, pairs)
    form = _data_form(data, spec)
    saved = read_manifest(model) if Path(model).is_dir() else {}
    length = max_length or saved.get("max_length")
    # a regression model scores numeric labels (the data option `regression`, unless --option sets it)
    as_saved = {"regression": True} if saved.get("regression") and "regression" in {o.name for o in spec.datasets.options} else {}
    kwargs: dict[str, Any] = {"encoding": encoding, **spec.data_defaults, **as_saved, **data_kwargs,
                              **({"max_length": length} if length else {})}
    with contextlib.redirect_stdout(sys.stderr):  # fastai's bars are progress, not output
        dsets = _load_data(spec, data, data, form, model, kwargs)  # every row is scored: it is the validation split
        metrics = spec.tuner(dsets.dataloaders(batch_size=batch_size), model, adapter_base=adapter_base).evaluate()
    sys.stdout.write(json.dumps({"model": model, "task": spec.name, "n": len(dsets.valid), "metrics": metrics}) + "\n")


@app.command()
def export(
    model_dir: Annotated[str, typer.Argument(help="A folder written by tuner.save() (or save_pretrained).")],
    out: Annotated[Path, typer.Argument(help="Where to write the deployable artifact.")],
    int8: Annotated[bool, typer.Option("--int8", help="Add a parity-checked int8 copy (tasks that allow it).")] = False,
    onnx: Annotated[bool, typer.Option("--onnx", help="Add a parity-checked ONNX Runtime copy (tasks that allow it).")] = False,
    parity_file: Annotated[Path | None, typer.Option(help="Held-out inputs for the parity checks, one per line "
                                                        "(.jsonl: JSON per line).")] = None,
    min_agreement: float = typer.Option(0.99, help="Least share of decisions a copy must share with fp32."),
    on_parity_fail: str = typer.Option("raise", help="raise (refuse the copy) or warn."),
) -> None:
    """Verify a saved folder (checksums included) and write it, with a model card and optional fast copies."""
    from .fastcopy import check_on_fail
    from .publish import export_folder

    with cli_names(_EXPORT_CLI_NAMES):
        check_on_fail(on_parity_fail)
    texts = _read_inputs([], parity_file, False) if parity_file is not None else None
    spec = _exported_task(model_dir, int8 or onnx)
    with contextlib.redirect_stdout(sys.stderr), cli_names(_EXPORT_CLI_NAMES):
        target = export_folder(spec, model_dir, out, int8, onnx, texts, min_agreement, on_parity_fail)
    sys.stdout.write(json.dumps({"exported": str(target), "int8": int8, "onnx": onnx}) + "\n")


_EXPORT_CLI_NAMES = {"on_parity_fail": "--on-parity-fail", "min_agreement": "--min-agreement"}


def _exported_task(model_dir: str, copies: bool) -> Any:
    """The task of a folder to export: required for fast copies, else only for the card's snippets (None when unknown:
    `export_folder` refuses what is not a saved folder)."""
    from .modelio import resolve_model_source
    from .tasks import task_for_folder

    if copies and resolve_model_source(model_dir).kind == "hf_dir":  # (export_folder refuses anything else)
        return task_for_folder(model_dir)
    try:
        return task_for_folder(model_dir)
    except (AdaptError, OSError, ValueError):
        return None


@app.command()
def push(
    model_dir: Annotated[str, typer.Argument(help="A folder written by tuner.save() or adapt export.")],
    repo_id: Annotated[str, typer.Argument(help="The Hub repository, user/name or org/name.")],
    private: bool = typer.Option(False, "--private", help="Make a new repository private."),
    token: str | None = typer.Option(None, envvar="HF_TOKEN", help="Hub access token (default: $HF_TOKEN or your login)."),
    message: str | None = typer.Option(None, "--message", help="Commit message."),
) -> None:
    """Upload a saved folder (model card included) to the Hugging Face Hub; prints one JSON line."""
    from .publish import push_to_hub

    result = push_to_hub(model_dir, repo_id, private=private, token=token, commit_message=message)
    sys.stdout.write(json.dumps({"pushed": str(model_dir), **result.to_dict()}) + "\n")


@app.command()
def tasks() -> None:
    """List the tasks adapt knows: name, aliases, data forms, Easy verb and options (one JSON line each)."""
    from .tasks import all_tasks

    for spec in all_tasks().values():
        row = {
            "task": spec.name,
            "aliases": list(spec.aliases),
            "summary": spec.summary,
            "data": list(spec.data_forms),
            "fields": [f.name for f in spec.fields],
            "easy": f"{spec.easy.__name__}.{spec.verb}",
            "predict_options": [o.name for o in spec.predictor.options],
            "tune_options": [o.name for o in (*spec.datasets.columns, *spec.datasets.options, *spec.tuner.options)],
            "fast_copies": sorted(spec.fast_copies),
        }
        sys.stdout.write(json.dumps(row) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: user errors print one line and exit 2."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except AdaptError as e:
        message = " ".join(str(e).split())
        sys.stderr.write(f"adapt: error: {message}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
