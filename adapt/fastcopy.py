"""Deployable fast copies of a model (int8, ONNX Runtime), each checked against fp32 before it is written.

Shared by `Tuner.export(quantize=, onnx=)` and `adapt export --int8/--onnx`. Which copies a task allows comes
from its declaration (`TaskSpec.fast_copies`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidChoiceError, InvalidInputError, as_given, unknown_name

if TYPE_CHECKING:
    from .tasks.base import TaskSpec

logger = logging.getLogger(__name__)

__all__ = ["FastCopies", "build_fast_copies", "check_fast_copies"]

ON_FAIL = ("raise", "warn")


@dataclasses.dataclass
class FastCopies:
    """Files to add to a saved folder (`name -> writer(path)`) and their `adapt.json` entries."""

    writers: dict[str, Callable[[Path], Any]] = dataclasses.field(default_factory=dict)
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)


def check_on_fail(on_parity_fail: Any) -> None:
    """`on_parity_fail` must be "raise" (refuse a copy that fails its parity check) or "warn"."""
    if on_parity_fail not in ON_FAIL:
        raise InvalidChoiceError(unknown_name(as_given("on_parity_fail"), str(on_parity_fail), ON_FAIL))


def check_fast_copies(spec: TaskSpec, quantize: bool, onnx: bool, on_parity_fail: str = "raise") -> None:
    """Refuse a copy the task does not declare, naming the tasks declared so far that have it."""
    from .tasks.base import declared

    check_on_fail(on_parity_fail)
    for wanted, kind, flag in ((quantize, "int8", "quantize"), (onnx, "onnx", "onnx")):
        if wanted and kind not in spec.fast_copies:
            having = sorted({t.name for t in declared() if kind in t.fast_copies})
            raise InvalidChoiceError(
                f"{spec.name} models have no {kind} copy ({kind} is made for {', '.join(having)}); export with {flag}=False."
            )


def parity(
    predictor: Any, candidate: Any, texts: Sequence[Any], min_agreement: float, on_fail: str, what: str
) -> float:
    """Share of held-out decisions on which `candidate` (a faster copy of the model) agrees with fp32."""
    from .quantize import ParityError, agreement

    if not texts:
        raise InvalidInputError(f"The {what} parity check needs held-out inputs; none were given.")
    ref = predictor.predict(list(texts)).decisions()
    got = dataclasses.replace(predictor, model=candidate).predict(list(texts)).decisions()
    agree = agreement(ref, got)
    logger.info("%s parity: %.4f agreement with fp32 on %d inputs", what, agree, len(texts))
    if agree < min_agreement:
        msg = (f"The {what} model agrees with fp32 on only {agree:.2%} of {len(ref)} decisions "
               f"(below {as_given('min_agreement', min_agreement)}).")
        if on_fail != "warn":
            raise ParityError(f"{msg} Refusing to export it; pass {as_given('on_parity_fail', 'warn')} to export anyway.")
        warnings.warn(msg, stacklevel=4)
    return agree


def build_fast_copies(
    predictor: Any,
    texts: Sequence[Any],
    workdir: Path,
    quantize: bool = False,
    onnx: bool = False,
    min_agreement: float = 0.99,
    on_parity_fail: str = "raise",
) -> FastCopies:
    """Make the int8 and/or ONNX copies of `predictor.model`, parity-checked on `texts`, ready to write."""
    out = FastCopies()
    model, tokenizer = predictor.model, predictor.tokenizer
    if onnx:
        from .ort import check_exportable

        check_exportable(model.config)
    if quantize:
        from .quantize import INT8_FILE, SCHEME, quantize_int8, save_int8

        qmodel = quantize_int8(model)
        agree = parity(predictor, qmodel, texts, min_agreement, on_parity_fail, "int8")
        out.writers[INT8_FILE] = lambda p: save_int8(qmodel, p)
        out.manifest["quantized"] = {"file": INT8_FILE, "scheme": SCHEME, "agreement": agree, "n_texts": len(texts)}
    if onnx:
        from .ort import ONNX_FILE, OnnxRuntimeModel, export_onnx

        graph = export_onnx(model, tokenizer, workdir / ONNX_FILE, quantize=quantize)
        agree = parity(predictor, OnnxRuntimeModel(graph, model.config), texts, min_agreement, on_parity_fail, "ONNX")
        out.writers[ONNX_FILE] = lambda p: shutil.copyfile(graph, p)
        out.manifest["onnx"] = {"file": ONNX_FILE, "int8": quantize, "agreement": agree, "n_texts": len(texts)}
    return out
