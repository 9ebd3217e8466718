"""Search the Hugging Face Hub for models by task or name, as AdaptNLP's `HFModelHub` and `FlairModelHub` did.

Built on `huggingface_hub.HfApi.list_models` (filtered by task tag and library) and `model_info`. A result can
be passed wherever a model name is (`model_name_or_path=result`). Offline (`HF_HUB_OFFLINE=1`), or without a
network, every search raises `HubUnavailableError` at once instead of hanging. `HF_ENDPOINT` (or `endpoint=`)
points the searches at another Hub, such as a mirror.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .enums import ChoiceEnum
from .errors import AdaptError, InvalidChoiceError

__all__ = [
    "FLAIR_TASKS",
    "HF_TASKS",
    "FlairModelHub",
    "FlairModelResult",
    "HFModelHub",
    "HFModelResult",
    "HubUnavailableError",
]

FLAIR_ORG = "flairNLP"
TRUE = ("1", "true", "yes", "on")


class HubUnavailableError(AdaptError, ConnectionError):
    """The Hugging Face Hub cannot be reached (offline mode, or no network)."""


class HF_TASKS(ChoiceEnum):
    """The Hub's pipeline tags, by AdaptNLP's names (`HF_TASKS.TEXT_CLASSIFICATION == "text-classification"`)."""

    FILL_MASK = "fill-mask"
    QUESTION_ANSWERING = "question-answering"
    SUMMARIZATION = "summarization"
    TABLE_QUESTION_ANSWERING = "table-question-answering"
    TEXT_CLASSIFICATION = "text-classification"
    TEXT_GENERATION = "text-generation"
    TEXT2TEXT_GENERATION = "text2text-generation"
    TOKEN_CLASSIFICATION = "token-classification"
    TRANSLATION = "translation"
    ZERO_SHOT_CLASSIFICATION = "zero-shot-classification"
    CONVERSATIONAL = "conversational"
    TEXT_TO_SPEECH = "text-to-speech"
    AUTOMATIC_SPEECH_RECOGNITION = "automatic-speech-recognition"
    VOICE_ACTIVITY_DETECTION = "voice-activity-detection"


class FLAIR_TASKS(ChoiceEnum):
    """Flair's model tasks, by AdaptNLP's names (`FLAIR_TASKS.NAMED_ENTITY_RECOGNITION == "ner"`)."""

    NAMED_ENTITY_RECOGNITION = "ner"
    PHRASE_CHUNKING = "chunk"
    VERB_DISAMBIGUATION = "frame"
    PART_OF_SPEECH_TAGGING = "pos"
    UNIVERSAL_PART_OF_SPEECH_TAGGING = "upos"
    EMBEDDINGS = "embeddings"


@dataclass
class HFModelResult:
    """One model found on the Hub: `name` (its id, usable as `model_name_or_path`), `tags`, `tasks` and `info`."""

    info: Any
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tags = list(getattr(self.info, "tags", None) or self.tags or [])

    @property
    def name(self) -> str:
        return str(getattr(self.info, "id", None) or getattr(self.info, "modelId", ""))

    @property
    def tasks(self) -> list[str]:
        """The pipeline tag and the task tags among `HF_TASKS`, sorted."""
        tag = getattr(self.info, "pipeline_tag", None)
        if not tag:
            return []
        known = {t.value for t in HF_TASKS}
        return sorted({tag, *(t for t in self.tags if t in known)})

    def to_dict(self) -> dict[str, Any]:
        return {"model_name": self.name, "tags": self.tags, "tasks": self.tasks, "model_info": self.info}

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Model Name: {self.name}, Tasks: [{', '.join(self.tasks)}]"


@dataclass(repr=False)
class FlairModelResult(HFModelResult):
    """A flair model on the Hub; `source` says whether flair's own organisation published it."""

    @property
    def from_hf(self) -> bool:
        return not self.name.startswith(f"{FLAIR_ORG}/")

    @property
    def source(self) -> str:
        return "HuggingFace Model Hub" if self.from_hf else "Flair's Private Model Hub"

    def __repr__(self) -> str:
        return f"Model Name: {self.name.replace(FLAIR_ORG, 'flair')}, Tasks: [{', '.join(self.tasks)}], Source: {self.source}"


