"""The mix config (`selfinstruct mix --config mix.toml`), validated at the boundary.

    target = 20000          # rows in the mix
    cap = 3000              # K: examples-proportional with a cap (optional)
    temperature = 2.0       # T (optional, default 1)
    seed = 0
    [[source]]
    path = "outputs/nightly"          # a grow or convert run dir, or an Alpaca JSON/JSONL or messages file
    weight = 0.5                      # optional: fixed share; sources without one share the rest by rate
    [decontaminate]
    files = ["evals/test.jsonl"]
    ngram = 13
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.config import build_model, key_line
from ..core.errors import ConfigError


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="A grow or convert run directory, or an Alpaca JSON/JSONL or messages file.")
    weight: float | None = Field(None, gt=0, le=1, description="Fixed share of the mix; else a share by rate.")
    name: str | None = Field(None, description="Label in the card (default: the path's name).")
    synthetic: bool | None = Field(None, description="ROUGE-L applies between synthetic rows (default: grow rows "
                                                     "and files are synthetic, converted rows are not).")

    @property
    def label(self) -> str:
        return self.name or self.path.name or str(self.path)


class DecontaminateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[Path] = Field(default_factory=list, description="Eval data: rows of the mix that share an "
                                                                "n-gram with any of them are removed.")
    ngram: int = Field(13, ge=3, le=50, description="Words per n-gram.")


class MixDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exact: bool = Field(True, description="Drop rows equal to an earlier one (case and spacing ignored).")
    minhash: bool = Field(True, description="Drop whole examples with MinHash Jaccard at or above the threshold.")
    minhash_threshold: float = Field(0.7, gt=0, le=1)
    rouge: bool = Field(True, description="ROUGE-L on instructions, between synthetic rows only.")
    rouge_threshold: float = Field(0.7, gt=0, le=1)


class MixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: int = Field(ge=1, description="Rows in the mix (fewer when the sources hold fewer).")
    cap: int | None = Field(None, ge=1, description="K: a source's rate is min(rows, K) ** (1 / temperature).")
    temperature: float = Field(1.0, gt=0, description="T: above 1 flattens the rates toward equal shares.")
    seed: int = 0
    val_fraction: float = Field(0.02, ge=0, lt=1, description="Share of groups without a source split held out.")
    source: list[SourceConfig] = Field(min_length=1)
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    dedup: MixDedupConfig = Field(default_factory=MixDedupConfig)

    @model_validator(mode="after")
    def _weights_fit(self) -> MixConfig:
        total = sum(source.weight or 0 for source in self.source)
        if total > 1 + 1e-9:
            raise ValueError(f"source weights add up to {total:g}, more than 1")
        labels = [source.label for source in self.source]
        if len(set(labels)) != len(labels):
            raise ValueError("two sources share a name: set `name` on one of them")
        return self


def read_mix_config(path: Path) -> MixConfig:
    """The TOML file validated; a relative source or eval path is relative to the file's directory."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(str(path), None, "a readable mix config", err.strerror or str(err)) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), None, "a TOML file", str(err)) from err

    def locate(loc: tuple[str, ...]) -> str:
        line = key_line(path, tuple(part for part in loc if not part.isdigit()))
        return f"{path}:{line}" if line else str(path)

    config = build_model(MixConfig, values, str(path), locate)
    base = path.parent
    sources = [source.model_copy(update={"path": base / source.path}) for source in config.source]
    evals = [base / file for file in config.decontaminate.files]
    return config.model_copy(update={"source": sources,
                                     "decontaminate": config.decontaminate.model_copy(update={"files": evals})})
