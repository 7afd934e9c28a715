"""Hugging Face folders: save_pretrained / export --format pretrained write config.json +
model.safetensors + a model card, pix2pix.load and from_pretrained read them back with identical
outputs, a run folder is told apart from one, and the [hub] extra is tested offline only."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from pix2pix import Translator, load
from pix2pix.cli import main
from pix2pix.deploy.formats import detect_kind
from pix2pix.errors import CheckpointError, ConfigError, OutputError

pytestmark = pytest.mark.usefixtures("one_thread")


def x_batch() -> torch.Tensor:
    return torch.rand(3, 3, 32, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1


def test_save_pretrained_round_trip_is_identical(reference, tmp_path):
    folder = reference.save_pretrained(tmp_path / "hf")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    again = load(folder, device="cpu")
    assert again.kind == "pretrained" and again.config == reference.config
    assert torch.equal(again(x_batch(), native_size=True), reference(x_batch(), native_size=True))
    assert torch.equal(Translator.from_pretrained(folder, device="cpu")(x_batch()), reference(x_batch()))
    alone = load(folder / "model.safetensors", device="cpu")  # the weights file opens on its own too
    assert torch.equal(alone(x_batch()), reference(x_batch()))


def test_config_json_is_the_training_config_plus_the_export_metadata(trained_run, tmp_path):
    assert main(["export", "--checkpoint", str(trained_run), "--format", "pretrained", "--output",
                 str(tmp_path / "hf")]) == 0
    doc = json.loads((tmp_path / "hf" / "config.json").read_text())
    run_config = json.loads((trained_run / "config.json").read_text())
    meta = doc.pop("pix2pix")
    assert doc == run_config
    assert meta["format"] == "pix2pix-export" and meta["input"]["multiple"] == 32 and meta["source"]["epoch"] == 1


def test_the_model_card_describes_the_model_and_its_scores(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "scores.json").write_text(json.dumps({"task": "generic", "images": 4, "psnr": 21.5, "ssim": 0.61,
                                                 "l1": 0.12, "per_image": []}))
    load(run, device="cpu").save_pretrained(tmp_path / "hf", run_dir=run)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pix2pix\npipeline_tag: image-to-image\n")
    for words in ("`unet_32`", "| width (ngf) | 8 |", "| direction | AtoB |", "| training size | 32 |",
                  "From `scores.json`", "| psnr | 21.5 |", "## Intended use", "isola2017image"):
        assert words in card, words
    load(trained_run, device="cpu").save_pretrained(tmp_path / "hf2")
    assert "None recorded" in (tmp_path / "hf2" / "README.md").read_text()


def test_run_folders_and_hugging_face_folders_are_told_apart(trained_run, exported, tmp_path):
    assert detect_kind(trained_run) == "checkpoint" and detect_kind(exported["pretrained"]) == "pretrained"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a run folder .* nor a Hugging Face folder"):
        load(tmp_path / "empty", device="cpu")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(OutputError, match="exists and is not empty"):
        load(trained_run, device="cpu").save_pretrained(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").exists()


def test_a_program_cannot_be_saved_as_weights(exported, tmp_path):
    with pytest.raises(ConfigError, match="save_pretrained needs weights"):
        load(exported["dir"] / "generator.ts", device="cpu", trust_program=True).save_pretrained(tmp_path / "hf")


# ----- the [hub] extra, offline ---------------------------------------------------------------
hub = pytest.importorskip("huggingface_hub", reason="the hub extra is not installed (pip install -e '.[hub]')")


def test_from_pretrained_by_repo_id_reads_the_hub_cache_offline(exported, reference, tmp_path, monkeypatch):
    """A repo id goes through huggingface_hub.snapshot_download (offline here, against a local copy)."""
    calls = []

    def snapshot(repo_id, revision=None, allow_patterns=None, **kw):
        calls.append((repo_id, revision, sorted(allow_patterns)))
        return str(exported["pretrained"])

    monkeypatch.setattr(hub, "snapshot_download", snapshot)
    t = Translator.from_pretrained("someone/tiny-pix2pix", device="cpu", revision="v1")
    assert calls == [("someone/tiny-pix2pix", "v1", ["README.md", "config.json", "model.safetensors"])]
    assert torch.equal(t(x_batch()), reference(x_batch()))


def test_a_repo_that_is_not_cached_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="someone/missing: cannot get this Hugging Face repository") as e:
        Translator.from_pretrained("someone/missing", device="cpu")
    assert "\n" not in str(e.value)


def test_push_to_hub_uploads_the_folder_save_pretrained_writes(reference, tmp_path, monkeypatch):
    seen = {}

    class FakeApi:
        def __init__(self, token=None):
            seen["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None):
            seen["created"] = (repo_id, private, exist_ok, repo_type)
            return f"https://example.invalid/{repo_id}"

        def upload_folder(self, folder_path, repo_id, repo_type=None, commit_message=None):
            seen["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            shutil.copytree(folder_path, tmp_path / "uploaded")

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    url = reference.push_to_hub("someone/tiny-pix2pix", private=True, token="t0k")
    assert url.endswith("someone/tiny-pix2pix") and seen["token"] == "t0k"
    assert seen["created"] == ("someone/tiny-pix2pix", True, True, "model")
    assert seen["files"] == ["README.md", "config.json", "model.safetensors"]
    assert torch.equal(load(tmp_path / "uploaded", device="cpu")(x_batch()), reference(x_batch()))


def test_without_the_extra_the_hub_says_what_to_install(reference, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match=r"pip install 'pix2pix\[hub\]'"):
        Translator.from_pretrained("someone/tiny-pix2pix")
    with pytest.raises(ConfigError, match=r"pix2pix\[hub\]"):
        reference.push_to_hub("someone/tiny-pix2pix")
