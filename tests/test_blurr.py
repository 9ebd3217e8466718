"""blurr users' code on adapt: the flows of blurr's READMEs (1.0, mid-2021 and 2020 names) and `from_data` per task,
written as blurr documents them with only the import line changed (and IMDB swapped for a tiny offline sample),
train, predict in blurr's result shapes, and save an adapt folder that the Easy classes answer from alike."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .contract_utils import DATA

README_1_0 = """
from fastai.text.all import *

from adapt.blurr.text.data.all import *
from adapt.blurr.text.modeling.all import *

n_labels = len(imdb_df["label"].unique())

model_cls = AutoModelForSequenceClassification

pretrained_model_name = MODEL

config = AutoConfig.from_pretrained(pretrained_model_name)
config.num_labels = n_labels

hf_arch, hf_config, hf_tokenizer, hf_model = get_hf_objects(pretrained_model_name, model_cls=model_cls, config=config)

# single input
blocks = (TextBlock(hf_arch, hf_config, hf_tokenizer, hf_model), CategoryBlock)
dblock = DataBlock(blocks=blocks, get_x=ColReader("text"), get_y=ColReader("label"), splitter=ColSplitter())

dls = dblock.dataloaders(imdb_df, bs=4)

dls.show_batch(dataloaders=dls, max_n=2)

model = BaseModelWrapper(hf_model)

learn = Learner(
    dls,
    model,
    opt_func=partial(Adam, decouple_wd=True),
    loss_func=CrossEntropyLossFlat(),
    metrics=[accuracy],
    cbs=[BaseModelCallback],
    splitter=blurr_splitter,
)

learn.freeze()

learn.fit_one_cycle(3, lr_max=1e-3)

learn.show_results(learner=learn, max_n=2)
"""

README_2020 = """
import torch
from fastai.text.all import *

from adapt.blurr.data.all import *
from adapt.blurr.modeling.all import *

task = HF_TASKS_AUTO.SequenceClassification

pretrained_model_name = MODEL
hf_arch, hf_config, hf_tokenizer, hf_model = BLURR_MODEL_HELPER.get_hf_objects(pretrained_model_name,  task=task)

# single input
blocks = (HF_TextBlock(hf_arch, hf_config, hf_tokenizer, hf_model), CategoryBlock)
dblock = DataBlock(blocks=blocks,  get_x=ColReader('text'), get_y=ColReader('label'), splitter=ColSplitter())

dls = dblock.dataloaders(imdb_df, bs=4)

dls.show_batch(dataloaders=dls, max_n=2)

model = HF_BaseModelWrapper(hf_model)

learn = Learner(dls,
                model,
                opt_func=partial(Adam, decouple_wd=True),
                loss_func=CrossEntropyLossFlat(),
                metrics=[accuracy],
                cbs=[HF_BaseModelCallback],
                splitter=hf_splitter)

learn.create_opt()
learn.freeze()

learn.fit_one_cycle(3, lr_max=1e-3)

learn.show_results(learner=learn, max_n=2)
"""

README_2021_HIGH_LEVEL = """
from fastai.text.all import *

from adapt.blurr.data.all import *
from adapt.blurr.modeling.all import *

learn = BlearnerForSequenceClassification.from_dataframe(imdb_df, MODEL, dl_kwargs={ 'bs': 4})

learn.fit_one_cycle(1, lr_max=1e-3)

