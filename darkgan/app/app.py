"""The DarkGAN web app (Gradio): play the generator like an instrument, steered by words.

``build_app(studio)`` lays out the page for a loaded :class:`darkgan.app.controller.Studio`;
``serve(...)`` starts it (loopback only by default, no share link, no analytics). The logic
lives in :mod:`darkgan.app.state` (pure) and :mod:`darkgan.app.controller` (model-bound); the
functions here only move values between widgets and those, and turn every
:class:`darkgan.errors.DarkGANError` into a warning toast plus a line in the status box, so bad
input never stops the server.

Page (see docs/app.md): pitch slider over the trained range, seed (and a dice), Generate / Play
scale, the audio player (autoplay) and the spectrogram, downloads (WAV, settings JSON) and a
settings upload; tabs: "Attributes" (a search box over K sliders; the 12 most responsive shown
first), "Start from" (random validation note, dataset note by name, uploaded audio) and
"2-D pad" (two attributes or two random directions on x/y; click the picture or move the two
linked sliders).
"""
import functools
import logging
import os
import random
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np

from darkgan.app import state as st
from darkgan.app.controller import Studio
from darkgan.errors import DarkGANError

log = logging.getLogger("darkgan.app")

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

CSS = """
#status {min-height: 2.5em;}
footer {display: none !important;}
"""


def note_name(midi: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation)."""
    midi = int(midi)
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def _status(lines: list[str], ok: str = "") -> str:
    text = ok
    if lines:
        text += ("\n\n" if text else "") + "\n".join(f"- ⚠ {m}" for m in lines)
    return text


def _warn_all(messages: list[str]) -> None:
    import gradio as gr

    for m in messages[:4]:
        gr.Warning(m)


def safe(n_outputs: int, status_index: int, go_index: int | None = None) -> Callable:
    """Decorate a handler so any error becomes a warning + status line and every other output
    is left unchanged (``gr.skip()``); the server keeps running. ``go_index``: an output set to
    False on error (the flag that stops a chained generation)."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            import gradio as gr

            try:
                return fn(*args, **kwargs)
            except DarkGANError as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            except Exception as e:  # a bug or an unexpected input: report, keep serving
                log.error("app handler %s failed:\n%s", fn.__name__, traceback.format_exc())
                msg = f"internal error ({type(e).__name__}: {e})"
            gr.Warning(msg)
            out = [gr.skip()] * n_outputs
            out[status_index] = f"✗ {msg}"
            if go_index is not None:
                out[go_index] = False
            return tuple(out) if n_outputs > 1 else out[0]

        return wrapper

    return deco


def build_app(studio: Studio, title: str = "DarkGAN"):
    """The Gradio ``Blocks`` for ``studio``.

    Elements with stable ids (for tests and scripts): ``#pitch``, ``#seed``, ``#generate``,
    ``#scale``, ``#audio``, ``#spectrogram``, ``#status``, ``#search``, ``#attr-<i>`` (slider of
    vocabulary attribute ``i``), ``#pad``, ``#pad-x``, ``#pad-y``, ``#download-wav``,
    ``#download-json``, ``#load-settings``, ``#upload-audio``, ``#make-instrument``, ``#download-sfz``,
    ``#download-sf2``.
    """
    import gradio as gr

    lo, hi = studio.pitch_range
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            f"## DarkGAN: synthesis steered by words\n"
            f"Checkpoint `{studio.checkpoint_id}` · pitch {note_name(lo)}–{note_name(hi)} "
            f"(MIDI {lo}–{hi}) · {studio.k} attributes (order: {studio.ranking_source})"
            + "".join(f"\n\n⚠ {m}" for m in studio.load_messages)
        )
        w = SimpleNamespace(settings_state=gr.State(None), pad_base=gr.State(None))
        with gr.Row():
            with gr.Column(scale=5):
                _player(w, studio)
            with gr.Column(scale=6):
                with gr.Tabs():
                    _attribute_tab(w, studio)
                    _start_tab(w)
                    _pad_tab(w, studio)
                    _timbre_tab(w)
        _wire_generation(w, studio)
        _wire_settings_and_start(w, studio)
        _wire_pad(w, studio)
        _wire_timbre(w, studio)
    return demo


