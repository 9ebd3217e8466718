"""Result dataclasses. `to_dict(detail_level)` returns plain JSON-safe data: lists, strings, floats, ints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .enums import DetailLevel

__all__ = ["ClassificationResult", "ClassificationResults"]


def _text_json(text: Any) -> Any:
    return list(text) if isinstance(text, tuple) else text


@dataclass
class ClassificationResult:
    """One input's prediction. `prediction` is a label, or a list of labels for multi-label models."""

    text: Any
    prediction: str | list[str]
    probs: list[float]
    logits: list[float] | None = None
    windows: int = 1
    truncated: bool = False


@dataclass
class ClassificationResults:
    """Predictions for a list of inputs, with the class order of every `probs` row."""

    items: list[ClassificationResult]
    classes: list[str]
    multi_label: bool = False
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def decisions(self) -> list[Any]:
        """One hashable decision per input (the predicted label, or a tuple of labels), for parity checks."""
        return [tuple(r.prediction) if isinstance(r.prediction, list) else r.prediction for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: sentences, predictions, probs. Medium adds classes and pairings. High adds logits and windows."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "sentences": [_text_json(r.text) for r in self.items],
            "predictions": [r.prediction for r in self.items],
            "probs": [r.probs for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            out["classes"] = list(self.classes)
            out["pairings"] = [dict(zip(self.classes, r.probs, strict=True)) for r in self.items]
        if level.at_least(DetailLevel.High):
            out["logits"] = [r.logits for r in self.items]
            out["truncated"] = [r.truncated for r in self.items]
            out["windows"] = [r.windows for r in self.items]
            out["multi_label"] = self.multi_label
            out["threshold"] = self.threshold
        return out
