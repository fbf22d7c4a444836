"""Start the divweights studio: `python app.py` (http://127.0.0.1:7860); installed: `divweights studio`."""

import argparse
import sys

from divweights_ui.launch import add_arguments, run


def main(argv=None) -> int:
    return run(add_arguments(argparse.ArgumentParser(description="divweights studio (Gradio)")).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
