"""Read a W&B run's local `.wandb` file: the records its offline mode writes (config, history, summary).

wandb 0.2x dropped its Python reader of these files; the format is a 7-byte header (`:W&B`, magic, version), then
LevelDB-log blocks of 32 KiB holding records (crc32, little-endian length, kind: full/first/middle/last) of
`wandb_internal_pb2.Record` protobufs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def run_contents(path: Path) -> dict[str, Any]:
    """{"config": {key: value}, "history": [{key: value}], "summary": {key: value}} of a run file."""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":  # the run's start: the config given to wandb.init
            config.update(_items(record.run.config.update))
        elif kind == "config":
            config.update(_items(record.config.update))
        elif kind == "history":
            history.append(_items(record.history.item))
        elif kind == "summary":
            summary.update(_items(record.summary.update))
    return {"config": config, "history": history, "summary": summary}


def _items(items: Any) -> dict[str, Any]:
    """Protobuf items as {key: value}; a nested key is joined with '/'. Config values come wrapped as {"value": v}."""
    out = {}
    for item in items:
        value = json.loads(item.value_json)
        out[item.key or "/".join(item.nested_key)] = value["value"] if isinstance(value, dict) and set(value) >= {"value"} else value
    return out
