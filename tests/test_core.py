"""Fast unit tests: enums, schedules, LR suggestion, thresholds, input validation, model-path checks, imports."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adapt import DetailLevel, InvalidChoiceError, InvalidInputError, Strategy
from adapt.errors import CorruptModelError, ModelNotFoundError
from adapt.inference import normalize_texts
from adapt.modelio import resolve_model_source
from adapt.tuner import sgdr_cycles


@pytest.mark.parametrize("name", ["one_cycle", "OneCycle", "ONECYCLE", Strategy.OneCycle, " one-cycle "])
def test_strategy_accepts_names_any_case(name):
    assert Strategy(name) is Strategy.OneCycle


def test_strategy_misspelled_lists_choices():
    with pytest.raises(InvalidChoiceError) as e:
        Strategy("one_cylce")
    msg = str(e.value)
    for choice in ("one_cycle", "flat_cos", "sgdr", "constant"):
        assert choice in msg
    assert isinstance(e.value, ValueError)


def test_detail_level_names_and_errors():
    assert DetailLevel("LOW") is DetailLevel.Low and DetailLevel("Medium") is DetailLevel.Medium
    with pytest.raises(InvalidChoiceError, match=r"Did you mean 'High'\? Valid: Low \('low'\), Medium \('medium'\)"):
        DetailLevel("hihg")


def test_choice_errors_suggest_the_closest_name_and_list_names_with_values():
    with pytest.raises(InvalidChoiceError) as e:
        Strategy("OneCycel")
    assert str(e.value) == (
        "'OneCycel' is not a valid Strategy. Did you mean 'OneCycle'? Valid: OneCycle ('one_cycle'), "
        "CosineAnnealing ('flat_cos'), SGDR ('sgdr'), Constant ('constant')."
    )
    assert Strategy("fit_one_cycle") is Strategy.OneCycle  # AdaptNLP's spelling of the policy
    with pytest.raises(InvalidChoiceError, match="Valid:") as e:
        Strategy("zzz")
    assert "Did you mean" not in str(e.value)


@pytest.mark.parametrize("epochs", range(1, 25))
def test_sgdr_cycles_add_up_to_epochs(epochs):
    n, cycle_len = sgdr_cycles(epochs)
    assert cycle_len * (2**n - 1) == epochs  # what fastai's fit_sgdr(n, cycle_len, cycle_mult=2) runs


def test_sgdr_cycles_examples():
    assert sgdr_cycles(3) == (2, 1) and sgdr_cycles(7) == (3, 1) and sgdr_cycles(6) == (2, 2) and sgdr_cycles(5) == (1, 5)


def _curve(lrs, lr_min, noise=0.0, seed=0):
    x = np.log10(lrs)
    loss = 1.6 - 0.8 * np.exp(-((x - math.log10(lr_min)) ** 2) / 1.5)
    loss = np.where(x > math.log10(lr_min), loss + 3 * (x - math.log10(lr_min)) ** 2, loss)
    return loss + noise * np.random.default_rng(seed).standard_normal(len(x))


def test_lr_suggestion_u_shaped_curve():
    from adapt.engine import suggest_fine_tune_lr

    lrs = np.logspace(-6, -1, 40)
    s = suggest_fine_tune_lr(lrs, _curve(lrs, 5e-4))
    assert s.lr_at_min_loss == pytest.approx(5e-4, rel=0.4)
    assert s.raw == pytest.approx(5e-5, rel=0.4) and s.chosen == s.raw


def test_lr_suggestion_is_bounded():
    from adapt.engine import suggest_fine_tune_lr

    lrs = np.logspace(-8, 0, 40)
    high = suggest_fine_tune_lr(lrs, _curve(lrs, 0.5))
    assert high.raw > 1e-2 and high.chosen == 1e-4  # the ceiling for a whole pretrained body (bench/defaults.py)
    assert suggest_fine_tune_lr(lrs, _curve(lrs, 0.5), hi=5e-4).chosen == 5e-4  # a LoRA adapter's
    # the failure mode of fastai's `valley` on MiniLM: a minimum at a tiny LR
    low = suggest_fine_tune_lr(lrs, _curve(lrs, 6e-6))
    assert low.raw < 1e-6 and low.chosen == 1e-5


def test_lr_suggestion_flat_or_short_curve_uses_default():
    from adapt.engine import suggest_fine_tune_lr

    lrs = np.logspace(-6, -1, 30)
    flat = suggest_fine_tune_lr(lrs, np.full(30, 1.6) + 1e-4 * np.random.default_rng(0).standard_normal(30))
    assert flat.chosen == 1e-4 and "default" in flat.reason
    assert suggest_fine_tune_lr(lrs[:3], np.ones(3)).chosen == 1e-4
    nan = suggest_fine_tune_lr(lrs, np.where(lrs > 1e-2, np.nan, _curve(lrs, 1e-3)))
    assert nan.chosen == pytest.approx(1e-4, rel=0.4)


def test_best_threshold_matches_brute_force():
    from sklearn.metrics import f1_score

    from adapt.tasks.sequence_classification import best_threshold

    rng = np.random.default_rng(0)
    y = (rng.random((400, 6)) < 0.3).astype(int)
    # positives score ~0.3, negatives ~0.1: the best threshold is far below 0.5
    p = np.clip(np.where(y == 1, 0.3, 0.1) + 0.08 * rng.standard_normal(y.shape), 0, 1)
    t = best_threshold(p, y)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    brute = grid[np.argmax([f1_score(y, (p >= g).astype(int), average="micro") for g in grid])]
    assert t == pytest.approx(brute) and t < 0.35


@pytest.mark.parametrize(
    "bad",
    [[], "", "   ", None, 5, ["ok", None], ["ok", 3], ["ok", ""], [("a", "b", "c")], [("a", "")], {"txt": "a"},
     [{"text": "a", "bogus": "b"}], b"bytes", "lone \ud800 surrogate", [("a", "\udfff")]],
)
def test_bad_text_raises_specific_error(bad):
    with pytest.raises(InvalidInputError):
        normalize_texts(bad)


def test_normalize_texts_single_list_pairs_and_objects():
    assert normalize_texts("hi") == (["hi"], True)
    assert normalize_texts(["a", "b"]) == (["a", "b"], False)
    assert normalize_texts(("q", "a")) == ([("q", "a")], True)
    # strings, pairs and objects may be mixed in one list; each item is checked on its own
    mixed = ["a", ("b", "c"), {"text": "d", "text_pair": "e"}, {"text": "f"}]
    assert normalize_texts(mixed) == (["a", ("b", "c"), ("d", "e"), "f"], False)
    with pytest.raises(InvalidInputError, match=r"texts\[1\].text_pair is empty"):
        normalize_texts(["a", {"text": "b", "text_pair": " "}])


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_source(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError):
        resolve_model_source("./models/nope")


def test_folder_without_model(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CorruptModelError, match="holds no model"):
        resolve_model_source(tmp_path)


def test_folder_missing_weights_and_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CorruptModelError, match="lacks weights .* and a tokenizer"):
        resolve_model_source(tmp_path)


def test_corrupt_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CorruptModelError, match="not valid JSON"):
        resolve_model_source(tmp_path)


def test_hub_name_offline_gives_clear_error():
    from adapt import EasySequenceClassifier

    with pytest.raises(ModelNotFoundError, match="hub"):
        EasySequenceClassifier().tag_text("hello", "someorg/surely-not-cached-model")


def test_import_adapt_is_light():
    code = (
        "import sys, adapt; heavy = [m for m in ('torch','transformers','fastai','flair','pandas','datasets') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_matches_settings():
    import configparser
    from pathlib import Path

    import adapt

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).parents[1] / "settings.ini")
    assert adapt.__version__ == cfg["DEFAULT"]["version"]


def test_set_seed_is_one_call():
    import random

    import torch

    from adapt import set_seed

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    set_seed(7)
    a = draw()
    set_seed(7)
    assert draw() == a


def test_atomic_directory_refuses_to_replace_other_folders(tmp_path):
    from adapt.errors import TargetExistsError
    from adapt.utils import atomic_directory

    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("keep me")
    with pytest.raises(TargetExistsError, match="not a saved model"), atomic_directory(project):
        pass
    assert (project / "notes.txt").read_text() == "keep me"
    src = tmp_path / "models" / "bbc"
    src.mkdir(parents=True)
    (src / "config.json").write_text("{}")
    for bad in (src, tmp_path / "models"):
        with pytest.raises(TargetExistsError), atomic_directory(bad, protect=src):
            pass
    with atomic_directory(src) as tmp:  # a previous model save is replaced
        (tmp / "config.json").write_text('{"new": 1}')
    assert (src / "config.json").read_text() == '{"new": 1}'


def test_batcher_survives_any_model_error():
    import asyncio
    from dataclasses import dataclass

    from adapt.results import Results
    from adapt.serving.batching import MicroBatcher

    @dataclass
    class Res(Results):  # the results contract: `items` plus `select` for each request's part
        items: list

    class Panic(BaseException):  # like the tokenizers library's PanicException
        pass

    def run(texts, params):
        if "boom" in texts:
            raise Panic("rust panicked")
        return Res([t.upper() for t in texts])

    async def main():
        b = MicroBatcher(run, max_batch_size=8, max_wait_ms=20)
        await b.start()
        bad = await asyncio.gather(b.submit(["boom"], {}), b.submit(["x"], {}), return_exceptions=True)
        ok = await asyncio.gather(b.submit(["a"], {}), b.submit(["b", "c"], {}), b.submit(["d"], {"k": 1}))
        await b.stop()
        await b.start()  # restartable
        again = await b.submit(["e"], {})
        await b.stop()
        return bad, ok, again

    bad, ok, again = asyncio.run(main())
    assert isinstance(bad[0], Exception) and bad[1].items == ["X"]  # only the request that broke the call fails
    assert [r.items for r in ok] == [["A"], ["B", "C"], ["D"]] and again.items == ["E"]


def test_batcher_cuts_large_requests_bounds_its_queue_and_drops_late_work():
    import asyncio
    import time
    from dataclasses import dataclass

    from adapt.results import Results
    from adapt.serving.batching import MicroBatcher, QueueFullError

    @dataclass
    class Res(Results):
        items: list

    calls = []

    def run(texts, params):
        calls.append(list(texts))
        time.sleep(0.02 * len(texts))
        return Res([t.upper() for t in texts])

    async def main():
        b = MicroBatcher(run, max_batch_size=4, max_wait_ms=5, max_queued_texts=40, max_batch_chars=100)
        await b.start()
        big = asyncio.ensure_future(b.submit([f"long text {i}" * 3 for i in range(30)], {}))
        await asyncio.sleep(0.03)
        short = await b.submit(["short"], {})
        big_done_first = big.done()
        with pytest.raises(QueueFullError, match="busy"):
            await b.submit(["x"] * 20, {})
        with pytest.raises(asyncio.TimeoutError):
            await b.submit(["late"] * 8, {}, timeout=0.001)
        result = await big
        await b.stop()
        return short, big_done_first, result

    short, big_done_first, result = asyncio.run(main())
    assert short.items == ["SHORT"] and not big_done_first  # the short request did not wait for the whole big one
    assert result.items == [f"LONG TEXT {i}" * 3 for i in range(30)]  # the big one, assembled in order from chunks
    assert all(len(c) <= 4 and sum(map(len, c)) <= 100 + 40 for c in calls)
    assert not any("late" in t for c in calls for t in c)  # past its deadline before it ran: dropped


def test_user_errors_are_adapt_errors():
    """No module of adapt raises a bare built-in exception: the CLI and the server only catch AdaptError."""
    import ast

    builtin = {"ValueError", "TypeError", "KeyError", "FileNotFoundError", "ImportError", "Exception", "IndexError"}
    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "adapt").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in builtin:
                found.append(f"{path.name}:{node.lineno} raises {call.func.id}")
    assert not found, found


def test_missing_extra_hint_names_the_installed_distribution():
    from importlib import metadata

    from adapt.errors import DISTRIBUTION, install_hint

    assert metadata.version(DISTRIBUTION) == metadata.version("adapt-tuner")  # what pip installed this as
    assert install_hint("flair") == "pip install 'adapt-tuner[flair]'"


def test_public_names_come_from_the_registry():
    import adapt
    from adapt.tasks import all_tasks

    for spec in all_tasks().values():
        for cls in (spec.datasets, spec.tuner, spec.easy):
            assert getattr(adapt, cls.__name__) is cls and cls.__name__ in adapt.__all__
    assert {"Strategy", "DetailLevel", "AdaptError", "set_seed", "Tuner"} <= set(adapt.__all__)


def test_model_calls_are_bounded_by_tokens_as_well_as_rows():
    from adapt.inference import token_batches

    lengths = [512, 512, 500, 100, 30, 30, 30, 30]
    batches = token_batches(list(range(8)), lengths, batch_size=32, max_tokens=1024)
    assert batches == [[0, 1], [2, 3], [4, 5, 6, 7]]  # long windows two at a time, short ones together
    assert all(len(b) * max(lengths[i] for i in b) <= 1024 for b in batches)
    assert token_batches([0, 1, 2], [10, 10, 10], batch_size=2) == [[0, 1], [2]]
    assert token_batches([0], [5000], batch_size=8, max_tokens=1024) == [[0]]  # one over-long row still runs