def hub_api(endpoint: str | None, token: str | None, action: str) -> Any:
    """A `huggingface_hub.HfApi`, refused at once (HubUnavailableError) under HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE."""
    offline = [v for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(v, "").strip().lower() in TRUE]
    if offline:
        raise HubUnavailableError(f"{action} needs the network, and {offline[0]}=1 is set; unset it to go on.")
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)


class HFModelHub:
    """Search the Hub's transformers models by task (a pipeline tag) or by name.

    Example:
        >>> hub = HFModelHub()
        >>> models = hub.search_model_by_task(HF_TASKS.TEXT_CLASSIFICATION)
        >>> EasySequenceClassifier().tag_text("Great!", models[0])
    """

    library: str | None = "transformers"
    result_class: type[HFModelResult] = HFModelResult

    def __init__(self, username: str | None = None, password: str | None = None, token: str | None = None,
                 endpoint: str | None = None, limit: int | None = 1000) -> None:
        """`token` authenticates (`username`/`password` are AdaptNLP's and no longer accepted by the Hub)."""
        if username or password:
            raise InvalidChoiceError("The Hub no longer takes a username and password; pass token=... (an access token).")
        self.token, self.limit, self.endpoint = token, limit, endpoint

    def _api(self) -> Any:
        return hub_api(self.endpoint, self.token, "Searching the Hub")

    def _list(self, **query: Any) -> list[Any]:
        api = self._api()
        query = {k: v for k, v in {"filter": self.library, "limit": self.limit, **query}.items() if v is not None}
        try:
            return list(api.list_models(**query))
        except Exception as e:  # requests, httpx and huggingface_hub raise many kinds; all mean: no Hub answer
            raise HubUnavailableError(f"The Hub at {api.endpoint} could not be searched ({e}).") from e

    def _results(self, infos: Iterable[Any], as_dict: bool, user_uploaded: bool) -> Any:
        results = [self.result_class(info) for info in infos]
        if not user_uploaded:
            results = [r for r in results if self._official(r.name)]
        return {r.name: r.to_dict() for r in results} if as_dict else results

    def _official(self, name: str) -> bool:
        """Models without an organisation prefix (AdaptNLP's `user_uploaded=False`)."""
        return "/" not in name

    def search_model_by_task(self, task: HF_TASKS | str, as_dict: bool = False, user_uploaded: bool = False) -> Any:
        """Models whose pipeline tag is `task`; `user_uploaded=True` includes models of organisations and users."""
        value = HF_TASKS(task).value
        return self._results(self._list(pipeline_tag=value), as_dict, user_uploaded)

    def search_model_by_name(self, name: str, as_dict: bool = False, user_uploaded: bool = False) -> Any:
        """Models whose id contains `name`."""
        return self._results(self._list(search=name), as_dict, user_uploaded)

    def model_info(self, name: str) -> HFModelResult:
        """One model by its id."""
        api = self._api()
        try:
            return self.result_class(api.model_info(name))
        except Exception as e:  # see _list
            raise HubUnavailableError(f"Could not read the model {name!r} from the Hub ({e}).") from e


class FlairModelHub(HFModelHub):
    """Search the Hub's flair models (library `flair`) by task or name; flair's own ones are `flairNLP/...`."""

    library = "flair"
    result_class = FlairModelResult

    def _official(self, name: str) -> bool:
        return name.startswith((f"{FLAIR_ORG}/", "flair/"))

    def search_model_by_task(self, task: FLAIR_TASKS | str, as_dict: bool = False, user_uploaded: bool = False) -> Any:
        """Flair models for `task` (`ner`, `pos`, ...): by pipeline tag, or by the task in their name."""
        value = FLAIR_TASKS(task).value
        infos = [i for i in self._list() if value in str(getattr(i, "id", "")) or value in (getattr(i, "tags", None) or [])]
        return self._results(infos, as_dict, user_uploaded)


def model_name(value: Any) -> Any:
    """`value.name` for a Hub search result, else `value` itself (a path, a hub id or a model object)."""
    return value.name if isinstance(value, HFModelResult) else value
