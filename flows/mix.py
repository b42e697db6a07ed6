"""Entry for `prefect deploy` (prefect.yaml): the flow lives in the package, `selfinstruct.flows.mix`.

    python flows/mix.py --config mix.toml      # serve grow (nightly 01:00) and mix (nightly 03:00) together

The same as `selfinstruct serve --param mix.config=mix.toml`; see docs/datasets.md.
"""

import argparse
import os

from selfinstruct.flows import build_deployments, serve_deployments
from selfinstruct.flows.mix import MIX_NIGHTLY, mix

__all__ = ["mix"]


def serve_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve selfinstruct/mix beside selfinstruct/grow.")
    parser.add_argument("--config", default=os.environ.get("SELFINSTRUCT_MIX_CONFIG", "mix.toml"),
                        help="default mix config of a run (env SELFINSTRUCT_MIX_CONFIG, default mix.toml)")
    parser.add_argument("--out", default=os.environ.get("SELFINSTRUCT_MIX_OUT", "outputs/mix"),
                        help="default run directory of the mix (env SELFINSTRUCT_MIX_OUT)")
    parser.add_argument("--timezone", default=os.environ.get("SELFINSTRUCT_TIMEZONE", "UTC"),
                        help="IANA timezone of both schedules (env SELFINSTRUCT_TIMEZONE, default UTC)")
    parser.add_argument("--cron", default=os.environ.get("SELFINSTRUCT_MIX_CRON", MIX_NIGHTLY),
                        help=f"schedule of the mix (env SELFINSTRUCT_MIX_CRON, default {MIX_NIGHTLY!r})")
    parser.add_argument("--grow-out", default=os.environ.get("SELFINSTRUCT_OUT", "outputs/nightly"),
                        help="default run directory of the grow deployment served beside (env SELFINSTRUCT_OUT)")
    parser.add_argument("--no-grow", action="store_true", help="serve the mix deployment alone")
    return parser.parse_args()


if __name__ == "__main__":
    options = serve_options()
    serve_deployments(build_deployments(
        options.timezone, {"mix": options.cron},
        {"mix": {"config": options.config, "out": options.out}, "grow": {"out": options.grow_out}},
        ["mix"] if options.no_grow else None,
    ), limit=None)
