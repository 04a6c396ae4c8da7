"""SING's evaluations: the paper's Table 1 (Sec. 5.2) on our pitch-completion split, and the
generalisation report of issue 18 (pitch accuracy, FAD beside DarkGAN, the embedding ABX).

Table 1: for each run, the autoencoder (decoder(encoder(x))) and SING (decoder(LSTM(V, I, P)))
are scored on ``n`` train and ``n`` test notes of the run's split by the spectral loss (Eq. 3.3,
mean over spectrogram entries) and the waveform MSE (Eq. 3.1, mean over samples).
"""
from __future__ import annotations

import numpy as np
import torch

from darkgan.sing import checkpoint as ckpt
from darkgan.sing.data import SingNotes, load_notes
from darkgan.sing.losses import spectral_loss, wav_mse


def spread(idx: np.ndarray, n: int) -> np.ndarray:
    """``n`` positions evenly spread over ``idx`` (all of them when ``n`` <= 0 or >= len)."""
    if n <= 0 or n >= len(idx):
        return idx
    return idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def run_notes(meta: dict, cfg, progress: bool = False) -> SingNotes:
    """The notes (and pitch-completion split) a run trained on, from its checkpoint's record."""
    extra = meta["extra"]
    return load_notes(extra["data"], cfg.model.n_samples, instruments=extra["instruments"],
                      fraction=extra["test_fraction"], seed=cfg.train.seed, progress=progress)


@torch.no_grad()
def score(model, notes: SingNotes, idx: np.ndarray, cfg, batch: int = 16,
          kinds: tuple[str, ...] = ("ae", "sing", "silence")) -> dict:
    """Mean spectral loss and waveform MSE of the autoencoder and of SING on the notes ``idx``:
    ``{"ae" | "sing" | "silence": {"spectral", "wav"}}`` ("silence": an all-zero output, the
    score of a model that learnt nothing). The spectral loss is taken at
    the model's level (notes x ``model.gain``: the level its epsilon = 1 was trained at), the
    MSE at the data's level. ``kinds``: which of the three to compute (the others are not run)."""
    t, g = cfg.train, cfg.model.gain
    make = {"ae": lambda w, v, i, p: model.autoencode(w), "sing": lambda w, v, i, p: model(v, i, p),
            "silence": lambda w, v, i, p: torch.zeros_like(w)}
    acc = {k: {"spectral": [], "wav": []} for k in kinds}
    for k in range(0, len(idx), batch):
        wave, v, i, p = notes.batch(idx[k:k + batch])
        for name in kinds:
            y = make[name](wave, v, i, p)
            acc[name]["spectral"].append(spectral_loss(g * y, g * wave, t.stft_n_fft, t.stft_hop, t.stft_eps,
                                                       reduce=False))
            acc[name]["wav"].append(wav_mse(y, wave, reduce=False))
    return {m: {k: float(torch.cat(v).mean()) for k, v in d.items()} for m, d in acc.items()}


def table1(runs: dict[str, str], n: int = 200, sing_only: tuple[str, ...] = (), ae_only: tuple[str, ...] = ()) -> list[dict]:
    """Rows of Table 1 for trained runs ``{row name: run folder}``.

    Each run contributes its SING row, unless its autoencoder came from another run
    (``--init-ae``) its autoencoder row, and a "silence" reference row (all-zero output on the
    same notes, at the run's level). Rows named in ``sing_only`` (runs branched from another run
    after stage 2, e.g. an end-to-end stage on the waveform MSE from the spectral autoencoder and
    LSTM) give only their SING row, its loss marked ``"(stage 3 only)"``. Rows named in ``ae_only``
    (a run's checkpoint at the end of stage 1, e.g. ``RUN/checkpoint-00004000``: the paper's
    autoencoder row, before the end-to-end stage retrains the decoder) give only their
    autoencoder row.

    Returns:
        ``[{"model", "training_loss", "row", "run", "step", "stage", "spectral": {"train",
        "test"}, "wav": {"train", "test"}}]``.

    Raises:
        CheckpointError: a run without a readable checkpoint.
    """
    rows = []
    for name, path in runs.items():
        model, cfg, _, meta = ckpt.load(path)
        notes = run_notes(meta, cfg)
        branch = name in sing_only
        kinds = (["sing"] if meta["extra"].get("init_ae") or branch else ["ae", "sing"]) + ["silence"]
        if name in ae_only:
            kinds = ["ae"]
        res = {s: score(model, notes, spread(notes.indices(s), n), cfg, kinds=tuple(kinds)) for s in ("train", "test")}
        for kind in kinds:
            label = {"ae": "Autoencoder", "silence": "(silence)"}.get(
                kind, "SING" if cfg.model.time_embedding else "SING no time embedding")
            loss = f"{cfg.train.loss} (stage 3 only)" if branch and kind == "sing" else cfg.train.loss
            rows.append({"model": label, "training_loss": loss, "row": name, "run": meta["path"],
                         "step": meta["step"], "stage": meta["stage"],
                         "spectral": {s: res[s][kind]["spectral"] for s in res},
                         "wav": {s: res[s][kind]["wav"] for s in res}})
    return rows