def _player(w: SimpleNamespace, studio: Studio) -> None:
    """Pitch, seed, buttons, player, spectrogram, downloads and the settings upload (into ``w``)."""
    import gradio as gr

    lo, hi = studio.pitch_range
    start_pitch = min(max(60, lo), hi)
    with gr.Row():
        w.pitch = gr.Slider(lo, hi, value=start_pitch, step=1, label=f"Pitch (MIDI {lo}–{hi})",
                            info=note_name(start_pitch), elem_id="pitch")
    with gr.Row():
        w.seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=st.SEED_MAX, elem_id="seed", scale=3)
        w.dice = gr.Button("⚄ New seed", elem_id="dice", scale=1)
    with gr.Row():
        w.gen_btn = gr.Button("▶ Generate", variant="primary", elem_id="generate")
        w.scale_btn = gr.Button("♫ Play scale", elem_id="scale")
        w.live = gr.Checkbox(value=True, label="play on every change", elem_id="live")
    w.audio = gr.Audio(label="Note", type="filepath", autoplay=True, interactive=False, elem_id="audio",
                       buttons=["download"])
    w.spec = gr.Image(label="Spectrogram", interactive=False, elem_id="spectrogram", format="png", buttons=[])
    w.status = gr.Markdown("Press **Generate**.", elem_id="status")
    with gr.Row():
        w.dl_wav = gr.DownloadButton("⬇ WAV", elem_id="download-wav", interactive=False)
        w.dl_json = gr.DownloadButton("⬇ Settings JSON", elem_id="download-json", interactive=False)
    with gr.Row():  # issue 21: the sound as a sampler instrument over every key
        w.inst_btn = gr.Button("🎹 Make instrument (all keys)", elem_id="make-instrument")
        w.dl_sfz = gr.DownloadButton("⬇ Instrument (SFZ zip)", elem_id="download-sfz", interactive=False)
        w.dl_sf2 = gr.DownloadButton("⬇ Instrument (SF2)", elem_id="download-sf2", interactive=False)
    w.load_json = gr.File(label="Load settings JSON (restores the state)", file_types=[".json"],
                          type="filepath", elem_id="load-settings", height=130)


def _attribute_tab(w: SimpleNamespace, studio: Studio) -> None:
    """The search box and one user-scale slider per attribute, most responsive first (into ``w``)."""
    import gradio as gr

    names, order = studio.names, studio.order
    visible0 = st.filter_attributes("", names, order)
    with gr.Tab("Attributes", id="tab-attributes"):
        gr.Markdown("0 = the typical note of the training data, 1 = as much as its 1 % most "
                    "extreme notes, above 1 = beyond anything in the data, below 0 = less than typical.")
        w.search = gr.Textbox(placeholder="search attributes (empty: the 12 most responsive; * = all)",
                              show_label=False, elem_id="search")
        w.sliders = [None] * studio.k
        with gr.Column(elem_id="attr-sliders"):
            for i in order:  # most responsive first
                w.sliders[i] = gr.Slider(st.ATTR_MIN, st.ATTR_MAX, value=0.0, step=0.01, label=names[i],
                                         visible=visible0[i], elem_id=f"attr-{i}", elem_classes=["attr"])
        w.zero_btn = gr.Button("Reset all attributes to 0 (typical)", size="sm")


def _start_tab(w: SimpleNamespace) -> None:
    """"Start from": a random validation note, a dataset note by name, an upload (into ``w``)."""
    import gradio as gr

    with gr.Tab("Start from", id="tab-start"):
        gr.Markdown("Set every attribute from a real sound (the teacher labels it: "
                    "timbre transfer). The pitch and seed stay yours.")
        w.valid_btn = gr.Button("⚄ Random validation note", elem_id="from-validation")
        with gr.Row():
            w.note_box = gr.Textbox(label="Dataset note (NSynth name, needs --data)", elem_id="note-name", scale=4)
            w.note_btn = gr.Button("Use", elem_id="from-note", scale=1)
        w.upload = gr.File(label="…or upload audio (WAV/FLAC/OGG/MP3, ≤ 30 s; its first second "
                           "after any leading silence is used)", type="filepath", elem_id="upload-audio", height=130)