learn.show_results(learner=learn, max_n=2)
"""


def _run(code: str, **names: Any) -> dict[str, Any]:
    """Run the user's code as written; the validation losses of its fit are kept in `valid_losses` (fastai's
    `show_results` resets the Recorder, so they are read before it)."""
    ns: dict[str, Any] = {"__name__": "blurr_user", **names}
    fit, _, show = textwrap.dedent(code).partition("learn.show_results")
    exec(compile(fit, "<blurr user code>", "exec"), ns)
    ns["valid_losses"] = _losses(ns["learn"]) if "learn" in ns else None
    if show:
        exec(compile("learn.show_results" + show, "<blurr user code>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def imdb_df(bbc_df) -> pd.DataFrame:
    """A tiny stand-in for IMDB_SAMPLE: two BBC labels, short texts, an `is_valid` column."""
    two = bbc_df[bbc_df.label.isin(["sports", "business"])].groupby("label").head(14).reset_index(drop=True)
    return pd.DataFrame({"label": two.label, "text": two.text.str[:200], "is_valid": [i % 4 == 0 for i in range(len(two))]})


def _losses(learn: Any) -> tuple[float, float]:
    col = list(learn.recorder.metric_names[1:-1]).index("valid_loss")
    values = [v[col] for v in learn.recorder.values]  # validation loss per epoch
    return values[0], values[-1]


def test_blurr_1_0_readme_flow_runs_learns_and_predicts_in_blurr_shapes(imdb_df, model_path: str, capsys,
                                                                        tmp_path: Path) -> None:
    import adapt.fastai
    from adapt import EasySequenceClassifier

    ns = _run(README_1_0, imdb_df=imdb_df, MODEL=model_path)
    learn = ns["learn"]
    first, last = ns["valid_losses"]
    assert last < first, f"valid loss {first:.4f} -> {last:.4f}"
    out = capsys.readouterr().out
    assert "target" in out and "prediction" in out  # show_batch's and show_results' tables
    res = learn.blurr_predict(["The striker scored twice", "Shares fell sharply"])
    assert [set(r) for r in res] == [{"label", "score", "class_index", "class_labels", "probs"}] * 2
    assert res[0]["class_labels"] == ["business", "sports"] and res[0]["label"] in ("business", "sports")
    assert abs(sum(res[0]["probs"]) - 1) < 1e-5 and res[0]["score"] == max(res[0]["probs"])
    # a blurr-trained model as an adapt folder: Easy answers as blurr_predict does
    folder = adapt.fastai.save(learn, tmp_path / "blurr-1.0", task="classification", tokenizer=ns["hf_tokenizer"],
                               labels=list(learn.dls.vocab))
    easy = EasySequenceClassifier().tag_text(["The striker scored twice", "Shares fell sharply"], str(folder))
    assert easy["predictions"] == [r["label"] for r in res]
    for got, r in zip(easy["probs"], res, strict=True):
        assert got == pytest.approx(r["probs"], abs=1e-5)


def test_the_text_block_batches_equal_adapts(imdb_df, model_path: str) -> None:
    import torch
    from fastai.data.block import CategoryBlock, DataBlock
    from fastai.data.transforms import ColReader, ColSplitter

    from adapt.blurr.text.data.all import AutoModelForSequenceClassification, TextBlock, get_hf_objects
    from adapt.tasks.sequence_classification import SequenceClassificationDatasets

    hf_arch, hf_config, hf_tokenizer, hf_model = get_hf_objects(model_path, model_cls=AutoModelForSequenceClassification)
    blocks = (TextBlock(hf_arch, hf_config, hf_tokenizer, hf_model), CategoryBlock)
    dblock = DataBlock(blocks=blocks, get_x=ColReader("text"), get_y=ColReader("label"), splitter=ColSplitter())
    got = next(iter(dblock.dataloaders(imdb_df, bs=4, shuffle=False).train))
    train = imdb_df[~imdb_df.is_valid]
    ours = SequenceClassificationDatasets.from_dfs(train, "text", "label", model_path, valid_df=imdb_df[imdb_df.is_valid])
    want = next(iter(ours.dataloaders(batch_size=4, shuffle_train=False).train))
    assert got[0].pop("labels").tolist() == want[1].tolist() == got[1].tolist()
    assert got[0].keys() == want[0].keys() and all(torch.equal(got[0][k], want[0][k]) for k in want[0])


def test_blurr_2020_readme_flow_with_the_legacy_names(imdb_df, model_path: str, capsys) -> None:
    ns = _run(README_2020, imdb_df=imdb_df, MODEL=model_path)
    first, last = ns["valid_losses"]
    assert last < first
    assert "prediction" in capsys.readouterr().out


def test_blurr_2021_high_level_flow(imdb_df, model_path: str) -> None:
    learn = _run(README_2021_HIGH_LEVEL, imdb_df=imdb_df, MODEL=model_path)["learn"]
    assert learn.opt.frozen_idx > 0 or len(learn.opt.param_groups) == 1  # comes back frozen
    assert {"accuracy", "f1_macro"} <= {m.name for m in learn.metrics}  # adapt's task metrics
    res = learn.predict("The striker scored twice")
    assert set(res[0]) == {"label", "score", "class_index", "class_labels", "probs"}


def test_blurr_names_exist_under_every_generation_path() -> None:
    import importlib

    from adapt.blurr._names import PATHS

    for path, names in PATHS.items():
        module = importlib.import_module(f"adapt.blurr.{path}")
        assert set(names) <= set(module.__all__), path
        assert all(getattr(module, n) is not None for n in names)


def test_learner_methods_come_only_with_adapt_blurr_and_override_nothing() -> None:
    code = """
