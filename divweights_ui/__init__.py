"""The divweights studio (Gradio). Wires UI events to the `divweights` library; holds no maths.

Installed, the library is the package `divweights`; in a checkout it is the folder `core/`, which
registers `divweights` as another name of its modules when imported (core/_alias.py)."""

from pathlib import Path

if (Path(__file__).resolve().parents[1] / "core" / "__init__.py").is_file():  # a checkout
    import core  # noqa: F401  (makes `import divweights` give core/'s modules)
