"""LoRA adapters (peft) for every task: only the adapter and the head train, the adapter folder carries adapt's
manifest and loads in Easy, the CLI and the server; a merged save is a plain transformers model with the same
answers. Tiny models, a few steps."""
from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from adapt.errors import InvalidChoiceError, ModelNotFoundError
from adapt.tasks import get_task

from .contract_utils import INPUTS, TASK_NAMES, datasets_for, easy_call, json_close, run_cli, server, tuner_call
from .serving_utils import http

pytest.importorskip("peft")


def _base_here(tuner: Any) -> str:
    """Where the base of a tuner's adapter is on this machine (its folder: the adapter records its name only)."""
    return tuner.base_model


def _lora(trained_tasks: Any, task: str, **kwargs: Any) -> Any:
    from adapt import set_seed

    base, folder = trained_tasks[task]
    set_seed(0)
    return get_task(task).tuner(base.dls, str(folder), peft="lora", **kwargs)


@pytest.fixture(scope="module")
def lora_ner(trained_tasks, tmp_path_factory) -> tuple[Any, dict[str, Any], dict[str, torch.Tensor], Path]:
    """A LoRA NER tuner before and after 2 epochs (lr from the LR finder), and its adapter folder."""
    tuner = _lora(trained_tasks, "token_classification")
    before = tuner.evaluate()
    frozen = {n: p.detach().clone() for n, p in tuner.model.named_parameters() if not p.requires_grad}
    tuner.tune(2, lr=None, strategy="flat_cos")
    return tuner, before, frozen, tuner.save(tmp_path_factory.mktemp("lora") / "ner-adapter")


def test_lora_trains_only_the_adapter_and_the_head_and_learns(lora_ner) -> None:
    tuner, before, frozen, _ = lora_ner
    entry = tuner.manifest()["adapter"]
    assert entry["type"] == "LORA" and entry["r"] == 8 and set(entry["target_modules"]) == {"query", "value"}
    assert entry["modules_to_save"] == ["classifier"]  # what the model has, whatever names peft lists
    assert 0 < entry["trainable_params"] < 0.05 * entry["total_params"]
    for name, p in tuner.model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} is frozen but changed"
    groups = tuner.learn.opt.param_lists
    assert sum(p.numel() for g in groups for p in g) == entry["trainable_params"]  # layer groups: trainable only
    assert len(groups) > 1 and tuner.lr_suggestion is not None  # discriminative groups; lr=None ran the finder
    assert tuner.evaluate()["valid_loss"] < 0.8 * before["valid_loss"]


def test_the_adapter_folder_has_the_manifest_labels_and_checksums_and_is_small(lora_ner, trained_tasks) -> None:
    from adapt.modelio import check_hf_folder
    from adapt.utils import sha256_file

    tuner, _, _, folder = lora_ner
    names = {p.name for p in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "adapt.json", "README.md"} <= names
    assert "model.safetensors" not in names
    manifest = check_hf_folder(folder, strict=True)
    assert manifest["labels"] == tuner.classes and manifest["adapter"]["type"] == "LORA"
    assert manifest["files"] == {"adapter_model.safetensors": sha256_file(folder / "adapter_model.safetensors")}
    assert json.loads((folder / "config.json").read_text())["id2label"]["0"] == tuner.classes[0]
    full = trained_tasks["token_classification"][1] / "model.safetensors"
    assert (folder / "adapter_model.safetensors").stat().st_size < 0.1 * full.stat().st_size


def test_easy_cli_and_server_load_the_adapter_folder_and_agree(lora_ner, capsys) -> None:
    spec = get_task("token_classification")
    tuner, _, _, folder = lora_ner
    inputs = INPUTS["token_classification"]
    want = tuner_call(spec, tuner, inputs, "high")
    base = str(_base_here(tuner))  # a local base: each door is told where it is
    assert json_close(easy_call(spec, spec.easy(adapter_base=base), inputs, folder, "high"), want)
    code, out, err = run_cli(capsys, "predict", str(folder), *inputs, "--output", "json", "--detail-level", "high",
                             "--adapter-base", base)
    assert code == 0 and json_close(json.loads(out), want), (out, err)
    with server(folder, adapter_base=base) as base:
        status, got = http("POST", f"{base}/predict", {"texts": inputs, "detail_level": "high"})
    assert status == 200 and json_close(got, want), got


