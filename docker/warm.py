"""Write the bytecode of what the server imports, and of nothing else.

The images install packages with no bytecode (PIP_NO_COMPILE), which keeps out the bytecode of the thousands
of transformers and torch modules a server never imports, and run with PYTHONDONTWRITEBYTECODE. This imports
the serving stack, every adapt task and the common model families once at build time, so that a container
starts from bytecode; a model family not listed here is compiled in memory when it loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

MODULES = (
    "adapt.cli", "adapt.serving.app", "adapt.easy", "adapt.inference", "adapt.modelio", "adapt.ort", "adapt.quantize",
    "adapt.tasks.sequence_classification", "adapt.tasks.token_classification", "adapt.tasks.question_answering",
    "adapt.tasks.language_modeling", "adapt.tasks.summarization", "adapt.tasks.translation", "adapt.tasks.embeddings",
    "uvicorn", "uvicorn.main", "uvicorn.protocols.http.h11_impl", "uvicorn.lifespan.on", "uvicorn.loops.asyncio",
    "fastapi", "prometheus_client", "torch", "onnxruntime", "safetensors.torch", "tokenizers", "transformers",
    "transformers.modeling_utils", "transformers.generation.utils", "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto", "transformers.tokenization_utils_fast",
)
FAMILIES = ("bert", "distilbert", "roberta", "xlm_roberta", "deberta_v2", "electra", "mpnet", "gpt2", "llama", "t5", "bart")


def main() -> None:
    sys.dont_write_bytecode = False
    family_modules = [f"transformers.models.{f}.{kind}_{f}" for f in FAMILIES for kind in ("configuration", "modeling")]
    for name in (*MODULES, *family_modules):
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)


if __name__ == "__main__":
    main()
