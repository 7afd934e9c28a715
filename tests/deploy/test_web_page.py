"""The web page in a real headless Chromium (Debian's package, driven by Playwright): pick a file,
drop a file, see input and output, download the result, see the server's error message."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import noise_image
from pix2pix import load

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")

from playwright.sync_api import sync_playwright  # noqa: E402

from pix2pix.deploy.serve import create_app, running  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium (CI installs it)",
                allow_module_level=True)
# Debian's browser, never one Playwright downloads; no background traffic on an offline machine.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def natural_size(page, element_id: str) -> list[int]:
    return page.evaluate(f"() => {{ const e = document.getElementById('{element_id}'); "
                         "return [e.naturalWidth, e.naturalHeight]; }")


def test_page_translates_picked_and_dropped_images(browser, trained_run, tmp_path):
    translator = load(trained_run, device="cpu")
    picked = tmp_path / "labels.png"
    Image.fromarray(noise_image(48, 80, seed=5)).save(picked)
    with running(create_app(translator)) as url:
        page = browser.new_page()
        try:
            page.goto(f"{url}/", timeout=30_000)
            page.wait_for_function("() => document.getElementById('info').textContent.includes('unet_32')",
                                   timeout=30_000)

            # pick a file: input and output appear side by side, the result downloads
            page.set_input_files("#file", str(picked))
            page.wait_for_function("() => document.getElementById('output').naturalWidth > 0", timeout=60_000)
            assert natural_size(page, "input") == [80, 48] and natural_size(page, "output") == [80, 48]
            with page.expect_download(timeout=30_000) as info:
                page.click("#download")
            download = info.value
            assert download.suggested_filename == "labels-pix2pix.png"
            download.save_as(tmp_path / "downloaded.png")
            got = np.asarray(Image.open(tmp_path / "downloaded.png"), dtype=int)
            assert np.abs(got - np.asarray(translator(Image.open(picked)), dtype=int)).max() <= 1

            # drop a file on the drop zone
            dropped = base64.b64encode(picked.read_bytes()).decode()
            transfer = page.evaluate_handle(
                "(b64) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));"
                " const dt = new DataTransfer(); dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));"
                " return dt; }", dropped)
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            page.wait_for_function("() => document.getElementById('download').download === 'dropped-pix2pix.png'"
                                   " && document.getElementById('output').naturalWidth > 0", timeout=60_000)

            # a file that is not an image: the server's message is shown, no output
            notes = tmp_path / "notes.png"
            notes.write_text("not really a picture")
            page.set_input_files("#file", str(notes))
            page.wait_for_function("() => document.getElementById('error').textContent.length > 0", timeout=30_000)
            assert "not an image" in page.text_content("#error")
            assert natural_size(page, "output") == [0, 0] and page.is_hidden("#download")
        finally:
            page.close()
