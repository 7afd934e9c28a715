"""The Hugging Face Hub (``pip install 'pix2pix[hub]'``): loading a folder by repo id, pushing one.

    t = pix2pix.Translator.from_pretrained("OWNER/facades-pix2pix")   # downloaded once, then cached
    t.push_to_hub("OWNER/facades-pix2pix")                            # save_pretrained + upload

Built on ``huggingface_hub``'s download and upload calls (``snapshot_download``,
``HfApi.create_repo`` / ``upload_folder``), not on its ``PyTorchModelHubMixin``: the mixin would
write its own ``config.json`` (the constructor's arguments) and model card, and tie the network
classes to the hub library. With the plain calls the folder stays ours, one layout whether it is
local or on the Hub, and the core needs nothing from the extra. The library's own settings apply
(``HF_TOKEN``, ``HF_HOME``, ``HF_HUB_OFFLINE=1`` to use the local cache only).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import CheckpointError, ConfigError
from .formats.pretrained import CARD, CONFIG, WEIGHTS


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError("the Hugging Face Hub needs the hub extra: pip install 'pix2pix[hub]'") from None
    return huggingface_hub


def looks_like_repo_id(name: str) -> bool:
    """``owner/name`` (one slash, no path that exists here): a Hub repository id."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not Path(name).exists()


def download(repo_id: str, revision: str | None = None) -> Path:
    """The repository's folder in the local Hub cache (fetched if needed); errors are one line."""
    hub = _hub()
    try:
        path = hub.snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG, WEIGHTS, CARD])
    except Exception as e:  # offline, not found, no access: the library's errors, one line each
        text = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{repo_id}: cannot get this Hugging Face repository ({type(e).__name__}: {text})") \
            from None
    return Path(path)


def push(save: Callable[[Path], Any], repo_id: str, *, private: bool | None = None, token: str | None = None,
         commit_message: str = "Upload pix2pix generator") -> str:
    """``save(folder)`` into a temporary folder, create the repo if needed, upload; returns its URL."""
    hub = _hub()
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="pix2pix-hub-") as tmp:
        folder = Path(tmp) / "model"
        save(folder)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(folder_path=os.fspath(folder), repo_id=repo_id, repo_type="model",
                              commit_message=commit_message)
        except Exception as e:
            text = " ".join(str(e).split())[:300]
            raise CheckpointError(f"{repo_id}: the upload failed ({type(e).__name__}: {text})") from None
    return str(url)
