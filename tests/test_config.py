from pathlib import Path

import pytest

from selfinstruct.core.config import build_config, read_config_file
from selfinstruct.core.errors import ConfigError


def test_defaults_are_the_originals() -> None:
    config = build_config({})
    assert config.backend == "cpu" and config.method == "self-instruct"
    assert (config.instruction_decoding.temperature, config.instruction_decoding.top_p) == (0.7, 0.5)
    assert config.instruction_decoding.presence_penalty == 2.0
    assert config.instance_decoding.temperature == 0.0
    assert config.alpaca_decoding.temperature == 1.0
    assert config.filters.rouge_threshold == 0.7


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "grow.toml"
    path.write_text('target = 40\nmethod = "alpaca"\n[filters]\nrouge_threshold = 0.6\n')
    config = build_config(read_config_file(path), str(path))
    assert (config.target, config.method, config.filters.rouge_threshold) == (40, "alpaca", 0.6)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"target": 0}, "field 'target': expected input should be greater than or equal to 1"),
        ({"backend": "gpu"}, "field 'backend': expected input should be 'cpu', 'openai' or 'vllm'"),
        ({"colour": "red"}, "field 'colour': expected extra inputs are not permitted"),
        ({"backend": "vllm"}, "expected the vllm backend needs --model"),
    ],
)
def test_bad_values_name_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(values, "grow.toml")
    assert message in str(caught.value)


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "grow.toml"
    path.write_text("target = \n")
    with pytest.raises(ConfigError, match="expected valid TOML"):
        read_config_file(path)
