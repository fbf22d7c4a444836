"""`divweights studio [--port …]`: the Gradio studio (the same options as `python app.py`).

The command line is a sibling of the studio: this is the one place it hands over to `divweights_ui`
(shipped in the same distribution, needing the [studio] extra), imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib

STUDIO = "divweights_ui.launch"  # the studio's launcher: options and serving


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("studio", help="open the studio in your browser (needs divweights[studio])",
                                   description=__doc__)
    try:
        importlib.import_module(STUDIO).add_arguments(parser)
    except ModuleNotFoundError:  # installed without the studio: the command still says what to install
        pass
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(STUDIO).run(args)
