"""Data larger than memory: CSV and HF-dataset paths stay Arrow-backed, memory-mapped and cached."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

WORDS = np.array(["market", "shares", "bank", "profit", "film", "award", "election", "minister", "match", "goal", "phone", "software"])


def _anon_rss() -> int:
    """Anonymous resident memory (bytes). Memory-mapped Arrow pages are file-backed and reclaimable."""
    return int(re.search(r"RssAnon:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def _write_csv(path: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with path.open("w") as f:
        f.write("text,label\n")
        for _ in range(0, rows, 10_000):
            w = WORDS[rng.integers(0, len(WORDS), size=(10_000, 30))]
            lab = WORDS[rng.integers(0, 3, size=10_000)]
            f.write("".join(" ".join(r) + "," + la + "\n" for r, la in zip(w, lab, strict=True)))
    return path


def _build(csv: Path, model_path: str, cache: Path, **kw):
    from adapt import SequenceClassificationDatasets

    d = SequenceClassificationDatasets.from_csvs(
        csv, "text", "label", model_path, tokenize_kwargs={"max_length": 16}, cache_dir=str(cache), **kw
    )
    d.dataloaders(batch_size=32).train.one_batch()
    return d


@pytest.mark.slow
def test_csv_larger_than_the_memory_bound(tmp_path, model_path):
    big = _write_csv(tmp_path / "big.csv", 240_000)
    bound = big.stat().st_size  # ~50 MB of text: memory growth must stay below the file's own size
    small = _write_csv(tmp_path / "small.csv", 200, seed=1)
    _build(small, model_path, tmp_path / "cache")  # imports, tokenizer and CSV reader warmed up first
    base = peak = _anon_rss()
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _anon_rss())
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        d = _build(big, model_path, tmp_path / "cache")
    finally:
        done.set()
        t.join()
    assert len(d.train) + len(d.valid) == 240_000
    for split in (d.train, d.valid):  # tokenized splits are memory-mapped Arrow cache files, not in-memory tables
        assert split.cache_files and all(Path(c["filename"]).is_file() for c in split.cache_files)
        assert all(str(tmp_path / "cache") in c["filename"] for c in split.cache_files)
    assert peak - base < bound, f"memory grew {(peak - base) / 1e6:.0f} MB for a {bound / 1e6:.0f} MB CSV"


def test_num_proc_tokenizes_the_same(tmp_path, model_path):
    csv = _write_csv(tmp_path / "t.csv", 400)
    one = _build(csv, model_path, tmp_path / "c1")
    two = _build(csv, model_path, tmp_path / "c2", num_proc=2)
    assert one.train["input_ids"] == two.train["input_ids"] and one.valid["labels"] == two.valid["labels"]


def test_hf_dataset_path_stays_memory_mapped(tmp_path, model_path):
    from datasets import load_dataset

    from adapt import SequenceClassificationDatasets

    csv = _write_csv(tmp_path / "t.csv", 300)
    dd = load_dataset("csv", data_files={"train": str(csv)}, cache_dir=str(tmp_path / "c"))
    d = SequenceClassificationDatasets.from_hf(dd, "text", "label", model_path, tokenize_kwargs={"max_length": 16})
    assert d.train.cache_files and d.valid.cache_files
