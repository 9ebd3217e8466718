"""The family matrix: every backbone family users bring, through every task it supports and every door.

Each family is a tiny random-weight model (hidden size 64, 2 layers) with a real tokenizer of its kind
(`tests/families.py`). Per (family, task) cell: tune a few epochs on a few dozen rows (the training loss falls),
predict, save, reload with Easy (the same answers), answer through `adapt predict` and `POST /predict` (the same
answers again), train and reload a LoRA adapter, and export int8/ONNX copies where the task allows them. Entity,
word and answer spans are checked against gold character spans. The per-task test files check learning in depth.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapt.errors import InvalidChoiceError
from adapt.tasks import get_task

from .contract_utils import (
    DATA,
    INPUTS,
    datasets_for,
    easy_call,
    json_close,
    max_length,
    run_cli,
    server,
    tuner_call,
    write_jsonl,
)
from .families import DECODER_TASKS, ENCODER_TASKS, FAMILIES, SEQ2SEQ_TASKS, build
from .serving_utils import http

CELLS = [(family, task) for family, f in FAMILIES.items() for task in f.tasks]
DECODERS = {family for family, f in FAMILIES.items() if f.tasks == DECODER_TASKS}
# enough epochs for each task's training loss to fall clearly on its few dozen rows (seconds per cell)
EPOCHS = {"sequence_classification": 20, "token_classification": 12, "question_answering": 5, "masked_language_modeling": 8,
          "language_modeling": 6, "summarization": 6, "translation": 6}
LR = 3e-3


@pytest.fixture(scope="session")
def family_dir(bbc_df, cipher_df, tmp_path_factory) -> Callable[[str], Path]:
    """`family_dir(name)`: the family's tiny model folder, built once per session on first use."""
    texts = [*bbc_df.text[:120], *cipher_df.source[:300], *cipher_df.target[:300]]
    root = tmp_path_factory.mktemp("families")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build(name, texts, root / name)
        return built[name]

    return get


@pytest.fixture(scope="session")
def family_tuned(family_dir, task_files: Path, tmp_path_factory) -> Callable[[str, str], tuple[Any, Path, list[float]]]:
    """`family_tuned(family, task)`: (tuner, saved folder, per-epoch training losses), trained once per session."""
    from adapt import set_seed

    root = tmp_path_factory.mktemp("family-tuned")
    done: dict[tuple[str, str], tuple[Any, Path, list[float]]] = {}

    def get(family: str, task: str) -> tuple[Any, Path, list[float]]:
        if (family, task) not in done:
            spec = get_task(task)
            set_seed(0)
            dsets = datasets_for(spec, task_files / DATA[task][0], family_dir(family))
            tuner = spec.tuner(dsets.dataloaders(batch_size=8), str(family_dir(family)))
            tuner.tune(EPOCHS[task], lr=LR)
            losses = [row["train_loss"] for row in tuner.history()]
            done[family, task] = (tuner, tuner.save(root / f"{family}-{task}"), losses)
        return done[family, task]

    return get


def _gold_words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def _check_spans(task: str, inputs: list[Any], high: dict[str, Any]) -> None:
    """Tagged words cover exactly the gold words, entities whole gold words, answers start and end on word edges."""
    if task == "token_classification":
        for text, words, entities in zip(inputs, high["tokens"], high["entities"], strict=True):
            assert [(w["start"], w["end"]) for w in words] == _gold_words(text), (text, words)
            assert all(text[w["start"]:w["end"]] == w["word"] for w in words)
            _on_word_edges(text, [(e["start"], e["end"], e["text"]) for e in entities])
    if task == "question_answering":
        for item, candidates in zip(inputs, high["best_n"], strict=True):
            _on_word_edges(item["context"], [(a["start"], a["end"], a["answer"]) for a in candidates], whole=False)


def _on_word_edges(text: str, spans: list[tuple[int, int, str]], whole: bool = True) -> None:
    """Each span is its text, with no space at either edge; `whole`: it starts and ends where gold words do."""
    gold = _gold_words(text)
    for start, end, got in spans:
        assert text[start:end] == got and got == got.strip() and got, (text, start, end, got)
        if whole:
            assert start in {s for s, _ in gold} and end in {e for _, e in gold}, (text, start, end, got)


def _inputs(task: str, tokenizer: Any) -> list[Any]:
    """The task's inputs, with this tokenizer's mask token where the fill-mask inputs hold BERT's."""
    return [t.replace("[MASK]", tokenizer.mask_token) if isinstance(t, str) and tokenizer.mask_token else t
            for t in INPUTS[task]]