def _pad_tab(w: SimpleNamespace, studio: Studio) -> None:
    """The 2-D pad: two axis choices, the picture, two linked sliders (into ``w``)."""
    import gradio as gr

    axis_choices = [studio.names[i] for i in studio.order]
    pad_choices = [st.RANDOM_DIRECTION] + axis_choices
    y0 = axis_choices[min(1, studio.k - 1)]
    with gr.Tab("2-D pad", id="tab-pad"):
        with gr.Row():
            w.x_axis = gr.Dropdown(pad_choices, value=axis_choices[0], label="x axis", elem_id="pad-x-axis")
            w.y_axis = gr.Dropdown(pad_choices, value=y0, label="y axis", elem_id="pad-y-axis")
        w.dir_seed = gr.Number(value=0, precision=0, label="random directions seed", visible=False)
        w.pad = gr.Image(value=st.pad_image(0.5, 0.5, axis_choices[0], y0), label="2-D pad", show_label=False,
                         interactive=False, elem_id="pad", format="png", buttons=[], height=st.PAD_SIZE,
                         width=st.PAD_SIZE)
        with gr.Row():
            w.pad_x = gr.Slider(0, 1, value=0.5, step=0.01, label="x", elem_id="pad-x")
            w.pad_y = gr.Slider(0, 1, value=0.5, step=0.01, label="y", elem_id="pad-y")
        w.new_dirs = gr.Button("New random directions", size="sm")


def _timbre_tab(w: SimpleNamespace) -> None:
    """Timbre map pad (docs/timbre.md): the shipped perceptual timbre space, drawn when the page
    loads; a click synthesises that point (at the player's pitch, clamped to the space's range)."""
    import gradio as gr

    from darkgan.timbre import explore

    w.timbre_space = {}

    def space():
        if "space" not in w.timbre_space:
            from darkgan.timbre.space import TimbreSpace

            w.timbre_space["space"] = TimbreSpace.load()
        return w.timbre_space["space"]

    w.timbre_space_fn = space
    with gr.Tab("Timbre map", id="tab-timbre"):
        gr.Markdown("Instruments placed by a VAE whose distances follow listeners' dissimilarity "
                    "ratings (blue: rated, green: unrated). Click anywhere to hear that timbre.")
        w.timbre_pad = gr.Image(value=lambda: st._render(explore.pad_figure(space(), size=st.PAD_SIZE)), show_label=False,
                                interactive=False, elem_id="timbre-pad", format="png", buttons=[],
                                height=st.PAD_SIZE, width=st.PAD_SIZE)
        w.timbre_audio = gr.Audio(label="Timbre", type="filepath", autoplay=True, interactive=False,
                                  elem_id="timbre-audio", buttons=["download"])
        w.timbre_status = gr.Markdown("", elem_id="timbre-status")


def timbre_pad_note(studio: Studio, space, x: float, y: float, pitch: float) -> tuple[Path, int]:
    """The timbre pad's note: the latent point under pad coordinates ``(x, y)`` in [0, 1]^2
    synthesised (1 s; the nearest instruments' real notes moved there, :meth:`TimbreSpace.synth`)
    at ``pitch`` clamped to the space's range, written by
    :meth:`Studio.save_wav` into the app's pruned output folder. Returns ``(WAV path, MIDI pitch)``."""
    from darkgan.timbre import explore

    p = int(min(max(int(pitch), space.pitch_range[0]), space.pitch_range[1]))
    wave = space.synth(explore.pad_to_latent(space, x, y), p)
    return studio.save_wav(wave, f"timbre-x{x:.3f}-y{y:.3f}-p{p}"), p