def test_merged_save_and_export_are_plain_transformers_models_with_the_same_answers(trained_tasks, tmp_path) -> None:
    import transformers

    tuner = _lora(trained_tasks, "sequence_classification")
    tuner.tune(1, lr=1e-2)
    texts = [*INPUTS["sequence_classification"][:1], "The minister resigned on Monday", "Shares fell sharply"]
    want = tuner.predict(texts)
    merged = tuner.save(tmp_path / "merged", merged=True)
    names = {p.name for p in merged.iterdir()}
    assert "model.safetensors" in names and "adapter_config.json" not in names
    manifest = json.loads((merged / "adapt.json").read_text())
    assert "adapter" not in manifest and manifest["merged_adapter"]["max_relative_diff"] < 1e-4
    card = (merged / "README.md").read_text()  # the card of what the folder holds: a plain model, not an adapter
    assert "library_name: transformers" in card and "library_name: peft" not in card
    assert tuner.is_adapter  # the tuner keeps training its adapter after a merged save
    pipe = transformers.pipeline("text-classification", model=str(merged), tokenizer=str(merged), top_k=None)
    plain = [max(scores, key=lambda s: s["score"])["label"] for scores in pipe(texts)]
    assert plain == want["predictions"]
    exported = tuner.export(tmp_path / "exported", quantize=True, parity_texts=texts, on_parity_fail="warn")
    assert "adapter_config.json" not in {p.name for p in exported.iterdir()}
    assert get_task("sequence_classification").easy().tag_text(texts, str(exported))["predictions"] == want["predictions"]


@pytest.mark.parametrize("task", [t for t in TASK_NAMES if t not in ("token_classification", "upper_case")])
def test_every_task_trains_an_adapter_that_easy_loads(task: str, trained_tasks, tmp_path) -> None:
    spec = get_task(task)
    tuner = _lora(trained_tasks, task)
    assert 0 < tuner.manifest()["adapter"]["trainable_params"] < tuner.manifest()["adapter"]["total_params"] / 4
    tuner.tune(1, lr=1e-3)
    folder = tuner.save(tmp_path / task)
    assert (folder / "adapter_config.json").is_file()
    easy = spec.easy(adapter_base=_base_here(tuner))
    assert json_close(easy_call(spec, easy, INPUTS[task], folder, "low"), tuner_call(spec, tuner, INPUTS[task], "low"))


def test_an_adapter_on_a_bare_encoder_records_the_heads_architecture(trained_tasks, tiny_models, tmp_path) -> None:
    """A base without a head (MiniLM's config names `BertModel`): the adapter folder's config names the head."""
    spec = get_task("sequence_classification")
    base, _ = trained_tasks["sequence_classification"]
    tuner = spec.tuner(base.dls, str(tiny_models["bert"]), peft="lora")
    folder = tuner.save(tmp_path / "adapter")
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    texts = INPUTS["sequence_classification"]
    easy = spec.easy(adapter_base=str(tiny_models["bert"]))
    assert json_close(easy_call(spec, easy, texts, folder, "low"), tuner_call(spec, tuner, texts, "low"))


def test_a_missing_base_model_is_named(lora_ner, tmp_path) -> None:
    spec = get_task("token_classification")
    folder = tmp_path / "moved"
    shutil.copytree(lora_ner[3], folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone" / "base-model")
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match=r"needs its base model .*gone/base-model.*merged=True"):
        easy_call(spec, spec.easy(), INPUTS["token_classification"], folder, "low")


def test_an_unknown_peft_kind_names_the_closest(trained_tasks, task_files, tmp_path, capsys) -> None:
    base, folder = trained_tasks["sequence_classification"]
    with pytest.raises(InvalidChoiceError, match="Did you mean 'lora'"):
        get_task("sequence_classification").tuner(base.dls, str(folder), peft="lorra")
    code, _, err = run_cli(capsys, "tune", str(task_files / "cls.csv"), "--out", str(tmp_path / "x"), "--model", "m",
                           "--peft", "loar")
    assert code == 2 and "Did you mean 'lora'" in err and len(err.strip().splitlines()) == 1, err