@pytest.mark.parametrize(("family", "task"), CELLS)
def test_family_learns_predicts_saves_reloads_and_serves(family: str, task: str, family_tuned, tmp_path: Path, capsys) -> None:
    spec = get_task(task)
    tuner, folder, losses = family_tuned(family, task)
    assert losses[-1] < 0.9 * losses[0], f"{family} {task}: training loss did not fall ({losses})"
    inputs = _inputs(task, tuner.tokenizer)
    easy = spec.easy()
    want = tuner_call(spec, tuner, inputs, "high")
    got = easy_call(spec, easy, inputs, folder, "high")
    assert json_close(got, want), f"{family} {task}: Easy after save differs from Tuner.predict"
    _check_spans(task, inputs, got)
    if task == "token_classification":  # trained on pre-split words, served raw text: both tokenize alike
        from transformers import AutoTokenizer

        saved = AutoTokenizer.from_pretrained(folder)
        words = inputs[0].split()
        assert saved(words, is_split_into_words=True).input_ids == saved(" ".join(words)).input_ids
    low = easy_call(spec, easy, inputs, folder, "low")
    path = write_jsonl(tmp_path / "inputs.jsonl", inputs)
    code, out, err = run_cli(capsys, "predict", folder, "--file", path, "--output", "json")
    assert code == 0, err[-2000:]
    assert json.loads(out) == low
    with server(folder) as base:
        status, body = http("POST", f"{base}/predict", {"texts": inputs})
    assert status == 200 and body == low, body


@pytest.mark.parametrize(("family", "task"), CELLS)
def test_family_lora_adapter_saves_and_reloads(family: str, task: str, family_dir, task_files: Path, tmp_path: Path) -> None:
    """A LoRA adapter of every family and task saves as an adapter folder that Easy loads back, same answers."""
    from adapt import set_seed

    spec = get_task(task)
    set_seed(0)
    dsets = datasets_for(spec, task_files / DATA[task][0], family_dir(family))
    tuner = spec.tuner(dsets.dataloaders(batch_size=8), str(family_dir(family)), peft="lora")
    tuner.tune(1, lr=LR)
    folder = tuner.save(tmp_path / "adapter")
    assert (folder / "adapter_config.json").is_file() and not (folder / "model.safetensors").exists()
    inputs = _inputs(task, tuner.tokenizer)
    got = easy_call(spec, spec.easy(adapter_base=str(family_dir(family))), inputs, folder, "high")
    assert json_close(got, tuner_call(spec, tuner, inputs, "high"), tol=1e-3), f"{family} {task}: adapter reload differs"


EXPORT_CELLS = [(family, task) for family, task in CELLS if get_task(task).fast_copies]


@pytest.mark.parametrize(("family", "task"), EXPORT_CELLS)
def test_family_fast_copies_export_and_answer(family: str, task: str, family_tuned, tmp_path: Path) -> None:
    """int8 (and ONNX where the task allows it) copies of every family's model: written, verified, loaded by Easy."""
    spec = get_task(task)
    tuner, _, _ = family_tuned(family, task)
    inputs = _inputs(task, tuner.tokenizer)
    onnx = "onnx" in spec.fast_copies and family not in DECODERS
    if "onnx" in spec.fast_copies and not onnx:  # refused before any work, naming the family and the step
        refusal = re.escape(f"(decoder-only, model type {FAMILIES[family].model_type!r}) have no ONNX copy")
        with pytest.raises(InvalidChoiceError, match=refusal):
            tuner.export(tmp_path / "refused", quantize=True, onnx=True)
        assert not (tmp_path / "refused").exists()
    folder = tuner.export(tmp_path / "exported", quantize=True, onnx=onnx, on_parity_fail="warn")
    manifest = json.loads((folder / "adapt.json").read_text())
    assert "quantized" in manifest and ("onnx" in manifest) == onnx
    fp32 = easy_call(spec, spec.easy(precision="fp32"), inputs, folder, "low")
    assert json_close(fp32, tuner_call(spec, tuner, inputs, "low"))
    for precision in ("int8", *(["onnx"] if onnx else [])):
        got = easy_call(spec, spec.easy(precision=precision), inputs, folder, "low")
        assert got.keys() == fp32.keys(), f"{family} {task} {precision}"


# the task whose CLI path a family is most likely to break: NER (pre-split words) for encoders, classification
# (padding) for decoders, translation for encoder-decoders
CLI_TASK = {ENCODER_TASKS: "token_classification", DECODER_TASKS: "sequence_classification", SEQ2SEQ_TASKS: "translation"}


