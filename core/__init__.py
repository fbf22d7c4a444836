"""divweights core: diversity weights (mode balancing) for generative models.

Importable without gradio; heavy dependencies (torch, open_clip, umap) are imported
inside the functions that need them so `import core` stays quick.
"""

__version__ = "0.1.0"
