"""Entry for `prefect deploy` (prefect.yaml): the flow lives in the package, `selfinstruct.flows.grow`.

    python flows/grow.py [OPTIONS]     # the same as `selfinstruct serve [OPTIONS]`
"""

import sys

from selfinstruct.flows.grow import grow

__all__ = ["grow"]

if __name__ == "__main__":
    from selfinstruct.cli import app

    sys.exit(app(["serve", *sys.argv[1:]]))
