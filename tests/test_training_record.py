"""The training run leaves a trace: `adapt.json`'s training block, a Hub-format model card whose snippets run,
INFO messages on the console, and fastai's files in a folder the user chose (or one removed with the tuner)."""
from __future__ import annotations

import gc
import io
import json
import logging
import re
from pathlib import Path

import pytest

from adapt.tasks import get_task

from .contract_utils import TASK_NAMES


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "adapt.json").read_text())


def test_a_save_after_lr_find_records_the_run(saved_dir: Path, trained, model_path: str) -> None:
    record = _manifest(saved_dir)["training"]
    tuner, metrics = trained
    assert record == tuner.training_record
    assert record["base_model"] == Path(model_path).name and record["base_model_is_local"] is True  # said, in the card
    assert record["epochs"] == 2 and record["strategy"] == "one_cycle" and record["lr"] is None
    assert record["lr_chosen"] == pytest.approx(tuner.lr_suggestion.chosen) and record["lr_reason"]
    assert record["batch_size"] == 8 and record["max_length"] == 64 and record["seed"] == 0
    assert record["train_size"] + record["valid_size"] == 300 and record["elapsed_s"] > 0
    assert [row["epoch"] for row in record["history"]] == [0, 1]
    assert record["history"][-1] == {k: pytest.approx(v) for k, v in metrics.items()} and isinstance(metrics["epoch"], int)
    assert not any(str(v).startswith("/") for v in record.values()), record


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_saved_model_card_parses_and_its_snippets_run(task: str, trained_tasks, monkeypatch, capsys) -> None:
    from huggingface_hub import ModelCard

    spec = get_task(task)
    tuner, folder = trained_tasks[task]
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and "adapt" in data["tags"]
    assert data.get("pipeline_tag") == spec.pipeline_tag
    assert set(data.get("metrics", [])) == {k for k in tuner.final_metrics() if k not in ("epoch", "train_loss", "valid_loss")}
    assert "## Training" in card.text and f"| epochs | `{tuner.training_record['epochs']}` |" in card.text
    assert "base_model" not in data  # a local tiny model, not a Hub id
    monkeypatch.chdir(folder)
    for block in re.findall(r"```python\n(.*?)```", card.text, flags=re.S):
        exec(compile(block, f"{task} card", "exec"), {})  # the "Use" snippets, as written, from the folder
    printed = capsys.readouterr().out
    assert printed.count("\n") >= (2 if spec.pipeline_tag else 1), printed


def test_card_data_adds_hub_metadata_and_a_hub_base_model_is_named(trained_tasks, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from adapt.card import card_metadata

    tuner, _ = trained_tasks["sequence_classification"]
    folder = tuner.save(tmp_path / "cls", card_data={"license": "apache-2.0", "datasets": ["SetFit/bbc-news"]})
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert data["license"] == "apache-2.0" and data["datasets"] == ["SetFit/bbc-news"]
    hub = {**tuner.manifest(), "base_model": "sentence-transformers/all-MiniLM-L6-v2",
           "training": {**tuner.training_record, "base_model_is_local": False}}
    assert card_metadata(hub)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_adapt_messages_reach_the_console_only_while_the_application_configures_no_logging(monkeypatch, capsys) -> None:
    from adapt.utils import _ConsoleHandler, console_logging

    log, root = logging.getLogger("adapt"), logging.getLogger()
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "level", logging.NOTSET)
    monkeypatch.setattr(root, "handlers", [])
    console_logging()
    console_logging()
    assert sum(isinstance(h, _ConsoleHandler) for h in log.handlers) == 1 and log.level == logging.INFO
    logging.getLogger("adapt.tuner").info("lr_find: using %.3g", 1e-3)
    assert capsys.readouterr().err == "[adapt] lr_find: using 0.001\n"
    # the application sets up logging at WARNING: the console handler steps aside, and its levels rule
    mine = io.StringIO()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(mine)])
    monkeypatch.setattr(root, "level", logging.WARNING)
    logging.getLogger("adapt.tuner").info("the first message after the change may still pass")
    logging.getLogger("adapt.tuner").info("hidden")
    logging.getLogger("adapt.tuner").warning("shown")
    assert "hidden" not in mine.getvalue() and "shown" in mine.getvalue() and capsys.readouterr().err == ""
    assert log.level == logging.NOTSET and not any(isinstance(h, _ConsoleHandler) for h in log.handlers)
    console_logging()  # a new tuner while the application's logging is set up adds nothing
    assert not any(isinstance(h, _ConsoleHandler) for h in log.handlers)


