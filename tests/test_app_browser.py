"""End-to-end test of the web app in real headless Chromium (Debian's), driven by Playwright.

The app runs in this process on a free loopback port with a tiny random-weight checkpoint; the
browser moves an attribute slider, presses Generate, and the test fetches the WAV the page's
audio player loaded, decodes it with soundfile and checks it: 16000 samples at 16 kHz, not
silent, and exactly what the settings JSON offered for download reproduces. Then the scale
(27 pitches -> 27 x 16000 samples), a click on the 2-D pad, and a bad upload (a text file: a
clear message, the server keeps serving). A screenshot is saved to
``artifacts/app-screenshot.png`` (gitignored).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (or
``$DARKGAN_CHROMIUM``) with networking features off and a fresh profile.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest


from test_app_helpers import PITCH_RANGE, make_tiny_checkpoint  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = os.environ.get("DARKGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from darkgan.app.app import serve
    from darkgan.app.controller import Studio

    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("app") / "tiny")
    studio = Studio.load(ckpt, out_dir=tmp_path_factory.mktemp("app-out"))
    studio.rank(n=16)
    demo, url = serve(studio=studio, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    try:
        yield studio, url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser_page(served):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="darkgan-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1100})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            yield page
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _audio_href(page) -> str | None:
    link = page.locator("#audio a[download]")
    return link.get_attribute("href") if link.count() else None


def _wait_new_audio(page, old: str | None) -> str:
    page.wait_for_function(
        "old => { const a = document.querySelector('#audio a[download]');"
        " return a && a.href && a.href !== old; }", arg=old)
    return _audio_href(page)


def _fetch_wav(page, href: str):
    import soundfile as sf

    resp = page.request.get(href)
    assert resp.ok, f"GET {href}: {resp.status}"
    data = resp.body()
    wave, sr = sf.read(io.BytesIO(data), dtype="float32")
    return wave, sr, data


def _fetch_json(page) -> dict:
    """Click "Settings JSON" like a user and read the downloaded file."""
    with page.expect_download() as dl:
        page.click("#download-json")
    return json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))


@pytest.mark.slow
def test_browser_generate_scale_pad_and_bad_upload(served, browser_page, tmp_path):
    studio, url = served
    page = browser_page
    wav_requests: list[str] = []
    page.on("requestfinished", lambda r: wav_requests.append(r.url) if r.url.endswith(".wav") else None)
    page.goto(url)
    page.wait_for_selector("#generate")
    page.locator("#live input[type=checkbox]").uncheck()  # only explicit clicks generate below

    # the 12 most responsive sliders are shown first, the others hidden until searched
    first = studio.order[0]
    slider = page.locator(f"#attr-{first} input[type=range]")
    slider.wait_for(state="visible")
    assert page.locator("#attr-sliders input[type=range]:visible").count() == min(12, studio.k)

    # a slider found by search keeps its value once hidden again
    hidden = studio.order[-1]
    assert page.locator(f"#attr-{hidden}").count() == 0 or not page.locator(f"#attr-{hidden}").is_visible()
    page.fill("#search textarea, #search input", studio.names[hidden])
    page.locator(f"#attr-{hidden} input[type=range]").wait_for(state="visible")
    page.locator(f"#attr-{hidden} input[type=range]").fill("0.41")
    page.fill("#search textarea, #search input", "")
    page.locator(f"#attr-{hidden} input[type=range]").wait_for(state="hidden")

    # move an attribute slider, press generate
    slider.fill("0.73")
    page.locator(f"#attr-{first} input[type=number]").wait_for()
    assert abs(float(page.locator(f"#attr-{first} input[type=number]").input_value()) - 0.73) < 1e-6
    old = _audio_href(page)
    page.click("#generate")
    href = _wait_new_audio(page, old)
    wave, sr, data = _fetch_wav(page, href)
    assert sr == 16000 and wave.shape == (16000,)
    assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) > 1e-4  # not silent
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('generated')")
    settings = _fetch_json(page)
    assert settings["attributes"][studio.names[first]] == pytest.approx(0.73)
    assert settings["attributes"][studio.names[hidden]] == pytest.approx(0.41)
    assert len(settings["attributes"]) == studio.k
    assert settings["pitch"] == 60 and settings["checkpoint_id"] == studio.checkpoint_id
    # the settings JSON reproduces the WAV the browser got, bit for bit
    again = studio.reproduce(json.dumps(settings))
    assert again.wav_path.read_bytes() == data
    assert any(u == href or u.endswith(href.rsplit("/", 1)[-1]) for u in wav_requests), "player never loaded it"
    page.wait_for_selector("#spectrogram img")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-screenshot.png"), full_page=True)

    # the scale: the same timbre over every trained pitch
    old = _audio_href(page)
    page.click("#scale")
    href = _wait_new_audio(page, old)
    wave, sr, _ = _fetch_wav(page, href)
    n_pitches = PITCH_RANGE[1] - PITCH_RANGE[0] + 1
    assert sr == 16000 and wave.shape == (n_pitches * 16000,)
    assert min(np.abs(wave[i * 16000:(i + 1) * 16000]).max() for i in range(n_pitches)) > 1e-3

    # the 2-D pad: a click at 80 % right, 20 % from the top sets the x/y attributes and plays
    page.get_by_role("tab", name="2-D pad").click()
    pad = page.locator("#pad img")
    pad.wait_for(state="visible")
    box = pad.bounding_box()
    old = _audio_href(page)
    pad.click(position={"x": 0.8 * box["width"], "y": 0.2 * box["height"]})
    _wait_new_audio(page, old)
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('generated')")
    settings = _fetch_json(page)
    x_name, y_name = studio.names[studio.order[0]], studio.names[studio.order[1]]
    assert settings["attributes"][x_name] == pytest.approx(0.8, abs=0.02)
    assert settings["attributes"][y_name] == pytest.approx(0.8, abs=0.02)
    page.screenshot(path=str(ARTIFACTS / "app-screenshot-pad.png"), full_page=True)

    # a bad upload: a clear message, no generation, the server keeps serving
    page.get_by_role("tab", name="Start from").click()
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    old = _audio_href(page)
    page.locator("#upload-audio input[type=file]").set_input_files(str(bad))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('not an audio file')")
    page.wait_for_timeout(1000)
    assert _audio_href(page) == old and "not an audio file" in page.locator("#status").inner_text()

    # start from a random validation note; its settings JSON restores the state exactly
    page.click("#from-validation")
    href = _wait_new_audio(page, old)
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('generated')")
    _, _, wav_bytes = _fetch_wav(page, href)
    with page.expect_download() as dl:
        page.click("#download-json")
    saved = Path(dl.value.path())
    settings = json.loads(saved.read_text())
    assert any(v not in (0.0, 0.73, 0.41, 0.8) for v in settings["attributes"].values())

    page.fill("#seed input", "7")
    page.get_by_role("tab", name="Attributes").click()
    page.locator(f"#attr-{first} input[type=range]").fill("0.05")
    old = _audio_href(page)
    page.click("#generate")
    _wait_new_audio(page, old)
    assert "seed 7" in page.locator("#status").inner_text()

    restored = tmp_path / "restore.json"
    restored.write_bytes(saved.read_bytes())
    old = _audio_href(page)
    page.locator("#load-settings input[type=file]").set_input_files(str(restored))
    href = _wait_new_audio(page, old)
    assert page.locator("#seed input").input_value() == str(settings["seed"])
    assert float(page.locator(f"#attr-{first} input[type=number]").input_value()) == pytest.approx(
        settings["attributes"][studio.names[first]], abs=1e-9)
    _, _, again = _fetch_wav(page, href)
    assert again == wav_bytes  # the same note, bit for bit


@pytest.mark.slow
def test_browser_timbre_map_pad_plays_a_note(served, browser_page):
    """The "Timbre map" tab (docs/timbre.md): a click on the pad synthesises a 1 s note there."""
    page = browser_page
    page.goto(served[1])
    page.wait_for_selector("#generate")  # the app is hydrated: its event handlers are wired
    page.get_by_role("tab", name="Timbre map").click()
    pad = page.locator("#timbre-pad img")
    pad.wait_for(state="visible")
    # the pad's picture comes from a load event: wait until the browser has decoded it
    page.wait_for_function("() => { const i = document.querySelector('#timbre-pad img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    box = pad.bounding_box()
    # done: the player has a note, or the status line reports an error (then the assert names it)
    done = ("() => { const a = document.querySelector('#timbre-audio a[download]');"
            " const s = document.querySelector('#timbre-status');"
            " return (a && a.href) || (s && s.innerText.includes('\u2717')); }")
    # a click lost before the page wired the pad's handler (as for a user) is retried; each retry
    # clicks a new point, so that it writes a new note instead of rewriting the file being served
    for attempt in range(5):
        pad.click(position={"x": (0.5 + 0.04 * attempt) * box["width"], "y": 0.5 * box["height"]})
        try:
            page.wait_for_function(done, timeout=20_000)
            break
        except Exception:
            if attempt == 4:
                raise AssertionError("5 clicks on the timbre pad gave no note; status line: "
                                     f"{page.locator('#timbre-status').inner_text()!r}") from None
    status = page.locator("#timbre-status").inner_text()
    assert "\u2717" not in status, f"the timbre pad's note failed: {status}"
    wave, sr, _ = _fetch_wav(page, page.locator("#timbre-audio a[download]").get_attribute("href"))
    assert sr == 16000 and wave.shape == (16000,) and np.abs(wave).max() > 1e-3
    assert "at MIDI" in status
    # the note was written into the app's own (pruned) output folder, not the system temp folder
    assert len(list(served[0].out_dir.glob("timbre-*.wav"))) >= 1