def _cli_task(family: str) -> str:
    return CLI_TASK[FAMILIES[family].tasks]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_cli_round_trip(family: str, family_dir, task_files: Path, tmp_path: Path, capsys) -> None:
    """`adapt tune` then `adapt predict` on every family, as the README shows them."""
    task = _cli_task(family)
    spec = get_task(task)
    out = tmp_path / "model"
    code, stdout, err = run_cli(
        capsys, "tune", task_files / DATA[task][0], "--task", task, "--model", family_dir(family), "--out", out,
        "--epochs", "1", "--lr", str(LR), "--batch-size", "8", "--max-length", max_length(task),
    )
    assert code == 0, err[-3000:]
    assert json.loads(stdout)["saved"] == str(out)
    inputs = write_jsonl(tmp_path / "inputs.jsonl", INPUTS[task])
    code, stdout, err = run_cli(capsys, "predict", out, "--file", inputs, "--output", "json")
    assert code == 0, err[-3000:]
    assert json.loads(stdout) == easy_call(spec, spec.easy(), INPUTS[task], out, "low")


# a family and a task its architecture has no head for in transformers
REFUSED = [("Marian", "sequence_classification", "no sequence classification head"),
           ("Marian", "token_classification", "MarianTokenizer is a slow (Python) tokenizer"),
           ("Marian", "question_answering", "MarianTokenizer is a slow (Python) tokenizer"),
           ("DistilBERT", "summarization", "neither an encoder-decoder"),
           ("ALBERT", "language_modeling", "causal")]


@pytest.mark.parametrize(("family", "task", "says"), REFUSED)
def test_a_step_a_family_cannot_do_is_refused_in_one_line(
    family: str, task: str, says: str, family_dir, task_files: Path, tmp_path: Path, capsys
) -> None:
    from adapt.errors import AdaptError, WrongTaskError

    spec = get_task(task)
    with pytest.raises(AdaptError, match=re.escape(says)) as e:
        dsets = datasets_for(spec, task_files / DATA[task][0], family_dir(family))
        spec.tuner(dsets.dataloaders(batch_size=8), str(family_dir(family)))
    assert "\n" not in str(e.value)
    if isinstance(e.value, WrongTaskError):  # refused by the model's type: named
        assert FAMILIES[family].model_type in str(e.value)
    code, _, err = run_cli(capsys, "tune", task_files / DATA[task][0], "--task", task, "--model", family_dir(family),
                           "--out", tmp_path / "out", "--epochs", "1", "--max-length", max_length(task))
    assert code == 2 and err.startswith("adapt: error: ") and err.count("\n") == 1 and says in err, err[-2000:]
    assert not (tmp_path / "out").exists()


QA_FAMILIES = [family for family, f in FAMILIES.items() if "question_answering" in f.tasks]


@pytest.mark.parametrize("family", QA_FAMILIES)
def test_family_answer_spans_are_the_gold_spans(family: str, family_dir) -> None:
    """The most confident span over a gold answer's tokens comes back as exactly the gold text and offsets."""
    import numpy as np

    from adapt.inference import LongText, encode
    from adapt.modelio import load_tokenizer
    from adapt.tasks.question_answering import _cls_index, _context_offsets, best_answers

    tokenizer = load_tokenizer(family_dir(family))
    question, context = "Who scored twice?", "The striker Lionel Smith scored twice. The keeper saved a penalty."
    for gold in ("Lionel Smith", "Smith", "twice", "penalty"):
        start = context.index(gold)
        end = start + len(gold)
        enc = encode(tokenizer, [(question, context)], 96, LongText.Window, 16, return_offsets=True, return_sequence_ids=True)
        offsets = _context_offsets(enc, 0)
        inside = [k for k, (s, e) in enumerate(offsets) if s >= 0 and e > start and s < end]
        logits = np.full((2, len(offsets)), -10.0)
        logits[0, inside[0]] = logits[1, inside[-1]] = 10.0
        cls = _cls_index(enc.features["input_ids"][0], tokenizer)
        answer = best_answers(question, context, [(logits[0], logits[1], offsets, cls)], 1, 30, False).answer
        assert (answer.text, answer.start, answer.end) == (gold, start, end), (family, gold, answer)


def test_readme_backbone_table_is_the_matrix() -> None:
    from .families import readme_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert readme_table() in readme, "README's Backbones table differs from the family matrix: python -m tests.families"


