"""The divweights studio (Gradio). Wires UI events to `core`; holds no maths."""
