"""The fastai door, for every task in the registry (the toy task included: it gets the door from its declaration).

A `DataBlock` with the task's `TaskBlock` gives the batches `TaskDatasets` gives for the same rows; a `Learner`
built by hand with the public callback learns; `show_batch`/`show_results` render through fastai's dispatch; the
learner saves to an adapt folder that Easy, `adapt predict` and `POST /predict` answer from identically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from adapt.errors import AdaptError
from adapt.tasks import get_task

from .contract_utils import DATA, INPUTS, TASK_NAMES, easy_call, max_length, run_cli, server, write_jsonl
from .serving_utils import http


def _frame(path: Path) -> pd.DataFrame:
    from adapt.tasks.token_classification import read_conll

    if path.suffix == ".csv":
        df = pd.read_csv(path)
    elif path.suffix == ".jsonl":
        df = pd.read_json(path, lines=True)
    else:
        df = pd.DataFrame(read_conll(path))
    valid = [i % 5 == 0 for i in range(len(df))]
    if "tags" in df:  # a validation sentence only with tags that training has
        seen = {t for tags, v in zip(df.tags, valid, strict=True) if not v for t in tags}
        valid = [v and set(tags) <= seen for tags, v in zip(df.tags, valid, strict=True)]
    return df.assign(is_valid=valid)


def _dls(task: str, df: pd.DataFrame, model: Path) -> Any:
    from fastai.data.block import DataBlock
    from fastai.data.transforms import ColSplitter

    from adapt.fastai import TaskBlock

    spec = get_task(task)
    block = TaskBlock(task, str(model), max_length=max_length(task), **spec.data_defaults)
    return DataBlock(blocks=block, splitter=ColSplitter()).dataloaders(df, bs=8, shuffle=False)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(torch.equal(a, b))


@pytest.fixture(scope="module")
def fastai_learners(toy_registered, task_files: Path, tiny_models) -> dict[str, tuple[Any, float, float]]:
    """task -> (a hand-built Learner trained 3 epochs, its training-set loss before, after)."""
    import fastai.callback.schedule  # noqa: F401 - fit_one_cycle, as `from fastai.text.all import *` brings it
    from fastai.learner import Learner

    from adapt import set_seed
    from adapt.fastai import HFCallback, HFLoss, hf_splitter
    from adapt.loading import with_head

    out = {}
    for task in TASK_NAMES:
        spec = get_task(task)
        file, kind = DATA[task]
        set_seed(0)
        dls = _dls(task, _frame(task_files / file), tiny_models[kind])
        labels = list(dls.vocab or [])
        model, _ = with_head(spec, str(tiny_models[kind]), _config(tiny_models[kind]), labels, str(tiny_models[kind]), {})
        learn = Learner(dls, model, loss_func=HFLoss(), cbs=[HFCallback()], splitter=hf_splitter)  # outputs: the task's
        before = float(learn.validate(ds_idx=0)[0])
        learn.fit_one_cycle(3, 3e-3)
        out[task] = (learn, before, float(learn.validate(ds_idx=0)[0]))
    return out


def _config(model: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_datablock_batch_is_the_task_datasets_batch(task: str, toy_registered, task_files: Path, tiny_models) -> None:
    spec = get_task(task)
    file, kind = DATA[task]
    df = _frame(task_files / file)
    dls = _dls(task, df, tiny_models[kind])
    dsets = spec.datasets.from_dfs(df[~df.is_valid], tokenizer_name=str(tiny_models[kind]), valid_df=df[df.is_valid],
                                   max_length=max_length(task), **spec.data_defaults)
    theirs = dsets.dataloaders(batch_size=8, shuffle_train=False)
    for ours, want in ((dls.train, theirs.train), (dls.valid, theirs.valid)):
        assert len(ours.dataset) == len(want.dataset)
        torch.manual_seed(0)  # a masked LM's collator masks at random
        a = next(iter(ours))
        torch.manual_seed(0)
        assert _equal(a, next(iter(want))), f"{task}: the DataBlock batch differs from the TaskDatasets batch"
    assert dls.tokenizer is dsets.tokenizer or dls.tokenizer.name_or_path == dsets.tokenizer.name_or_path


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_hand_built_learner_with_the_public_callback_learns(task: str, fastai_learners) -> None:
    _, before, after = fastai_learners[task]
    assert after < before * 0.95, f"{task}: training-set loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("task", TASK_NAMES)
def test_show_batch_and_show_results_render(task: str, fastai_learners, capsys) -> None:
    learn = fastai_learners[task][0]
    shown = learn.dls.show_batch(max_n=3)
    assert isinstance(shown, pd.DataFrame) and len(shown) == 3
    assert capsys.readouterr().out.strip()
    learn.show_results(max_n=2)
    out = capsys.readouterr().out
    assert "predicted" in out, out


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_learner_saves_a_folder_every_door_answers_from_alike(task: str, fastai_learners, tmp_path: Path,
                                                                  capsys) -> None:
    from adapt.fastai import predict, save

    spec = get_task(task)
    learn = fastai_learners[task][0]
    folder = save(learn, tmp_path / "model")
    assert (folder / "adapt.json").is_file()
    inputs = INPUTS[task]
    want = easy_call(spec, spec.easy(), inputs, folder, "medium")
    assert predict(learn, inputs, detail_level="medium") == want
    path = write_jsonl(tmp_path / "inputs.jsonl", inputs)
    code, out, err = run_cli(capsys, "predict", folder, "--file", path, "--detail-level", "medium", "--output", "json")
    assert code == 0, err
    assert json.loads(out) == want
    with server(folder) as base:
        status, got = http("POST", f"{base}/predict", {"texts": inputs, "detail_level": "medium"})
    assert status == 200 and got == want


def test_a_tuner_from_fastai_dataloaders_exports_an_int8_copy(fastai_learners, tmp_path: Path) -> None:
    from adapt import EasySequenceClassifier, SequenceClassificationTuner

    learn = fastai_learners["sequence_classification"][0]
    tuner = SequenceClassificationTuner(learn.dls, learn.hf_model)  # fastai dataloaders that carry a tokenizer
    assert tuner.classes == list(learn.dls.vocab) and tuner.datasets is learn.dls.task_datasets
    tuner.export(tmp_path / "dist", quantize=True, on_parity_fail="warn")  # the int8 copy, checked on held-out rows
    assert (tmp_path / "dist" / "adapt.json").is_file()
    texts = ["Shares fell sharply", "The striker scored twice"]
    quick = EasySequenceClassifier().tag_text(texts, str(tmp_path / "dist"))
    assert len(quick["predictions"]) == 2 and all(p in learn.dls.vocab for p in quick["predictions"])


def test_a_labelled_test_set_is_encoded_as_the_validation_rows(fastai_learners, bbc_df) -> None:
    learn = fastai_learners["sequence_classification"][0]
    rows = bbc_df.groupby("label").head(2).assign(text=lambda d: d.text.str[:300])[["text", "label"]]
    dl = learn.dls.test_dl(rows)
    preds, targets = learn.get_preds(dl=dl)
    assert preds.shape == (len(rows), len(learn.dls.vocab))
    assert [learn.dls.vocab[i] for i in targets.tolist()] == list(rows.label)
    with pytest.raises(AdaptError, match="label"):  # rows without the label column: the task's own error
        learn.dls.test_dl(rows[["text"]])


def test_rows_without_column_names_are_refused(tiny_models) -> None:
    from fastai.data.block import DataBlock
    from fastai.data.transforms import RandomSplitter

    from adapt.fastai import TaskBlock

    block = DataBlock(blocks=TaskBlock("classification", str(tiny_models["bert"])), splitter=RandomSplitter(seed=0))
    with pytest.raises(AdaptError, match="named columns"):
        block.dataloaders(["just a text", "another text", "a third"], bs=2)


def test_readme_fastai_fastxtend_and_blurr_sections_run(tmp_path: Path) -> None:
    """The README's three fastai-door sections, each run as written on its own."""
    import sys

    from .readme_utils import section_blocks
    from .test_docs import _README_DRIVER, _run, _tiny_env

    env = _tiny_env(ADAPT_README_FASTAI_DOCS="40", ADAPT_README_FASTAI_EPOCHS="1")
    ns, printed = {}, ""
    for heading in ("The fastai way: your own DataBlock and Learner", "Coming from fastxtend", "Coming from blurr"):
        blocks = section_blocks(heading, "python")
        assert len(blocks) == 1, heading
        proc = _run([sys.executable, "-c", _README_DRIVER], cwd=tmp_path, env=env, stdin=json.dumps(blocks))
        out, _, tail = proc.stdout.rpartition("@@NAMESPACE@@")
        ns, printed = {**ns, **json.loads(tail)}, printed + out
    assert ns["same"] is True, "Easy differs from adapt.fastai.predict"
    assert ns["reloaded"]["probs"][0] == pytest.approx(ns["answer"]["probs"][0], abs=1e-6)
    assert "predicted labels" in printed and "prediction" in printed  # show_results of both doors
    assert set(ns["blurr_answer"][0]) == {"label", "score", "class_index", "class_labels", "probs"}
    for folder in ("models/fastai-news", "models/fastxtend-news", "models/blurr-news"):
        assert (tmp_path / folder / "adapt.json").is_file(), folder