def _wire_timbre(w: SimpleNamespace, studio: Studio) -> None:
    """A click on the timbre pad -> latent point -> 1 s note in the tab's player."""
    import gradio as gr

    from darkgan.timbre import explore

    @safe(3, 2)
    def click(evt: gr.SelectData, pitch):
        x, y = st.pad_click_to_xy(*evt.index)
        sp = w.timbre_space_fn()
        path, p = timbre_pad_note(studio, sp, x, y, pitch)
        return st._render(explore.pad_figure(sp, x, y, st.PAD_SIZE)), str(path), f"({x:.2f}, {y:.2f}) at MIDI {p}"

    w.timbre_pad.select(click, [w.pitch], [w.timbre_pad, w.timbre_audio, w.timbre_status])


def _draw_spectrogram(ws):
    """The spectrogram of the last sound ``(wav path, title)`` (skipped when the file is gone)."""
    import gradio as gr
    import soundfile as sf

    if not ws:
        return gr.skip()
    path, title = ws
    try:
        wave, _ = sf.read(path, dtype="float32")
    except Exception:  # the file was cleaned up meanwhile: nothing to draw
        return gr.skip()
    return st.spectrogram_image(wave, title=title, width_px=900 if wave.size > st.N_SAMPLES else 640)


def _wire_generation(w: SimpleNamespace, studio: Studio) -> None:
    """Generate, scale, live play, dice, search, reset. Sets ``w.then_generate``: chain a
    generation (and its spectrogram) after an event whose last output ``w.go`` is True."""
    import gradio as gr

    lo, hi = studio.pitch_range
    # The sound comes first: the handler returns the audio (autoplay) and the downloads; the
    # spectrogram (~0.2 s of matplotlib) is drawn by a follow-up step, off the click-to-sound path.
    w.wave_state = gr.State(None)  # (wav path, title) of the last sound, for the spectrogram
    w.go = gr.State(False)  # did the step before a chained generation succeed?
    outputs = [w.audio, w.status, w.dl_wav, w.dl_json, w.settings_state, w.wave_state]
    inputs = [w.pitch, w.seed, *w.sliders]

    def _render(p, s, values, scale=False):
        r = studio.render(p, s, list(values), scale=scale)
        _warn_all(r.messages)
        what = (f"scale {note_name(lo)}–{note_name(hi)}" if scale
                else f"{note_name(r.settings.pitch)} (MIDI {r.settings.pitch})")
        title = f"{what}, seed {r.settings.seed}"
        ok = f"✓ {title} — {r.wave.size / st.SAMPLE_RATE:.1f} s, generated in {1000 * r.seconds:.0f} ms"
        return (str(r.wav_path), _status(r.messages, ok), gr.DownloadButton(value=str(r.wav_path), interactive=True),
                gr.DownloadButton(value=str(r.json_path), interactive=True), r.settings.to_dict(),
                (str(r.wav_path), title))

    @safe(len(outputs), 1)
    def generate(p, s, *values):
        return _render(p, s, values)

    @safe(len(outputs), 1)
    def play_scale(p, s, *values):
        return _render(p, s, values, scale=True)

    @safe(len(outputs), 1)
    def generate_if_live(is_live, p, s, *values):
        return _render(p, s, values) if is_live else tuple(gr.skip() for _ in outputs)

    @safe(3, 2)
    def make_instrument(s, *values):
        sfz_zip, sf2, messages = studio.export_instrument(s, list(values))
        _warn_all(messages)
        return (gr.DownloadButton(value=str(sfz_zip), interactive=True),
                gr.DownloadButton(value=str(sf2), interactive=True),
                _status(messages, f"✓ instrument ready: MIDI {lo}–{hi}, seed {s} (SFZ zip and SoundFont 2)"))

    w.inst_btn.click(make_instrument, [w.seed, *w.sliders], [w.dl_sfz, w.dl_sf2, w.status], concurrency_id="gen")

    def spectrogram_after(ev):
        return ev.then(_draw_spectrogram, w.wave_state, w.spec, show_progress="hidden")

    w.then_generate = lambda ev: spectrogram_after(
        ev.then(generate_if_live, [w.go, *inputs], outputs, concurrency_id="gen"))
    spectrogram_after(w.gen_btn.click(generate, inputs, outputs, concurrency_id="gen"))
    spectrogram_after(w.scale_btn.click(play_scale, inputs, outputs, concurrency_id="gen"))
    spectrogram_after(gr.on([s.release for s in w.sliders] + [w.pitch.release, w.seed.submit], generate_if_live,
                            [w.live, *inputs], outputs, concurrency_id="gen"))
    gr.on([s.release for s in w.sliders], lambda: None, None, w.pad_base)  # manual edit: new pad origin
    w.pitch.change(lambda p: gr.Slider(info=note_name(int(p))), w.pitch, w.pitch, show_progress="hidden")
    w.then_generate(w.dice.click(lambda: (random.randint(0, 99_999), True), None, [w.seed, w.go]))
    w.search.change(lambda q: [gr.Slider(visible=v) for v in st.filter_attributes(q, studio.names, studio.order)],
                    w.search, w.sliders, show_progress="hidden")
    w.zero_btn.click(lambda: [0.0] * studio.k, None, w.sliders).then(lambda: None, None, w.pad_base)


