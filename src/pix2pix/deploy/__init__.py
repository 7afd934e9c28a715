"""Using a trained model: every model-file kind (``formats/``), the Translator, translating files,
export to other runtimes, and the HTTP service.

    formats/       one reader (and writer) per model-file kind, and open_model()
    translator.py  Translator: any generator + its config -> images of any size; load()
    files.py       pix2pix translate: images, folders and globs in, PNG files out
    export.py      pix2pix export: write each format, verified against PyTorch first
    serve.py       pix2pix serve: FastAPI app, model worker with batching, static/index.html
"""

from .translator import Translator, load

__all__ = ["Translator", "load"]