def test_adapt_tune_peft_lora_saves_an_adapter(task_files, tiny_models, tmp_path, capsys) -> None:
    code, out, err = run_cli(capsys, "tune", str(task_files / "cls.csv"), "--out", str(tmp_path / "cls"), "--model",
                             str(tiny_models["bert"]), "--peft", "lora", "--max-length", "32", "--lr", "1e-3")
    assert code == 0, err
    saved = json.loads(out)
    manifest = json.loads((Path(saved["saved"]) / "adapt.json").read_text())
    assert manifest["adapter"]["type"] == "LORA" and (tmp_path / "cls" / "adapter_config.json").is_file()


def test_a_peft_model_given_as_the_model_trains_as_it_is(trained_tasks) -> None:
    import peft
    import transformers

    base, folder = trained_tasks["sequence_classification"]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query"])
    tuner = get_task("sequence_classification").tuner(base.dls, peft.get_peft_model(model, config))
    entry = tuner.manifest()["adapter"]
    assert entry["r"] == 4 and entry["target_modules"] == ["query"]
    tuner.tune(1, lr=1e-3)
    assert sum(p.numel() for g in tuner.learn.opt.param_lists for p in g) == entry["trainable_params"]


def test_peft_on_an_adapter_folder_and_a_frozen_peft_model_are_refused(lora_ner, trained_tasks, task_files, tmp_path,
                                                                        capsys) -> None:
    import peft
    import transformers

    from adapt.errors import InvalidInputError

    spec = get_task("token_classification")
    tuner, _, _, folder = lora_ner
    with pytest.raises(InvalidInputError, match=r"merged=True"):
        spec.tuner(tuner.dls, str(folder), peft="lora", adapter_base=_base_here(tuner))
    merged_on = spec.tuner(tuner.dls, str(folder), adapter_base=_base_here(tuner))  # without peft= it trains on merged
    assert not merged_on.is_adapter
    base = transformers.AutoModelForTokenClassification.from_pretrained(trained_tasks["token_classification"][1])
    frozen = peft.PeftModel.from_pretrained(base, str(folder), is_trainable=False)
    with pytest.raises(InvalidInputError, match="is_trainable=True"):
        spec.tuner(tuner.dls, frozen)
    code, _, err = run_cli(capsys, "tune", str(task_files / "cls.csv"), "--out", str(tmp_path / "x"), "--model", "m",
                           "--merged")
    assert code == 2 and "needs --peft lora" in err, err


def test_a_lora_config_without_a_task_type_still_trains_and_saves_the_head(trained_tasks, tmp_path) -> None:
    """A user's LoraConfig is completed as `peft="lora"` is (task type, heads to save) and left as given."""
    import peft
    from safetensors.torch import load_file

    base, folder = trained_tasks["sequence_classification"]
    config = peft.LoraConfig(r=4, target_modules=["query", "value"])
    tuner = get_task("sequence_classification").tuner(base.dls, str(folder), peft=config)
    assert config.task_type is None and config.modules_to_save is None  # the caller's object is untouched
    head = [n for n, p in tuner.model.named_parameters() if "classifier" in n and p.requires_grad]
    assert head, "the new head must train next to the adapter"
    saved = load_file(tuner.save(tmp_path / "adapter") / "adapter_model.safetensors")
    assert any("classifier" in key for key in saved), sorted(saved)[:5]


