"""The real CPU teacher: llama.cpp's server with the bundled SmolLM2 model (slow: starts a real model)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from selfinstruct.core.config import Decoding, build_config
from selfinstruct.generate.prompts import render_classify_prompt
from selfinstruct.core.teacher_records import TeacherRequest
from selfinstruct.teacher.openai_compat import OpenAITeacher
from selfinstruct.teacher.registry import open_teacher

pytestmark = pytest.mark.slow


def _port_open(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


async def _ask_both_apis(base_url: str, model: str) -> list[str]:
    texts = []
    for api in ("chat", "completions"):
        teacher = OpenAITeacher(base_urls=[base_url], model=model, api=api, timeout=60, max_attempts=2)
        request = TeacherRequest(stage="classify", prompt=render_classify_prompt("Is the review positive or negative?"),
                                 decoding=Decoding(temperature=0.0, top_p=1.0, max_tokens=8))
        reply = await teacher.complete(request)
        await teacher.close()
        assert reply.completion_tokens > 0
        texts.append(reply.text)
    return texts


def test_cpu_server_answers_both_apis_on_loopback_and_stops(tmp_path: Path) -> None:
    config = build_config({"out": tmp_path})
    with open_teacher(config, tmp_path) as endpoints:
        url = endpoints.base_urls[0]
        assert url.startswith("http://127.0.0.1:")
        asyncio.run(_ask_both_apis(url, endpoints.model))
    assert not _port_open(url)
    assert (tmp_path / "logs" / "llama_cpp_server.log").is_file()


def test_cpu_server_stops_on_ctrl_c(tmp_path: Path) -> None:
    config = build_config({"out": tmp_path})
    with pytest.raises(KeyboardInterrupt):
        with open_teacher(config, tmp_path) as endpoints:
            url = endpoints.base_urls[0]
            raise KeyboardInterrupt
    assert not _port_open(url)


def test_grow_on_the_bundled_model_writes_alpaca_data(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "selfinstruct", "grow", "--out", str(out), "--target", "5"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    examples = json.loads((out / "alpaca_data.json").read_text())
    assert len({example["instruction"] for example in examples}) == 5  # tasks; each instance is a row
    assert all(example["instruction"] and example["output"] for example in examples)
    assert "done: 5/5 accepted" in done.stderr
