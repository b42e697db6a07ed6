"""What a teacher is asked and what it answers: records the teacher, the request cache and the store share."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .config import Api, Decoding

# "judge": the judge's requests (selfinstruct/judge), cached and budgeted like the grow's but counted apart.
Stage = Literal["instructions", "classify", "instances", "alpaca", "judge"]

# A reply that cannot be read is asked for once more as another sample (`TeacherRequest.resampled`).
RETRY_SAMPLE = 1000
RETRY_TEMPERATURE = 0.7


class TeacherRequest(BaseModel):
    """One prompt to send. `sample` tells apart requests that would otherwise be identical."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    prompt: str
    decoding: Decoding
    sample: int = 0
    # The OpenAI `response_format` object as JSON text (a json_schema for structured replies), else None.
    response_format: str | None = None

    def resampled(self) -> TeacherRequest:
        """The same request as another sample, at a temperature that can change the reply: asked once more when a
        reply could not be read (a greedy request asked again would get the same reply). Its cache key differs."""
        decoding = self.decoding.model_copy(update={"temperature": max(self.decoding.temperature, RETRY_TEMPERATURE)})
        return self.model_copy(update={"sample": self.sample + RETRY_SAMPLE, "decoding": decoding})

    def cache_key(self, api: Api, model: str) -> str:
        """Hash of everything that determines the answer: a stored answer is never paid for twice.

        The prompt goes into the hash as raw UTF-8 after a JSON header of the rest: escaping a
        few-shot prompt of several KB into JSON cost more than the hash itself (measured).
        """
        parts: list[object] = [api, model, _decoding_json(self.decoding), self.sample]
        if self.response_format is not None:  # absent from older keys, so their stored answers still match
            parts.append(self.response_format)
        header = json.dumps(parts)
        digest = hashlib.sha256(header.encode())
        digest.update(b"\n")
        digest.update(self.prompt.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _decoding_json(decoding: Decoding) -> str:
    # A run has a handful of decodings and asks thousands of keys: dump each once.
    return decoding.model_dump_json()


class TeacherReply(BaseModel):
    """The text of the first choice with its accounting."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
