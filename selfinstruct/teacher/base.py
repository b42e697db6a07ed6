"""What a teacher is asked and what it answers."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..config import Api, Decoding

Stage = Literal["instructions", "classify", "instances", "alpaca"]


class TeacherRequest(BaseModel):
    """One prompt to send. `sample` tells apart requests that would otherwise be identical."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    prompt: str
    decoding: Decoding
    sample: int = 0

    def cache_key(self, api: Api, model: str) -> str:
        """Hash of everything that determines the answer: a stored answer is never paid for twice."""
        payload = {
            "api": api,
            "model": model,
            "prompt": self.prompt,
            "decoding": _decoding_fields(self.decoding),
            "sample": self.sample,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _decoding_fields(decoding: Decoding) -> dict[str, object]:
    # A run has a handful of decodings and asks thousands of keys: dump each once.
    return decoding.model_dump(mode="json")


class TeacherReply(BaseModel):
    """The text of the first choice with its accounting."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
