"""A fake OpenAI Batch API: files and batches that really run, slowly, through the fake teacher's replies.

Uploaded files are kept; a batch validates its input file, stays `in_progress` for a while (or until
`release()` when `hold` is set), answers each line with the fake teacher's reply generator, and ends
`completed` with an output file and an error file (or `expired` after `expire_after_lines` lines, the
rest marked `batch_expired`). `answered` counts every line the server ever answered, by custom_id, so
a test can assert that nothing was paid twice. Everything runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import random
import threading
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_server import FakeTeacherApp, FakeTeacherConfig

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")


class FakeBatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    model: str = "fake-teacher"
    validating_seconds: float = Field(0.05, ge=0, description="time a new batch spends validating")
    in_progress_seconds: float = Field(0.2, ge=0, description="time a batch stays in_progress before its lines run")
    hold: bool = Field(False, description="batches stay in_progress until release() is called")
    rate_line_error: float = Field(0.0, ge=0, le=1, description="share of lines answered with HTTP 500")
    expire_after_lines: int | None = Field(None, ge=0, description="a batch expires after answering this many lines")


class FakeBatchApp:
    def __init__(self, config: FakeBatchConfig) -> None:
        self.config = config
        self.teacher = FakeTeacherApp(FakeTeacherConfig(seed=config.seed, model=config.model))
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.answered: Counter[str] = Counter()  # custom_id -> lines answered with a reply (billed)
        self.failed: Counter[str] = Counter()  # custom_id -> lines answered with an error or expired (not billed)
        self.polls: Counter[str] = Counter()  # batch id -> times retrieved
        self._ids = itertools.count(1)
        self._rng = random.Random(f"batch-lines:{config.seed}")
        self._released = threading.Event()
        if not config.hold:
            self._released.set()

    def asgi(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/models", self.teacher._models, methods=["GET"]),  # what attach mode reads the model id from
            Route("/v1/files", self._upload, methods=["POST"]),
            Route("/v1/files/{file_id}", self._file, methods=["GET"]),
            Route("/v1/files/{file_id}/content", self._content, methods=["GET"]),
            Route("/v1/batches", self._create, methods=["POST"]),
            Route("/v1/batches", self._list, methods=["GET"]),
            Route("/v1/batches/{batch_id}", self._retrieve, methods=["GET"]),
        ])

    def release(self) -> None:
        """Let held batches run (callable from any thread)."""
        self._released.set()

    def statuses(self) -> dict[str, str]:
        return {batch_id: batch["status"] for batch_id, batch in self.batches.items()}

    # -- files ---------------------------------------------------------------------------
    async def _upload(self, request: Request) -> Response:
        fields = _form_fields(request.headers.get("content-type", ""), await request.body())
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"batch":
            return _error(400, "expected multipart fields 'file' and purpose=batch")
        filename, data = fields["file"]
        file_id = f"file-fake{next(self._ids):06d}"
        return JSONResponse(self._add_file(file_id, filename or "upload.jsonl", data, "batch"))

    def _add_file(self, file_id: str, filename: str, data: bytes, purpose: str) -> dict[str, Any]:
        self.contents[file_id] = data
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed"}
        return self.files[file_id]

    async def _file(self, request: Request) -> Response:
        found = self.files.get(request.path_params["file_id"])
        return JSONResponse(found) if found else _error(404, "no such file")

    async def _content(self, request: Request) -> Response:
        data = self.contents.get(request.path_params["file_id"])
        return Response(data, media_type="application/octet-stream") if data is not None else _error(404, "no such file")

    # -- batches -------------------------------------------------------------------------
    async def _create(self, request: Request) -> Response:
        body = await request.json()
        if body.get("input_file_id") not in self.contents:
            return _error(404, "no such input file")
        if body.get("endpoint") not in ENDPOINTS or body.get("completion_window") != "24h":
            return _error(400, "endpoint must be /v1/chat/completions or /v1/completions, window 24h")
        batch_id = f"batch_fake{next(self._ids):06d}"
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": "24h", "status": "validating", "created_at": int(time.time()),
            "metadata": body.get("metadata"), "output_file_id": None, "error_file_id": None, "errors": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        asyncio.get_running_loop().create_task(self._run(batch_id))
        return JSONResponse(self.batches[batch_id])

    async def _list(self, request: Request) -> Response:
        newest_first = sorted(self.batches.values(), key=lambda batch: batch["id"], reverse=True)
        return JSONResponse({"object": "list", "data": newest_first, "has_more": False,
                             "first_id": newest_first[0]["id"] if newest_first else None,
                             "last_id": newest_first[-1]["id"] if newest_first else None})

    async def _retrieve(self, request: Request) -> Response:
        self.polls[request.path_params["batch_id"]] += 1
        found = self.batches.get(request.path_params["batch_id"])
        return JSONResponse(found) if found else _error(404, "no such batch")

    async def _run(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        await asyncio.sleep(self.config.validating_seconds)
        lines, problem = _validate(self.contents[batch["input_file_id"]], batch["endpoint"])
        if problem is not None:
            batch.update(status="failed", errors={"object": "list", "data": [problem]})
            return
        batch.update(status="in_progress", request_counts={"total": len(lines), "completed": 0, "failed": 0})
        await asyncio.sleep(self.config.in_progress_seconds)
        while not self._released.is_set():
            await asyncio.sleep(0.01)
        limit = self.config.expire_after_lines
        outputs, errors = [], []
        for number, line in enumerate(lines):
            result = self._answer(line, expired=limit is not None and number >= limit)
            answered = result["error"] is None and result["response"]["status_code"] == 200
            (outputs if answered else errors).append(result)
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        batch["status"] = "finalizing"
        await asyncio.sleep(0)
        batch["output_file_id"] = self._result_file(batch_id, "output", outputs)
        batch["error_file_id"] = self._result_file(batch_id, "error", errors)
        batch["status"] = "expired" if limit is not None and len(lines) > limit else "completed"

    def _answer(self, line: dict[str, Any], expired: bool) -> dict[str, Any]:
        custom_id = line["custom_id"]
        result: dict[str, Any] = {"id": f"batch_req_{next(self._ids):06d}", "custom_id": custom_id, "error": None}
        if expired:
            self.failed[custom_id] += 1
            result.update(response=None, error={"code": "batch_expired", "message": "the batch expired"})
        elif self._rng.random() < self.config.rate_line_error:
            self.failed[custom_id] += 1
            result["response"] = {"status_code": 500, "request_id": result["id"],
                                  "body": {"error": {"message": "the fake batch failed this line on purpose",
                                                     "type": "server_error"}}}
        else:
            self.answered[custom_id] += 1
            chat = line["url"].endswith("/chat/completions")
            result["response"] = {"status_code": 200, "request_id": result["id"],
                                  "body": self.teacher.answer(line["body"], chat)}
        return result

    def _result_file(self, batch_id: str, kind: str, results: list[dict[str, Any]]) -> str | None:
        if not results:
            return None
        data = "".join(json.dumps(result) + "\n" for result in results).encode()
        file_id = f"file-fake{next(self._ids):06d}"
        self._add_file(file_id, f"{batch_id}_{kind}.jsonl", data, f"batch_{kind}")
        return file_id


def _validate(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The input file's lines, or the first problem as the Batch API reports it."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = json.loads(raw)
            ok = (isinstance(line.get("custom_id"), str) and line.get("method") == "POST"
                  and line.get("url") == endpoint and isinstance(line.get("body"), dict))
        except ValueError:
            ok = False
        if not ok:
            return [], {"code": "invalid_request", "message": "not a valid request line", "line": number}
        if line["custom_id"] in seen:
            return [], {"code": "duplicate_custom_id", "message": "custom_id must be unique", "line": number}
        seen.add(line["custom_id"])
        lines.append(line)
    return lines, None


def _form_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data fields by name: (filename, bytes). The standard library's MIME parser reads it."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": str(status)}},
                        status_code=status)