def _wire_settings_and_start(w: SimpleNamespace, studio: Studio) -> None:
    """The settings upload and the "Start from" tab: set every slider, then play."""
    import gradio as gr

    lo, hi = studio.pitch_range
    k = studio.k
    restore_outputs = [w.pitch, w.seed, *w.sliders, w.status, w.go]
    start_outputs = [*w.sliders, w.status, w.go]

    @safe(len(restore_outputs), len(restore_outputs) - 2, len(restore_outputs) - 1)
    def restore(path):
        if not path:
            return (*[gr.skip()] * (len(restore_outputs) - 1), False)
        settings, messages, _ = studio.read_settings(str(path))
        _warn_all(messages)
        return (settings.pitch, settings.seed, *[float(v) for v in settings.vector(studio.names)],
                _status(messages, f"✓ settings restored from {os.path.basename(str(path))}"), True)

    @safe(len(start_outputs), k, k + 1)
    def from_validation(p):
        vec, what = studio.from_random_validation(random.randint(0, 2**31 - 1), int(p))
        return (*[float(v) for v in vec], f"✓ attributes of a {what}", True)

    @safe(len(start_outputs) + 1, k, k + 1)
    def from_note(note):
        vec, p, what = studio.from_dataset_note(note)
        return (*[float(v) for v in vec], f"✓ attributes of {what}", True,
                p if p is not None and lo <= p <= hi else gr.skip())

    @safe(len(start_outputs), k, k + 1)
    def from_upload(path):
        if not path:
            return (*[gr.skip()] * (len(start_outputs) - 1), False)
        vec, messages = studio.from_wave_file(path)
        _warn_all(messages)
        return (*[float(v) for v in vec],
                _status(messages, f"✓ attributes of {os.path.basename(str(path))} (teacher)"), True)

    def then_generate_new_origin(ev):
        return w.then_generate(ev).then(lambda: None, None, w.pad_base)

    then_generate_new_origin(w.load_json.upload(restore, w.load_json, restore_outputs))
    then_generate_new_origin(w.valid_btn.click(from_validation, w.pitch, start_outputs))
    then_generate_new_origin(w.note_btn.click(from_note, w.note_box, [*start_outputs, w.pitch]))
    then_generate_new_origin(w.note_box.submit(from_note, w.note_box, [*start_outputs, w.pitch]))
    then_generate_new_origin(w.upload.upload(from_upload, w.upload, start_outputs))