def format_table1(rows: list[dict]) -> str:
    """Table 1 as fixed-width text (the paper's columns)."""
    lines = [f"{'model':<24} {'training loss':<24} {'spec train':>10} {'spec test':>10} {'wav train':>10} {'wav test':>10}"]
    for r in rows:
        lines.append(f"{r['model']:<24} {r['training_loss']:<24} {r['spectral']['train']:>10.4f} "
                     f"{r['spectral']['test']:>10.4f} {r['wav']['train']:>10.5f} {r['wav']['test']:>10.5f}")
    return "\n".join(lines)


def _darkgan_notes(checkpoint, data_dir, note_strs, pitches, seed: int = 0) -> np.ndarray:
    """DarkGAN's note for each test note: same pitch, the test note's teacher attributes
    (``like=note_str``): ``[n, 16000]``."""
    from darkgan.generation.api import DarkGAN

    g = DarkGAN.load(checkpoint)
    return np.concatenate([g.generate(int(p), like=str(s), like_data=data_dir, n=1, seed=seed + k)
                           for k, (s, p) in enumerate(zip(note_strs, pitches))])


def generalization(path, n: int = 96, darkgan_checkpoint: str | None = "default", teacher: str = "efficientat-mn04",
                   seed: int = 0, split: str = "test") -> dict:
    """On ``n`` test notes of a run's pitch-completion split (unseen (instrument, pitch) pairs):
    pitch accuracy (pYIN, 50 cents) of SING, the real notes and DarkGAN; FAD and KID of the
    first second (DarkGAN's note length) in the teacher's embedding, real test notes as reference;
    and the embedding ABX: the share of test notes whose SING note is closer (Euclidean, teacher
    embedding) to the real note than DarkGAN's note of the same pitch and the note's attributes
    (issue 18's stand-in for the paper's human ABX, Sec. 5.3.2). ``split="train"`` scores
    trained pairs instead (to tell generalisation from under-training).

    Returns:
        ``{"n", "pitch_accuracy": {system: metric dict}, "fad": {...}, "kid": {...}, "abx_sing_share"}``.
    """
    from darkgan.evaluation.metrics import compute
    from darkgan.evaluation.metrics.pitch_accuracy import estimate_f0
    from darkgan.sing.api import SingSynth
    from darkgan.teacher import load_teacher

    synth = SingSynth.load(path)
    notes = run_notes(synth.meta, synth.config)
    idx = spread(notes.indices(split), n)
    real, v, i, p = notes.batch(idx)
    midi = p.numpy() + synth.pitch_range[0]
    with torch.no_grad():
        sing = synth.model(v, i, p).clamp(-1, 1)
    systems = {"real": real[:, :16000].numpy(), "sing": sing[:, :16000].numpy()}
    if darkgan_checkpoint:
        systems["darkgan"] = _darkgan_notes(darkgan_checkpoint, synth.meta["extra"]["data"], notes.note_str[idx], midi, seed)
    out: dict = {"n": len(idx), "pitch_accuracy": {}, "fad": {}, "kid": {}}
    for name, w in systems.items():
        out["pitch_accuracy"][name] = compute("pitch_accuracy", f0_hz=estimate_f0(w), pitch=midi)
    t = load_teacher(teacher)
    emb = {k: np.asarray(t.embedding(torch.as_tensor(w)), dtype=np.float64) for k, w in systems.items()}
    for name in systems:
        if name != "real":
            out["fad"][name] = compute("fad", real=emb["real"], fake=emb[name], allow_singular=True)["fad"]
            out["kid"][name] = compute("kid", real=emb["real"], fake=emb[name])["kid_x1e4"]
    if "darkgan" in emb:
        d_s = np.linalg.norm(emb["sing"] - emb["real"], axis=1)
        d_d = np.linalg.norm(emb["darkgan"] - emb["real"], axis=1)
        out["abx_sing_share"] = float(np.mean(d_s < d_d))
    return out


def plot_examples(path, run, n: int = 3) -> None:
    """A PNG of ``n`` test notes (unseen instrument-pitch pairs): real (top row) and SING
    (one row per run) log power spectrograms (the spectral loss's l(x) at the model's level).

    ``run``: a run folder, or ``{row label: run folder}`` for several runs trained on the same
    split (Table 1's variants side by side; the notes are the first run's).
    """
    from matplotlib.figure import Figure

    from darkgan.sing.api import SingSynth
    from darkgan.sing.losses import log_power_spectrogram
    from darkgan.utils.io import atomic_write

    runs = run if isinstance(run, dict) else {"SING": run}
    synths = {label: SingSynth.load(r) for label, r in runs.items()}
    first = next(iter(synths.values()))
    notes = run_notes(first.meta, first.config)
    idx = spread(notes.indices("test"), n)
    real, v, i, p = notes.batch(idx)
    rows = [("real", real)]
    with torch.no_grad():
        rows += [(label, s.model(v, i, p)) for label, s in synths.items()]
    g = first.config.model.gain
    fig = Figure(figsize=(3.2 * n, 2.6 * len(rows)), dpi=90)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for col in range(n):
        for row, (name, w) in enumerate(rows):
            spec = log_power_spectrogram(g * w[col:col + 1])[0].numpy()
            ax = axes[row][col]
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=max(1.0, spec.max()),
                      extent=(0, first.n_samples / first.sample_rate, 0, 8))
            ax.set_title(f"{name}: {notes.note_str[idx[col]]}", fontsize=7)
            ax.set_xlabel("time (s)", fontsize=7)
            ax.set_ylabel("kHz", fontsize=7)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