def test_lora_finds_attention_projections_where_peft_has_no_default() -> None:
    import peft
    import transformers

    from adapt.adapters import lora_config, wrap
    from adapt.errors import InvalidInputError

    distil = transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
        vocab_size=50, dim=16, hidden_dim=32, n_layers=1, n_heads=2, num_labels=3))
    config = lora_config("lora", "sequence_classification", distil)
    assert sorted(config.target_modules) == ["q_lin", "v_lin"]
    assert wrap(distil, "lora", "sequence_classification").adapt_trainable  # peft 0.21 alone raises ValueError

    class Mystery(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = transformers.PretrainedConfig()
            self.proj = torch.nn.Linear(4, 4)

    with pytest.raises(InvalidInputError, match=r"no default target modules.*LoraConfig\(target_modules=.*'proj'"):
        lora_config("lora", "sequence_classification", Mystery())
    bert = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(InvalidInputError, match="peft cannot put this adapter on the model"):
        wrap(bert, peft.LoraConfig(target_modules=["nowhere"]), "sequence_classification")


def _plain_five_label_base(trained_tasks: Any, tmp_path: Path) -> Path:
    """The trained BBC classifier as a plain transformers folder (no adapt.json), as a Hub model would be."""
    import transformers

    folder = tmp_path / "five-labels"
    for auto in (transformers.AutoModelForSequenceClassification, transformers.AutoTokenizer):
        auto.from_pretrained(trained_tasks["sequence_classification"][1]).save_pretrained(folder)
    return folder


def test_an_adapter_on_a_base_whose_head_was_resized_loads(trained_tasks, task_files, tmp_path) -> None:
    """A plain 5-label base (as from the Hub) tuned with LoRA for 3 labels: loading the adapter folder replaces
    the base's head with the adapter's."""
    import pandas as pd

    spec = get_task("sequence_classification")
    folder = _plain_five_label_base(trained_tasks, tmp_path)
    table = pd.read_csv(task_files / "cls.csv")
    three = table[table.label.isin(sorted(set(table.label))[:3])]
    three.to_csv(tmp_path / "three.csv", index=False)
    dls = datasets_for(spec, tmp_path / "three.csv", folder).dataloaders(batch_size=8)
    tuner = spec.tuner(dls, str(folder), peft="lora")
    saved = tuner.save(tmp_path / "adapter")
    texts = INPUTS["sequence_classification"]
    got = easy_call(spec, spec.easy(adapter_base=str(folder)), texts, saved, "low")
    assert json_close(got, tuner_call(spec, tuner, texts, "low"))
    assert set(got["predictions"]) <= set(three.label), got


def test_an_adapter_that_lacks_a_resized_head_is_refused_not_served_random(trained_tasks, tmp_path) -> None:
    """An adapter made with peft directly on a resized head without saving it: the head would load random."""
    import peft
    import transformers

    from adapt.loading import load_adapter_model
    from adapt.errors import CorruptModelError

    auto = transformers.AutoModelForSequenceClassification
    model = auto.from_pretrained(_plain_five_label_base(trained_tasks, tmp_path), num_labels=3, ignore_mismatched_sizes=True)
    adapter = peft.get_peft_model(model, peft.LoraConfig(target_modules=["query"]))  # the head is not saved
    adapter.save_pretrained(tmp_path / "adapter")
    with pytest.raises(CorruptModelError, match=r"classifier\.weight.\] it resized or added, but it does not carry them \(not in modules_to_save\)"):
        load_adapter_model(tmp_path / "adapter", auto, model.config)


def _hub_cache(root: Path, repo_id: str, files: Path) -> Path:
    """A Hugging Face cache holding `files` as the downloaded snapshot of `repo_id`."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(files, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return root


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_shared_adapter_folder_names_its_base_loads_elsewhere_and_its_card_runs(trained_tasks, tiny_models, tmp_path,
                                                                                   monkeypatch) -> None:
    """The adapter folder holds no path of this machine; copied elsewhere with its base moved, it loads given the
    base's new place, or by the base's name from the Hub cache, as its card's peft and adapt snippets do."""
    from huggingface_hub import ModelCard

    spec = get_task("sequence_classification")
    base_dir = tmp_path / "bases" / "tiny-bert"
    shutil.copytree(tiny_models["bert"], base_dir)
    dls = trained_tasks["sequence_classification"][0].dls
    tuner = spec.tuner(dls, str(base_dir), peft="lora", base_model_name="acme/tiny-bert")
    tuner.tune(1, lr=1e-3)
    texts = INPUTS["sequence_classification"]
    want = tuner_call(spec, tuner, texts, "low")
    folder = tuner.save(tmp_path / "work" / "adapter", card_examples=True)
    for f in folder.iterdir():
        if f.suffix in (".json", ".md"):
            assert str(tmp_path) not in f.read_text() and "/tmp/" not in f.read_text(), f.name
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "acme/tiny-bert"
    moved, moved_base = tmp_path / "elsewhere" / "adapter", tmp_path / "moved" / "tiny-bert"
    shutil.move(folder, moved)
    shutil.move(base_dir, moved_base)

    with pytest.raises(ModelNotFoundError, match=r"acme/tiny-bert.*adapter_base="):
        easy_call(spec, spec.easy(), texts, moved, "low")
    records = _Records()
    logging.getLogger("transformers").addHandler(records)
    try:
        got = easy_call(spec, spec.easy(adapter_base=str(moved_base)), texts, moved, "low")
    finally:
        logging.getLogger("transformers").removeHandler(records)
    assert json_close(got, want)
    assert not [m for m in records.messages if "newly initialized" in m], records.messages  # the head is the adapter's

    card = ModelCard.load(moved / "README.md")
    meta = card.data.to_dict()
    assert meta["library_name"] == "peft" and "lora" in meta["tags"] and meta["base_model"] == "acme/tiny-bert"
    assert "LoRA adapter" in card.text and "`acme/tiny-bert`" in card.text
    assert " ".join(tuner.heldout_texts(1)[0].split()[:6]) in card.text  # the user allowed their own examples
    script = "\n".join(re.findall(r"```python\n(.*?)```", card.text, flags=re.S))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(_hub_cache(tmp_path / "hub", "acme/tiny-bert", moved_base))}
    proc = subprocess.run([sys.executable, "-c", script], cwd=moved, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    adapt_out, peft_out = (ast.literal_eval(line) for line in proc.stdout.strip().splitlines()[-2:])
    shown = tuner.predict(adapt_out["sentences"])["predictions"]
    assert adapt_out["predictions"] == shown == [peft_out[0]["label"]], proc.stdout  # adapt's snippet and peft's agree


def test_an_adapter_of_a_local_base_says_so_and_the_cli_takes_its_place(lora_ner, trained_tasks, task_files, capsys) -> None:
    spec = get_task("token_classification")
    tuner, _, _, folder = lora_ner
    card = (folder / "README.md").read_text()
    assert "adapter_base='path/to/" in card and "a local model" in card
    assert "Your text here." in card and "striker" not in card  # placeholders, not another domain's example
    inputs = INPUTS["token_classification"]
    base = str(trained_tasks["token_classification"][1])
    code, out, err = run_cli(capsys, "predict", str(folder), *inputs, "--output", "json")
    assert code == 2 and "--adapter-base" in err, err
    code, out, err = run_cli(capsys, "predict", str(folder), *inputs, "--output", "json", "--adapter-base", base)
    assert code == 0 and json_close(json.loads(out), tuner_call(spec, tuner, inputs, "low")), err
    code, out, err = run_cli(capsys, "evaluate", str(folder), str(task_files / "ner.conll"), "--adapter-base", base)
    assert code == 0 and "f1" in json.loads(out)["metrics"], err


def test_an_adapter_that_lacks_a_new_head_is_refused_not_served_random(tiny_models, tmp_path) -> None:
    """A head the base lacks (a bare encoder) that the adapter does not carry would load random: refused. A LoRA
    matrix of another module does not count as carrying it."""
    import peft
    import transformers

    from adapt.loading import load_adapter_model
    from adapt.errors import CorruptModelError

    auto = transformers.AutoModelForSequenceClassification
    model = auto.from_pretrained(tiny_models["bert"], num_labels=3)
    adapter = peft.get_peft_model(model, peft.LoraConfig(target_modules=["query"]))  # no task type: no head saved
    adapter.save_pretrained(tmp_path / "adapter")
    with pytest.raises(CorruptModelError, match=r"classifier\.weight.*resized or added"):
        load_adapter_model(tmp_path / "adapter", auto, model.config, str(tiny_models["bert"]))