import adapt, adapt.fastai
from fastai.learner import Learner
before = set(dir(Learner))
assert not any(n.startswith("blurr_") for n in before), "import adapt added blurr methods"
import adapt.blurr
added = set(dir(Learner)) - before
assert added == {"blurr_predict", "blurr_predict_tokens", "blurr_predict_answers", "blurr_generate",
                 "blurr_summarize", "blurr_translate", "blurr_fill_mask"}, added
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------------
# from_data for every task, as blurr's docs call it
# ---------------------------------------------------------------------------------------------------
def _frame(task_files: Path, task: str) -> pd.DataFrame:
    from adapt.tasks.token_classification import read_conll

    path = task_files / DATA[task][0]
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    return pd.DataFrame(read_conll(path))


def _easy_same(learn: Any, task: str, inputs: list[Any], tmp_path: Path) -> None:
    import adapt.fastai
    from adapt.tasks import get_task

    from .contract_utils import easy_call

    spec = get_task(task)
    folder = adapt.fastai.save(learn, tmp_path / task)
    assert easy_call(spec, spec.easy(), inputs, folder, "medium") == adapt.fastai.predict(learn, inputs, detail_level="medium")


def test_from_data_sequence_classification_with_pairs_and_multilabel(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.modeling.all import BlearnerForSequenceClassification

    df = _frame(task_files, "sequence_classification").assign(is_valid=lambda d: [i % 5 == 0 for i in range(len(d))])
    learn = BlearnerForSequenceClassification.from_data(df, str(tiny_models["bert"]), text_attr="text",
                                                        label_attr="label", dl_kwargs={"bs": 4})
    learn.fit_one_cycle(1, lr_max=1e-3)
    _easy_same(learn, "sequence_classification", ["Shares fell", "The striker scored"], tmp_path)
    pairs = df.assign(text2=df.text.str[:40])
    learn = BlearnerForSequenceClassification.from_data(pairs, str(tiny_models["bert"]), text_attr=["text", "text2"],
                                                        dl_kwargs={"bs": 4})
    assert set(learn.blurr_predict([("Shares fell", "in London")])[0]) >= {"label", "probs"}
    by_row = learn.blurr_predict(pairs.head(2))  # DataFrame rows, read by the data's own columns
    assert by_row == learn.blurr_predict(list(zip(pairs.text.head(2), pairs.text2.head(2), strict=True)))
    labels = sorted(df.label.unique())
    multi = df.assign(**{lab: (df.label == lab).astype(int) for lab in labels})
    multi[labels[0]] = 1  # a second label on every row
    learn = BlearnerForSequenceClassification.from_data(multi, str(tiny_models["bert"]), label_attr=labels,
                                                        dl_kwargs={"bs": 4})
    res = learn.blurr_predict("Shares fell")[0]
    assert set(res) == {"labels", "scores", "class_indices", "class_labels", "probs"} and res["class_labels"] == labels


def test_from_data_token_classification(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.modeling.all import BlearnerForTokenClassification

    df = _frame(task_files, "token_classification")
    labels = sorted({t for row in df.tags for t in row})
    ids = df.assign(ner_tags=df.tags.map(lambda row: [labels.index(t) for t in row]), is_valid=False)
    ids.loc[ids.index[:8], "is_valid"] = True
    ids.loc[ids.index[:8], "ner_tags"] = ids.loc[ids.index[:8], "tokens"].map(lambda toks: [labels.index("O")] * len(toks))
    learn = BlearnerForTokenClassification.from_data(ids, str(tiny_models["bert"]), tokens_attr="tokens",
                                                     token_labels_attr="ner_tags", labels=labels, dl_kwargs={"bs": 4})
    learn.unfreeze()
    learn.fit_one_cycle(1, lr_max=3e-3, moms=(0.8, 0.7, 0.8), cbs=[BlearnerForTokenClassification.get_metrics_cb()])
    assert "micro avg" in learn.token_classification_report  # seqeval's report, as blurr left it
    res = learn.predict(["Barack Obama visited Paris", "shares in London fell"])
    assert len(res) == 2 and all(isinstance(r, list) for r in res)
    assert all(set(e) == {"entity_group", "score", "word", "start", "end"} for r in res for e in r)
    _easy_same(learn, "token_classification", ["Barack Obama visited Paris"], tmp_path)


def test_from_data_question_answering_after_the_qa_preprocessor(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.data.all import QAPreprocessor
    from adapt.blurr.text.modeling.all import BlearnerForQuestionAnswering

    squad_df = _frame(task_files, "question_answering").assign(is_valid=lambda d: [i % 5 == 0 for i in range(len(d))])
    squad_df["ans_start_char_idx"] = squad_df.answers.apply(lambda v: v["answer_start"][0] if len(v["answer_start"]) > 0 else "0")
    squad_df["answer_text"] = squad_df.answers.apply(lambda v: v["text"][0] if len(v["text"]) > 0 else "")
    squad_df["ans_end_char_idx"] = squad_df["ans_start_char_idx"].astype(int) + squad_df["answer_text"].str.len()
    squad_df = squad_df.drop(columns="answers")
    preprocessor = QAPreprocessor(None, id_attr="id", tok_kwargs={"return_overflowing_tokens": True, "max_length": 96, "stride": 24})
    proc_df = preprocessor.process_df(squad_df)
    learn = BlearnerForQuestionAnswering.from_data(proc_df, str(tiny_models["bert"]), id_attr="id",
                                                   question_attr="proc_question", context_attr="proc_context",
                                                   max_seq_len=96, dl_kwargs={"bs": 4})
    learn.fit_one_cycle(1, lr_max=1e-3)
    context = "George Lucas created Star Wars in 1977. He directed and produced it."
    res = learn.blurr_predict_answers([{"question": "What did George Lucas make?", "context": context}])
    assert set(res[0]) == {"answer", "start", "end", "score"}
    assert res[0]["answer"] is None or context[res[0]["start"]:res[0]["end"]] == res[0]["answer"]
    _easy_same(learn, "question_answering", [{"question": "What did George Lucas make?", "context": context}], tmp_path)


def test_from_data_language_models(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.data.all import BertMLMStrategy
    from adapt.blurr.text.modeling.all import BlearnerForLM

    df = _frame(task_files, "language_modeling").assign(is_valid=lambda d: [i % 5 == 0 for i in range(len(d))])
    learn = BlearnerForLM.from_data(df, str(tiny_models["gpt2"]), text_attr="text", dl_kwargs={"bs": 2})
    learn.fit_one_cycle(1, lr_max=3e-3)
    res = learn.blurr_generate("Blurr is fun to work with because", max_length=8)
    assert list(res[0]) == ["generated_texts"] and isinstance(res[0]["generated_texts"], str)
    _easy_same(learn, "language_modeling", ["The match ended"], tmp_path)
    learn = BlearnerForLM.from_data(df, str(tiny_models["bert"]), lm_strategy_cls=BertMLMStrategy, text_attr="text",
                                    dl_kwargs={"bs": 2})
    learn.fit_one_cycle(1, lr_max=3e-3)
    mask = learn.dls.tokenizer.mask_token
    filled = learn.blurr_fill_mask(f"The best place on earth is {mask}.", n_preds=3)
    assert len(filled) == 3 and all(mask not in f for f in filled)


def test_from_data_summarization_and_translation(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.modeling.all import BlearnerForSummarization, BlearnerForTranslation

    df = _frame(task_files, "summarization")
    learn = BlearnerForSummarization.from_data(df, str(tiny_models["bart"]), text_attr="text", summary_attr="summary",
                                               max_length=64, max_target_length=16, dl_kwargs={"bs": 2})
    with pytest.warns(UserWarning, match="BERTScore and METEOR"):
        metrics_cb = BlearnerForSummarization.get_metrics_cb()
    learn.fit_one_cycle(1, lr_max=1e-3, cbs=[metrics_cb])
    assert list(learn.predict("The company reported a loss.")[0]) == ["summary_texts"]
    three = learn.predict("The company reported a loss.", num_return_sequences=3)[0]["summary_texts"]
    assert isinstance(three, list) and len(three) == 3
    _easy_same(learn, "summarization", ["The company reported a loss."], tmp_path)
    wmt_df = _frame(task_files, "translation")
    learn = BlearnerForTranslation.from_data(wmt_df, str(tiny_models["bart"]), src_lang_name="Plain",
                                             src_lang_attr="source", trg_lang_name="Cipher", trg_lang_attr="target",
                                             dl_kwargs={"bs": 2})
    learn.fit_one_cycle(1, lr_max=1e-3)
    assert list(learn.blurr_translate("the market rose")[0]) == ["translation_texts"]


def test_from_data_reads_files_and_lists_of_dicts(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from adapt.blurr.text.modeling.all import BlearnerForSequenceClassification

    df = _frame(task_files, "sequence_classification")
    for path in (tmp_path / "d.csv", tmp_path / "d.jsonl"):
        df.to_csv(path, index=False) if path.suffix == ".csv" else df.to_json(path, orient="records", lines=True)
        learn = BlearnerForSequenceClassification.from_data(path, str(tiny_models["bert"]), dl_kwargs={"bs": 8})
        assert len(learn.dls.train.dataset) + len(learn.dls.valid.dataset) == len(df)
    learn = BlearnerForSequenceClassification.from_data(df.to_dict(orient="records"), str(tiny_models["bert"]))
    assert sorted(learn.dls.vocab) == sorted(df.label.unique())


def test_export_and_load_learner_round_trip(task_files: Path, tiny_models, tmp_path: Path) -> None:
    from fastai.learner import load_learner

    from adapt.blurr.text.modeling.all import BlearnerForSequenceClassification

    df = _frame(task_files, "sequence_classification").assign(is_valid=lambda d: [i % 5 == 0 for i in range(len(d))])
    learn = BlearnerForSequenceClassification.from_data(df, str(tiny_models["bert"]), dl_kwargs={"bs": 4})
    learn.fit_one_cycle(1, lr_max=1e-3)
    learn.export(fname=tmp_path / "export.pkl")
    inf_learn = load_learner(tmp_path / "export.pkl")
    assert len(inf_learn.dls.task_datasets.train) == 0  # the export holds no copy of the data
    texts = ["This movie should not be seen by anyone!!!!", "Shares fell"]
    assert inf_learn.blurr_predict(texts) == learn.blurr_predict(texts)
