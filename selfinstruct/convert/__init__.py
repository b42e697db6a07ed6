"""The other route to instruction data: labelled data sets turned into rows through templates."""

from .convert import ConvertConfig, ConvertResult, convert_dataset, convert_rows

__all__ = ["ConvertConfig", "ConvertResult", "convert_dataset", "convert_rows"]
