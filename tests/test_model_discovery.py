"""Attaching with --base-url and no --model: the model id comes from the server's GET /models.

Real servers refuse a model name they do not serve (vLLM answers 404 to "default"), so every backend asks.
The real vLLM and llama.cpp servers are in test_vllm_real.py; here the fake teacher and small ASGI apps
stand at the HTTP boundary for the error paths.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from selfinstruct.core.config import Decoding, build_config
from selfinstruct.core.errors import ConfigError, TeacherUnavailable
from selfinstruct.grow import grow
from selfinstruct.generate.prompts import render_classify_prompt
from selfinstruct.core.teacher_records import TeacherReply, TeacherRequest
from selfinstruct.teacher.llamacpp import bundled_model_path, server_command
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.backend import Endpoints
from selfinstruct.teacher.registry import open_teacher
from selfinstruct.teacher.server import free_port, managed_server
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig
from fakes.serve import serve_asgi


def _models_app(answer: Response) -> Starlette:
    async def models(request: Request) -> Response:
        return answer

    return Starlette(routes=[Route("/v1/models", models, methods=["GET"])])


@pytest.mark.parametrize("backend", ["openai", "vllm", "cpu"])
def test_every_backend_attaches_with_the_model_the_server_lists(tmp_path: Path, backend: str) -> None:
    with FakeTeacher(FakeTeacherConfig(model="org/served-model", seed=3)) as teacher:
        config = build_config({"backend": backend, "base_url": [teacher.base_url], "out": tmp_path})
        with open_teacher(config, tmp_path) as endpoints:
            assert endpoints.model == "org/served-model"


def test_a_given_model_is_sent_without_asking(tmp_path: Path) -> None:
    app = _models_app(JSONResponse({"error": "no such route"}, status_code=404))
    with serve_asgi(app) as url:
        config = build_config({"backend": "vllm", "base_url": [url], "model": "mine", "out": tmp_path})
        with open_teacher(config, tmp_path) as endpoints:
            assert endpoints.model == "mine"


def test_grow_without_model_sends_the_listed_id(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(model="served-x", seed=3)) as teacher:
        result = grow(build_config({"backend": "vllm", "base_url": [teacher.base_url], "out": tmp_path,
                                    "target": 5}))
    assert result.accepted == 5 and result.dead_letters == {}


def test_a_closed_port_fails_at_once_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = build_config({"backend": "openai", "base_url": [url], "out": tmp_path})
    with pytest.raises(TeacherUnavailable, match=rf"cannot ask {url}/models which model it serves: ConnectError"):
        with open_teacher(config, tmp_path):
            pass


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (JSONResponse({"data": [{"id": "base"}, {"id": "base-lora"}]}),
         r"field 'model': expected one of the models .* serves: base, base-lora, got no --model"),
        (JSONResponse({"data": []}), r"serves: \(none\)"),
        (JSONResponse({"error": "bad key"}, status_code=401), r"answered HTTP 401; set OPENAI_API_KEY"),
        (Response("<html>", media_type="text/html"), r"did not answer an OpenAI model list"),
    ],
)
def test_an_answer_that_names_no_single_model_says_what_to_pass(tmp_path: Path, answer: Response,
                                                                message: str) -> None:
    with serve_asgi(_models_app(answer)) as url:
        config = build_config({"backend": "openai", "base_url": [url], "out": tmp_path})
        with pytest.raises((ConfigError, TeacherUnavailable), match=message):
            with open_teacher(config, tmp_path):
                pass


def test_endpoints_serving_different_models_are_refused(tmp_path: Path) -> None:
    with FakeTeacher(FakeTeacherConfig(model="a", seed=1)) as first, FakeTeacher(FakeTeacherConfig(model="b")) as second:
        config = build_config({"backend": "vllm", "base_url": [first.base_url, second.base_url], "out": tmp_path})
        with pytest.raises(ConfigError, match=r"endpoints that serve one model, got .* serves a; .* serves b"):
            with open_teacher(config, tmp_path):
                pass


@pytest.mark.slow
def test_llama_cpp_server_names_its_model_and_answers_under_it(tmp_path: Path) -> None:
    # llama.cpp's server lists the alias it was started with; attaching reads it and asks under that name.
    alias = "smollm2-attached-alias"
    port = free_port()
    argv = server_command(bundled_model_path(), port)
    argv[argv.index("--model_alias") + 1] = alias
    with managed_server(argv, port, tmp_path / "llama.log", startup_timeout=300) as url:
        for backend in ("openai", "cpu"):
            config = build_config({"backend": backend, "base_url": [url], "out": tmp_path})
            with open_teacher(config, tmp_path) as endpoints:
                assert endpoints.model == alias
        reply = asyncio.run(_ask(endpoints))
    assert reply.completion_tokens > 0


async def _ask(endpoints: Endpoints) -> TeacherReply:
    teacher = OpenAITeacher(base_urls=endpoints.base_urls, model=endpoints.model, api="completions", timeout=300,
                            max_attempts=2, concurrency=1)
    try:
        return await teacher.complete(TeacherRequest(stage="classify", prompt=render_classify_prompt("Is the review positive or negative?"),
                                                     decoding=Decoding(temperature=0.0, top_p=1.0, max_tokens=8)))
    finally:
        await teacher.close()