def test_regression_through_the_datablock_and_blurr_doors(bbc_df, tiny_models, tmp_path: Path) -> None:
    import fastai.callback.schedule  # noqa: F401 - fit_one_cycle
    from fastai.data.block import DataBlock
    from fastai.data.transforms import ColSplitter
    from fastai.learner import Learner

    from adapt import EasySequenceClassifier, set_seed
    from adapt.blurr.text.modeling.all import BlearnerForSequenceClassification
    from adapt.fastai import HFCallback, HFLoss, TaskBlock, predict, save
    from adapt.loading import with_head

    set_seed(0)
    rows = bbc_df.head(60).reset_index(drop=True)
    marks = [i % 4 for i in range(len(rows))]  # the target: how many marker words open the text
    df = pd.DataFrame({"text": [" ".join(["goal"] * m + [t[:150]]) for m, t in zip(marks, rows.text, strict=True)],
                       "score": [float(m) for m in marks], "is_valid": [i % 5 == 0 for i in range(len(rows))]})
    bert = str(tiny_models["bert"])
    dls = DataBlock(blocks=TaskBlock("classification", bert, "text", "score", regression=True, max_length=48),
                    splitter=ColSplitter()).dataloaders(df, bs=8)
    assert dls.one_batch()[1].dtype == torch.float32
    model, _ = with_head(get_task("classification"), bert, _config(tiny_models["bert"]), ["score"], bert,
                         {"problem_type": "regression"})
    learn = Learner(dls, model, loss_func=HFLoss(), cbs=[HFCallback()])
    before = float(learn.validate(ds_idx=0)[0])
    learn.fit_one_cycle(4, 3e-3)
    assert float(learn.validate(ds_idx=0)[0]) < 0.5 * before
    texts = ["goal goal goal Shares fell", "Shares fell"]
    folder = save(learn, tmp_path / "reg")
    got = predict(learn, texts)
    assert all(isinstance(v, float) for v in got["predictions"])
    assert EasySequenceClassifier().tag_text(texts, str(folder))["predictions"] == pytest.approx(got["predictions"], abs=1e-5)
    blurr = BlearnerForSequenceClassification.from_data(df, bert, label_attr="score", n_labels=1, dl_kwargs={"bs": 8})
    assert blurr.model.hf_model.config.problem_type == "regression"
    assert isinstance(blurr.blurr_predict("Shares fell")[0]["label"], float)


def test_interpretation_and_show_results_with_a_fastai_loss(fastai_learners) -> None:
    from fastai.interpret import ClassificationInterpretation
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat

    from adapt.fastai import HFCallback

    learn = fastai_learners["sequence_classification"][0]
    interp = ClassificationInterpretation.from_learner(learn)  # per-item losses from HFLoss(reduction="none")
    losses, _idx = interp.top_losses(3)
    assert len(losses) == 3 and bool((losses >= 0).all()) and losses[0] >= losses[-1]
    plain = Learner(learn.dls, learn.hf_model, loss_func=CrossEntropyLossFlat(), cbs=[HFCallback()])
    dl = learn.dls.valid
    b = dl.one_batch()
    _, _, decoded = plain.get_preds(dl=[b], with_decoded=True)  # class ids, as fastai's show_results passes them
    _, _, _samples, predicted = dl.show_results(b, decoded, show=False)
    assert all(p["labels"] in learn.dls.vocab for p in predicted), predicted