def _wire_pad(w: SimpleNamespace, studio: Studio) -> None:
    """The 2-D pad: a click or the x / y sliders set two attributes (or two random directions)."""
    import gradio as gr

    names, k = studio.names, studio.k

    def _axis(choice):
        return None if choice == st.RANDOM_DIRECTION or choice not in names else names.index(choice)

    pad_outputs = [w.pad, w.pad_x, w.pad_y, w.pad_base, *w.sliders, w.status, w.go]

    @safe(len(pad_outputs), len(pad_outputs) - 2, len(pad_outputs) - 1)
    def pad_move(x, y, xa, ya, dseed, base, *values):
        x = float(np.clip(x, 0, 1))
        y = float(np.clip(y, 0, 1))
        current, messages = st.validate_attributes(list(values), names)
        if base is None:
            base = current.tolist()
        dirs = st.random_directions(k, int(dseed or 0)) if st.RANDOM_DIRECTION in (xa, ya) else None
        # a random direction moves every attribute by up to +-0.5 on the user scale at the pad's edges
        vec = st.pad_vector(np.asarray(base), x, y, _axis(xa), _axis(ya), dirs, gain=float(np.sqrt(k)))
        img = st.pad_image(x, y, xa, ya)
        return (img, x, y, base, *[float(v) for v in vec], _status(messages, f"pad at ({x:.2f}, {y:.2f})"), True)

    def pad_click(evt: gr.SelectData, xa, ya, dseed, base, *values):
        x, y = st.pad_click_to_xy(*evt.index)
        return pad_move(x, y, xa, ya, dseed, base, *values)

    pad_inputs = [w.x_axis, w.y_axis, w.dir_seed, w.pad_base, *w.sliders]
    w.then_generate(w.pad.select(pad_click, pad_inputs, pad_outputs))
    w.then_generate(gr.on([w.pad_x.release, w.pad_y.release], pad_move, [w.pad_x, w.pad_y, *pad_inputs],
                          pad_outputs))
    gr.on([w.x_axis.change, w.y_axis.change], lambda xa, ya, x, y: (st.pad_image(x, y, xa, ya), None),
          [w.x_axis, w.y_axis, w.pad_x, w.pad_y], [w.pad, w.pad_base])
    w.new_dirs.click(lambda d: int(d or 0) + 1, w.dir_seed, w.dir_seed)


def serve(
    checkpoint: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    data: str | None = None,
    rank_notes: int = 64,
    block: bool = True,
    studio: Studio | None = None,
    quiet: bool = False,
    allow_remote: bool = False,
):
    """Load the checkpoint once, rank the attributes, build the page and start the server.

    Args:
        checkpoint: checkpoint or run folder (``None``: the shipped checkpoint).
        host: interface to bind; loopback by default. Anything else needs ``allow_remote``
            (:func:`darkgan.app.guard.check_host`): a loud warning is printed and a login
            (user ``darkgan``, a random token printed once) is required.
        port: TCP port (0: any free port).
        data: labelled dataset folder for "start from a dataset note" (optional).
        rank_notes: notes generated to measure responsiveness when no ranking is stored
            (0: vocabulary order).
        block: wait until the server stops (Ctrl-C); ``False`` returns at once.
        studio: an already loaded :class:`Studio` (tests, benchmarks).

    Returns:
        ``(demo, url)``: the running ``gr.Blocks`` and its local URL.

    Every request body is capped (:class:`darkgan.app.guard.BodyLimit`: JSON 1 MB, uploads 21 MB).

    Raises:
        CheckpointError: missing/corrupt checkpoint (before anything is served).
        DarkGANError: the port is taken; a non-loopback host without ``allow_remote``.
    """
    import secrets
    import sys

    from starlette.middleware import Middleware

    from darkgan.app.guard import REMOTE_USER, BodyLimit, check_host

    warning = check_host(host, allow_remote)  # before anything is loaded
    auth = None
    if warning:
        token = secrets.token_urlsafe(16)
        auth = [(REMOTE_USER, token)]
        print(f"\n{'!' * 78}\n{warning}\nToken (password): {token}\n{'!' * 78}\n", file=sys.stderr, flush=True)
    if studio is None:
        studio = Studio.load(checkpoint, device=device, data=data)
        studio.rank(n=rank_notes, measure=rank_notes > 0)
    studio.warm_up()
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=1)

    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=int(port) if port else None, share=False, inbrowser=False,
            prevent_thread_lock=True, quiet=quiet, show_error=True, ssr_mode=False, mcp_server=False,
            pwa=False, enable_monitoring=False, allowed_paths=[str(studio.out_dir)], css=CSS,
            footer_links=[], max_file_size=st.MAX_UPLOAD_BYTES, auth=auth,
            app_kwargs={"middleware": [Middleware(BodyLimit)]},
        )
    except OSError as e:
        raise DarkGANError(f"cannot start the server on {host}:{port} ({e})") from None
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo, url
