"""Mix grow runs, conversions and Alpaca files into one trainer-ready set."""

from .config import MixConfig, read_mix_config
from .mix import MixResult, mix_rows, mix_run

__all__ = ["MixConfig", "MixResult", "mix_rows", "mix_run", "read_mix_config"]