def test_an_adapter_with_the_nested_heads_of_adapt_0_1_still_loads(family_dir, task_files: Path, tmp_path: Path) -> None:
    """adapt 0.1.0 listed RoBERTa's `classifier.dense`/`out_proj` beside the `classifier` peft saves: peft could
    not load that config back, although the weights file holds the trained head. Such folders load now."""
    from adapt import set_seed

    spec = get_task("sequence_classification")
    set_seed(0)
    dsets = datasets_for(spec, task_files / "cls.csv", family_dir("RoBERTa"))
    tuner = spec.tuner(dsets.dataloaders(batch_size=8), str(family_dir("RoBERTa")), peft="lora")
    tuner.tune(1, lr=LR)
    folder = tuner.save(tmp_path / "adapter")
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    assert "classifier" in config["modules_to_save"] and "classifier.dense" not in config["modules_to_save"]
    config["modules_to_save"] = ["classifier.dense", "classifier.out_proj", *config["modules_to_save"]]
    path.write_text(json.dumps(config))
    inputs = INPUTS["sequence_classification"]
    got = easy_call(spec, spec.easy(adapter_base=str(family_dir("RoBERTa"))), inputs, folder, "high")
    assert json_close(got, tuner_call(spec, tuner, inputs, "high"), tol=1e-3)


def test_only_a_plain_byte_level_tokenizer_gets_a_prefix_space_for_pre_split_words(family_dir) -> None:
    """RoBERTa-style byte-level BPE gets `add_prefix_space` (on a copy); a regex split before the byte-level step
    (Llama 3, Qwen2) would then put a space before every piece, so such a tokenizer, like SentencePiece and
    WordPiece ones, is left as it is."""
    from adapt.modelio import for_split_words, load_tokenizer

    roberta = load_tokenizer(family_dir("RoBERTa"))
    ready = for_split_words(roberta)
    assert ready is not roberta and ready.add_prefix_space and not roberta.add_prefix_space
    assert ready.name_or_path == roberta.name_or_path
    for family in ("Llama", "DeBERTa-v3", "BERT"):
        tok = load_tokenizer(family_dir(family))
        assert for_split_words(tok) is tok, family


def test_tuner_load_of_a_decoder_folder_pads_as_training_did(family_tuned, family_dir) -> None:
    """`Tuner.load` of a folder whose tokenizer has no pad token (a hub GPT-2) pads with EOS, as training did."""
    tuner, _, _ = family_tuned("GPT-2", "sequence_classification")
    tuner.load(family_dir("GPT-2"))
    assert tuner.tokenizer.pad_token == tuner.tokenizer.eos_token and tuner.model.config.pad_token_id is not None
    assert len(tuner.predict(["Shares fell sharply", "The striker scored twice in the final"])["predictions"]) == 2


@pytest.mark.parametrize(("family", "task"), [("BART", "summarization"), ("Marian", "summarization"), ("T5", "summarization"),
                                              ("GPT-2", "language_modeling"), ("BERT", "masked_language_modeling")])
def test_a_plain_hub_folder_is_served_as_its_task(family: str, task: str, family_dir) -> None:
    """A folder without adapt.json is served by its architecture: a suffix named for a task first (BART's generation
    head also fills masks in transformers), then transformers' own mappings (MarianMTModel)."""
    from adapt.tasks import task_for_folder

    assert task_for_folder(family_dir(family)).name == task


def test_a_qa_span_of_whitespace_alone_is_kept_rather_than_lost() -> None:
    import numpy as np

    from adapt.tasks.question_answering import best_answers

    offsets = [[-1, -1], [0, 3], [3, 4], [4, 7]]  # CLS, "The", " ", "cat" of "The cat"
    logits = np.array([[-9.0, -9.0, 9.0, -9.0], [-9.0, -9.0, 9.0, -9.0]])
    result = best_answers("q", "The cat", [(logits[0], logits[1], offsets, 0)], 1, 30, False)
    assert not result.no_answer and (result.answer.start, result.answer.end) == (3, 4)


def test_a_users_peft_config_naming_a_head_submodule_still_saves_a_loadable_adapter(family_dir, task_files, tmp_path) -> None:
    import peft

    from adapt import set_seed

    spec = get_task("sequence_classification")
    set_seed(0)
    dsets = datasets_for(spec, task_files / "cls.csv", family_dir("RoBERTa"))
    config = peft.LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier.dense"])
    tuner = spec.tuner(dsets.dataloaders(batch_size=8), str(family_dir("RoBERTa")), peft=config)
    assert config.modules_to_save == ["classifier.dense"]  # the caller's object is untouched
    tuner.tune(1, lr=LR)
    folder = tuner.save(tmp_path / "adapter")
    assert "classifier.dense" not in json.loads((folder / "adapter_config.json").read_text())["modules_to_save"]
    inputs = INPUTS["sequence_classification"]
    got = easy_call(spec, spec.easy(adapter_base=str(family_dir("RoBERTa"))), inputs, folder, "high")
    assert json_close(got, tuner_call(spec, tuner, inputs, "high"), tol=1e-3)
