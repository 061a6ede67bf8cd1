"""A real browser on the upload page: Debian's chromium, headless, driven by Playwright for Python, uploads
images to a real ``emotion-batch serve`` process on loopback, clicks Predict and checks the boxes and bars.

Playwright launches the system's chromium (``executable_path``): ``playwright install`` and its browser
download are never needed. The screenshot is kept as ``tests/artifacts/serve_page.png`` (its path is
printed). Skipped, with the reason, when chromium (``apt-get install chromium``) or the ``playwright``
package (the test extra) is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the test extra)")

from emotion_batch.labels import EMOTIONS  # noqa: E402

from .serve_helpers import free_port, group_photo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

STATUS = "document.getElementById('status') ? document.getElementById('status').textContent : ''"


def wait_for(page, expression: str, timeout: float = 30.0) -> None:
    """Wait until the page's ``expression`` is true, saying the page's status line when it never is.

    The expression goes in as a function: a bare string would be ``eval``-ed in the page, which the page's
    Content Security Policy (no ``unsafe-eval``) rightly refuses."""
    try:
        page.wait_for_function(f"() => {expression}", timeout=timeout * 1000, polling=100)
    except playwright_api.TimeoutError:
        raise TimeoutError(f"waited {timeout} s for {expression!r}; status line: {page.evaluate(STATUS)!r}") from None


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def server(tmp_path, tiny_model_file):
    """``emotion-batch serve`` in its own process on 127.0.0.1, exactly as a user starts it."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("EMOTION_BATCH_DB", None)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emotion_batch", "serve", "--model", str(tiny_model_file),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=tmp_path)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 120, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def page():
    """A page of Debian's chromium, headless, launched by Playwright (no browser of its own downloaded)."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"])
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


COLLECT = """(() => {
  const rect = (e) => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  return Array.from(document.querySelectorAll('section.result')).map((s) => ({
    filename: s.dataset.filename, status: s.dataset.status,
    error: s.querySelector('.error') ? s.querySelector('.error').textContent : null,
    image: s.querySelector('img') ? Object.assign(rect(s.querySelector('img')), {
      loaded: s.querySelector('img').complete && s.querySelector('img').naturalWidth > 0}) : null,
    boxes: Array.from(s.querySelectorAll('.box')).map((b) => Object.assign(rect(b), {label: b.textContent})),
    faces: Array.from(s.querySelectorAll('.face')).map((f) => Array.from(f.querySelectorAll('.bar')).map((b) => ({
      emotion: b.dataset.emotion, p: Number(b.dataset.p), top: b.classList.contains('top'),
      fill: b.querySelector('.fill').getBoundingClientRect().width,
      track: b.querySelector('.track').getBoundingClientRect().width,
      text: b.querySelector('.value').textContent}))),
  }));
})()"""


def test_upload_click_predict_and_see_boxes_and_bars(tmp_path, server, page):
    data, truth = group_photo(seed=11, faces=3, size=(960, 540))
    photo = tmp_path / "group.jpg"
    photo.write_bytes(data)
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("a text file with an image name\n")
    expected = httpx.post(server + "v1/predict", files={"file": ("group.jpg", data, "image/jpeg")}, timeout=60).json()
    assert len(expected["faces"]) == 3

    page.goto(server)
    wait_for(page, "document.readyState === 'complete' && !!document.getElementById('predict')")
    assert "apparent expressions, not feelings" in page.evaluate("document.body.innerText")
    page.set_input_files("#files", [str(photo), str(bogus)])
    assert page.evaluate("document.getElementById('files').files.length") == 2

    page.click("#predict")  # a real click (the mouse moved, pressed, released on the button), not a script's .click()
    wait_for(page, "document.body.dataset.done === '1'")
    wait_for(page, "Array.from(document.querySelectorAll('section.result img'))"
                   ".every((i) => i.complete && i.naturalWidth)")
    sections = page.evaluate(COLLECT)
    status = page.evaluate(STATUS)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "serve_page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"\nscreenshot of the upload page: {screenshot}")

    assert "2 images, 3 faces" in status, status
    assert [(s["filename"], s["status"]) for s in sections] == [("group.jpg", "ok"), ("notes.jpg", "rejected")]
    group, rejected = sections
    assert "not an image" in rejected["error"]
    assert group["image"]["loaded"] and group["image"]["w"] > 100

    # one box per face, where the API put it, scaled to the displayed image
    assert len(group["boxes"]) == 3
    scale = group["image"]["w"] / expected["width"]
    for shown, face in zip(group["boxes"], expected["faces"]):
        box = face["box"]
        assert abs((shown["x"] - group["image"]["x"]) - box["x"] * scale) < 3
        assert abs((shown["y"] - group["image"]["y"]) - box["y"] * scale) < 3
        assert abs(shown["w"] - box["w"] * scale) < 3 and abs(shown["h"] - box["h"] * scale) < 3
        assert face["top_emotion"] in shown["label"]

    # seven bars per face, in class order, as long as the probabilities say
    assert len(group["faces"]) == 3
    for bars, face in zip(group["faces"], expected["faces"]):
        assert [b["emotion"] for b in bars] == list(EMOTIONS)
        for bar in bars:
            p = face["probabilities"][bar["emotion"]]
            assert bar["p"] == pytest.approx(p, abs=1e-6)
            assert bar["fill"] / bar["track"] == pytest.approx(p, abs=0.01)
            assert bar["text"] == f"{100 * p:.1f}%"
        assert [b["emotion"] for b in bars if b["top"]] == [face["top_emotion"]]
        assert sum(b["p"] for b in bars) == pytest.approx(1.0, abs=1e-3)

    # the picture a person sees: the page with the yellow face boxes drawn on the photo
    image = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    assert image.shape[1] >= 1000 and image.shape[0] >= 600
    yellow = (np.abs(image - np.array([255, 212, 0])).sum(axis=2) < 40).sum()
    assert yellow > 500, f"no face boxes visible in {screenshot}"