def test_fastai_files_go_to_work_dir_or_a_temporary_folder_removed_with_the_tuner(trained_tasks, tmp_path: Path) -> None:
    tuner, folder = trained_tasks["sequence_classification"]
    spec = get_task("sequence_classification")
    mine = spec.tuner(tuner.dls, str(folder), work_dir=tmp_path / "work")
    assert Path(mine.learn.path) == tmp_path / "work" and (tmp_path / "work").is_dir()
    temp = spec.tuner(tuner.dls, str(folder))
    where = Path(temp.learn.path)
    assert where.is_dir() and where.name.startswith("adapt-work-")
    del temp
    gc.collect()
    assert not where.exists()


def _png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def test_training_plots_are_figures_and_images(trained_tasks, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    cls, _ = trained_tasks["sequence_classification"]
    fig = cls.plot_loss(tmp_path / "loss.png")
    assert _png(tmp_path / "loss.png") and {line.get_label() for line in fig.axes[0].lines} == {"train (smoothed)", "valid"}
    fig = cls.plot_confusion_matrix(tmp_path / "cm.png")
    assert _png(tmp_path / "cm.png") and [t.get_text() for t in fig.axes[0].get_xticklabels()] == cls.classes
    ner, _ = trained_tasks["token_classification"]
    report = ner.entity_report()
    entities = {tag[2:] for tag in ner.classes if tag != "O"}
    assert set(report) - {"micro avg", "macro avg", "weighted avg"} <= entities and "micro avg" in report
    fig = ner.plot_entity_f1(tmp_path / "f1.png")
    assert _png(tmp_path / "f1.png")
    open_before = len(plt.get_fignums())
    cls.lr_find(num_it=10, save_plot=tmp_path / "lr.png")
    assert _png(tmp_path / "lr.png") and len(plt.get_fignums()) == open_before  # saved, not left open
    plt.close("all")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "f1.png", "loss.png", "lr.png"]  # no temp files left


def test_the_base_model_is_named_so_a_reader_can_use_it(trained_tasks, tiny_models) -> None:
    """A local base folder is said to be one (not passed off as a name); `base_model_name=` names it, and so does a
    Hugging Face cache path; the finder's own suggestion passed back to tune() keeps its reason."""
    from adapt.card import card_metadata
    from adapt.modelio import base_model_id

    tuner, folder = trained_tasks["sequence_classification"]
    card = (folder / "README.md").read_text()
    assert "Base model: a local model (folder `bert`), not named when it was tuned" in card
    assert base_model_id("/cache/hub/models--org--tiny-bert/snapshots/0a1b2c") == ("org/tiny-bert", False)
    assert base_model_id("org/name") == ("org/name", False)

    spec = get_task("sequence_classification")
    named = spec.tuner(tuner.dls, str(tiny_models["bert"]), base_model_name="org/tiny-bert")
    suggestion = named.lr_find()
    named.tune(1, lr=float(suggestion))
    record = named.training_record
    assert record["base_model"] == "org/tiny-bert" and record["base_model_is_local"] is False
    assert record["lr_reason"] == suggestion.reason
    manifest = named.manifest()
    assert manifest["base_model"] == "org/tiny-bert" and card_metadata(manifest)["base_model"] == "org/tiny-bert"
    assert "Base model: `org/tiny-bert`." in named.model_card()


def test_progress_written_to_a_log_or_pipe_is_one_plain_line_per_epoch(trained_tasks, capsys) -> None:
    """fastai's bars redraw themselves with carriage returns: in a file they make lines thousands of characters long.
    Where no person watches (stdout is no terminal, as under capsys), each epoch is one line of the metrics table."""
    base, folder = trained_tasks["sequence_classification"]
    tuner = get_task("sequence_classification").tuner(base.dls, str(folder))
    capsys.readouterr()
    tuner.tune(2, lr=1e-3)
    tuner.lr_find(num_it=6)
    tuner.evaluate()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\r" not in out and max(map(len, lines)) < 200, out[:500]
    assert lines[0].split()[:3] == ["epoch", "train_loss", "valid_loss"] and [ln.split()[0] for ln in lines[1:3]] == ["0", "1"]
