"""Data-parallel training: 2 CPU ranks (gloo) launched by torchrun run `tune()` unchanged."""
from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from .readme_utils import run_shell, section_blocks

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "ddp_worker.py"


def test_single_process_helpers_are_no_ops(monkeypatch):
    from adapt.distributed import barrier, broadcast_object, is_main_process, rank, world_size

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert (world_size(), rank(), is_main_process()) == (1, 0, True)
    assert broadcast_object(3e-4) == 3e-4
    barrier()


def _launch_lines() -> list[str]:
    (block,) = section_blocks("Data-parallel training", "bash")
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    """README's CPU line (`torchrun --nproc_per_node 2 train.py`), as written, with the test's worker as train.py."""
    out = tmp_path_factory.mktemp("ddp")
    (cpu_line,) = [line for line in _launch_lines() if "--nproc_per_node 2 " in line]
    (out / "train.py").write_text(f"import runpy, sys\nsys.argv = [{str(WORKER)!r}, {str(out)!r}]\n"
                                  f"runpy.run_path({str(WORKER)!r}, run_name='__main__')\n")
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run_shell(cpu_line, out, env, timeout=900)
    return out


def test_readme_gpu_launch_lines() -> None:
    """The GPU and multi-machine lines need 4+ GPUs (or 2 machines); on a machine with them, the 4-GPU lines run."""
    lines = [line for line in _launch_lines() if "--nproc_per_node 2 " not in line]
    assert len(lines) == 4 and all(("torchrun" in line) or ("accelerate launch" in line) for line in lines), lines
    import torch

    if torch.cuda.device_count() < 4:
        pytest.skip(f"needs 4 GPUs, this machine has {torch.cuda.device_count()}: {lines}")
    for line in (line for line in lines if "--nnodes" not in line and "--num_machines" not in line):
        run_shell(line.replace("train.py", f"{WORKER} {ROOT / 'tmp' / 'ddp-gpu'}"), ROOT, {"HF_HUB_OFFLINE": "1"},
                  timeout=900)


def _reports(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_ranks_see_different_shards(ddp_run):
    r0, r1 = _reports(ddp_run)
    assert r0["world_size"] == r1["world_size"] == 2
    by_epoch: dict[int, list[set]] = defaultdict(lambda: [set(), set()])
    for k, rep in enumerate((r0, r1)):
        for epoch, ids in rep["seen"]:
            by_epoch[epoch][k].add(tuple(ids))
    assert sorted(by_epoch) == [0, 1, 2]
    for a, b in by_epoch.values():
        assert a and b and not a & b  # disjoint shards ...
        assert len(a | b) == r0["n_train"]  # ... that together cover the training set every epoch


def test_loss_falls_and_weights_stay_identical(ddp_run):
    r0, r1 = _reports(ddp_run)
    for rep in (r0, r1):
        losses = rep["losses"]
        assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4
        assert rep["history"][-1]["train_loss"] < rep["history"][0]["train_loss"]
    assert r0["weights"] == r1["weights"]
    assert r0["broadcast"] == r1["broadcast"] == "from rank 0"  # e.g. rank 0's LR-finder choice


def test_lora_with_accumulation_and_gradient_checkpointing_stays_in_sync(ddp_run):
    r0, r1 = (rep["lora_accumulate"] for rep in _reports(ddp_run))
    assert r0["weights"] == r1["weights"]  # every rank stepped with the same averaged gradients
    assert r0["steps"] == r0["batches"] // 2 > 0 and r0["train_loss"] == r0["train_loss"]  # stepped every 2, no NaN


def test_only_rank0_saves_and_the_model_loads(ddp_run):
    from adapt import EasySequenceClassifier

    assert (ddp_run / "only-main-0").is_dir() and not (ddp_run / "only-main-1").exists()
    res = EasySequenceClassifier().tag_text(["Shares rose after the bank's profits beat forecasts."], ddp_run / "model")
    assert res["predictions"][0] in {"business", "entertainment", "politics", "sports", "tech"}
