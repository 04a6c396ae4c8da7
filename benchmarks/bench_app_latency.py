"""Web app click-to-sound latency: server side and end to end through a real browser.

    python benchmarks/bench_app_latency.py [--checkpoint PATH ...] [--preset small|student-s ...]
                                           [--repeats 15] [--threads 2] [--no-browser]
                                           [--json reports/app_latency.json]

For each model (a checkpoint folder, e.g. the shipped one or a compressed student, or a
random-weight ``--preset``: same shapes, same cost as trained weights; default: the shipped
checkpoint when installed, else ``--preset small``), after a warm-up:

- **server**: what the Generate handler does before the browser can play: validation +
  ``DarkGAN.generate`` (generator, MAG-IF -> waveform, limiter) + 16-bit WAV encoding +
  settings JSON (:meth:`darkgan.app.controller.Studio.render`); split into the generation
  alone and the rest. Also the "Play scale" handler (every pitch, batched). Median and p90, ms.
- **browser**: the app served on a free loopback port, Debian's Chromium driven by Playwright;
  from the click on Generate (``performance.now()`` just before a DOM click) to the moment the
  player's media element has started playing the new note (the resolution of its ``play()``
  promise, through a hook on ``HTMLMediaElement.prototype.play``):
  the round trip through Gradio's queue, the WAV download and decoding, the player's start.
  The seed changes every repeat so every click makes a new note. Median and p90, ms.

The spectrogram is drawn after the sound (a chained step), so it is not in these numbers.
The machine's load average is printed: on the shared 2-core machine compare numbers taken at
similar load.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np

CHROMIUM = os.environ.get("DARKGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]

PLAY_HOOK = """
window.__playing = [];
const __origPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  const r = __origPlay.apply(this, arguments);
  if (r && r.then) r.then(() => window.__playing.push(performance.now()), () => {});
  return r;
};
"""


def random_checkpoint(preset: str, root: Path, k: int = 128, lo: int = 44, hi: int = 70) -> Path:
    """A random-weight checkpoint folder of ``preset`` (``tiny``/``small``/``paper``, or a
    ``student-*`` preset of :mod:`darkgan.compression.presets` over ``small``), K attributes,
    MIDI lo..hi."""
    import torch

    from darkgan.models.checkpoint import CheckpointConfig, save_checkpoint
    from darkgan.models.config import get_preset
    from darkgan.models.generator import Generator
    from darkgan.teacher.classes import audioset_classes

    if preset.startswith("student-"):  # a compression student of the small preset (issue 6)
        from darkgan.compression.presets import student_config

        cfg = student_config(get_preset("small"), preset)
    else:
        cfg = get_preset(preset)
    torch.manual_seed(0)
    g = Generator(cfg.model, hi - lo + 1, k)
    names, _ = audioset_classes()
    idx = list(range(137, 137 + k))
    cc = CheckpointConfig(config=cfg, attributes=[names[i] for i in idx], class_indices=idx, pitch_range=(lo, hi),
                          normalizer={"mean": [-5.0, 0.0], "std": [2.5, 0.5]}, teacher={"id": "efficientat-mn04"},
                          temperature=2.0, scale=cfg.model.n_scales - 1, alpha=1.0, step=1)
    out = save_checkpoint(root / f"random-{preset}", g, cc)
    import numpy as np

    from darkgan.generation.bank import AttributeBank, write_bank

    pitch = np.repeat(np.arange(lo, hi + 1), 4)  # a random attribute bank: it defines the sliders' user scale
    logits = np.random.default_rng(0).normal(-3, 2, size=(len(pitch), k)).astype(np.float32)
    write_bank(out, AttributeBank(logits, pitch, [], {"teacher": "efficientat-mn04"}), cc.attributes)
    return out


def stats_ms(xs: list[float]) -> dict:
    ms = np.asarray(xs, dtype=np.float64) * 1000
    return {"median_ms": round(float(np.median(ms)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "min_ms": round(float(ms.min()), 1), "n": int(ms.size)}


def server_side(studio, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    lo, hi = studio.pitch_range
    studio.render(60, 0, [0.5] * studio.k)  # warm-up
    total, gen = [], []
    for i in range(repeats):
        values = rng.uniform(size=studio.k)
        pitch = int(rng.integers(lo, hi + 1))
        t0 = time.perf_counter()
        studio.model.generate(pitch, attributes=dict(zip(studio.names, values.tolist())), n=1, seed=1000 + i)
        gen.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        studio.render(pitch, 1000 + i, values)
        total.append(time.perf_counter() - t0)
    scale = []
    for i in range(max(2, repeats // 5)):
        t0 = time.perf_counter()
        studio.render(60, i, rng.uniform(size=studio.k), scale=True)
        scale.append(time.perf_counter() - t0)
    return {"render": stats_ms(total), "generate_only": stats_ms(gen), "scale": stats_ms(scale),
            "scale_pitches": hi - lo + 1}


def browser(studio, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    from darkgan.app.app import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = serve(studio=studio, port=port, block=False, quiet=True)
    lat = []
    try:
        with tempfile.TemporaryDirectory(prefix="darkgan-chromium-") as profile, sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
            ctx.add_init_script(PLAY_HOOK)
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector("#generate")
            page.locator("#live input[type=checkbox]").uncheck()
            for i in range(repeats + 2):  # the first two are warm-up
                page.fill("#seed input", str(5000 + i))
                page.locator("#seed input").blur()
                page.wait_for_timeout(300)
                n_before = page.evaluate("() => window.__playing.length")
                t0 = page.evaluate("() => { const t = performance.now(); "
                                   "document.querySelector('#generate').click(); return t; }")
                page.wait_for_function("n => window.__playing.length > n", arg=n_before)
                t1 = page.evaluate("() => window.__playing[window.__playing.length - 1]")
                if i >= 2:
                    lat.append((t1 - t0) / 1000)
                page.wait_for_timeout(1200)  # let the note (and the spectrogram step) finish
            ctx.close()
    finally:
        demo.close()
    return {"click_to_playing": stats_ms(lat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], help="checkpoint folder (repeatable)")
    ap.add_argument("--preset", action="append", default=[],
                    help="random-weight preset: tiny, small, paper or a student-* preset (repeatable)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    from darkgan.app.controller import Studio
    from darkgan.paths import shipped_checkpoint

    torch.set_num_threads(args.threads)
    models = [(str(c), Path(c)) for c in args.checkpoint]
    tmp = Path(tempfile.mkdtemp(prefix="darkgan-bench-app-"))
    if not models and not args.preset:
        if shipped_checkpoint().exists():
            models.append(("shipped", shipped_checkpoint()))
        else:
            args.preset = ["small"]
    for preset in args.preset:
        models.append((f"random-weight {preset}", random_checkpoint(preset, tmp)))
    results = {"load_average": os.getloadavg(), "threads": args.threads, "models": {}}
    for name, path in models:
        studio = Studio.load(path, out_dir=tmp / "out")
        studio.rank(measure=False)
        res = {"checkpoint_id": studio.checkpoint_id, "server": server_side(studio, args.repeats)}
        if not args.no_browser:
            res["browser"] = browser(studio, args.repeats)
        results["models"][name] = res
        print(json.dumps({name: res}, indent=1), flush=True)
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, results)


if __name__ == "__main__":
    main()
