"""Training of a timbre space: configs, presets, the loop, checkpoint I/O and the perceptual fit.

Loss per batch (Esling et al. 2018, Eq. 1 plus the regulariser of Sec. 3.3; see
:mod:`darkgan.timbre.model`):

    L = sum_f (x_f - x^_f)^2 / 2 + beta_t * KL(q(z|x) || N(0, I)) + alpha * R(centroids, D)

on normalised log-magnitude frames, with ``beta_t`` warmed up linearly from 0 to ``beta`` over
``beta_warmup`` steps. Each batch holds ``batch_per_instrument`` random training frames of every
rated instrument, so every batch has all K centroids. ``alpha = 0`` is the unregularised baseline.

Checkpoint folder: ``config.json`` (the :class:`TimbreConfig`, the ratings, the instruments'
centroids as a list, the metrics) + ``model.safetensors`` (weights and normaliser buffers).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.timbre.data import DataConfig
from darkgan.timbre.model import REG_LOSSES, ModelConfig
from darkgan.utils.config import config_from_dict, config_to_dict
from darkgan.utils.io import atomic_write, folder_lock, read_json, write_json

FORMAT = "darkgan-timbre-space/1"


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        steps: optimiser steps.
        batch_per_instrument: frames of each rated instrument per batch.
        lr: Adam learning rate.
        beta: KL weight after warm-up; beta_warmup: steps of its linear warm-up.
        reg_weight: alpha, the weight of the perceptual regulariser (0: unregularised baseline).
        reg_loss: ``stress`` (ours, the best fit) or ``tsne`` (the paper's form, best at
            ``reg_weight`` 10-100); reg_sigma: Gaussian width (``tsne``). Defaults = the shipped space.
        exclude: an instrument left out of the regulariser (leave-one-out study); "" for none.
        seed: torch/numpy seed.
        max_minutes: stop early (and say so in the metrics) after this wall time.
    """

    steps: int = 3000
    batch_per_instrument: int = 16
    lr: float = 1e-3
    beta: float = 1.0
    beta_warmup: int = 1000
    reg_weight: float = 100.0
    reg_loss: str = "stress"
    reg_sigma: float = 0.3
    exclude: str = ""
    seed: int = 0
    max_minutes: float = 10.0

    def validate(self) -> None:
        if self.steps < 1 or self.batch_per_instrument < 2 or self.lr <= 0 or self.beta < 0:
            raise DarkGANError("train: steps >= 1, batch_per_instrument >= 2, lr > 0, beta >= 0 required")
        if self.reg_weight < 0 or self.reg_loss not in REG_LOSSES or self.reg_sigma <= 0:
            raise DarkGANError(f"train: reg_weight >= 0, reg_loss in {REG_LOSSES}, reg_sigma > 0 required")


@dataclass
class TimbreConfig:
    """Everything that defines a timbre space (saved as ``config.json``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()
        if min(self.data.pitches) < self.model.pitch_lo or max(self.data.pitches) > self.model.pitch_hi:
            raise DarkGANError("data.pitches must lie inside model.pitch_lo..pitch_hi")


def _tiny() -> TimbreConfig:
    """600 steps on 2 fonts, 4 pitches, 1 velocity (tests; ~10 s of training)."""
    return TimbreConfig(model=ModelConfig(hidden=(128,), latent_dim=4),
                        train=TrainConfig(steps=600, beta_warmup=100, batch_per_instrument=8, reg_weight=30.0,
                                          reg_loss="tsne"),
                        data=DataConfig(pitches=(60, 64, 67, 71), velocities=(100,),
                                        soundfonts=("FluidR3_GM.sf2", "TimGM6mb.sf2"), frames_per_note=4))


#: Named presets: ``default`` (the shipped space: NSGT, stress x100), ``tiny`` (tests).
PRESETS = {"default": TimbreConfig, "tiny": _tiny}


def get_preset(name: str) -> TimbreConfig:
    """A fresh config of preset ``name``.

    Raises:
        DarkGANError: unknown preset.
    """
    from darkgan.timbre import pick

    return pick(PRESETS, name, "preset")


def _batches(frames: np.ndarray, pitch: np.ndarray, inst: np.ndarray, train_mask: np.ndarray,
             n_inst: int, b: int, rng: np.random.Generator):
    """Yield ``(x [n_inst * b, F], pitch [n_inst * b])`` balanced batches, instrument-major."""
    pools = [np.flatnonzero(train_mask & (inst == k)) for k in range(n_inst)]
    if any(len(p) == 0 for p in pools):
        raise DarkGANError("every rated instrument needs training notes")
    n_frames = frames.shape[1]
    while True:
        notes = np.concatenate([rng.choice(p, b) for p in pools])
        fr = rng.integers(0, n_frames, len(notes))
        yield frames[notes, fr], pitch[notes]


def batch_loss(model, xb, pb, step: int, t: TrainConfig, keep: list[int], target):
    """The loss of one balanced batch (module docstring): ``x [K * b, F]`` instrument-major,
    ``pitch [K * b]``; ``keep``: the instruments in the regulariser, ``target`` their ratings.

    Returns:
        ``(loss scalar tensor, {"rec", "kl", "reg"} floats)``.
    """
    import torch

    from darkgan.timbre.model import kl_divergence, perceptual_regularizer

    recon, mu, logvar = model(xb, pb)
    rec = 0.5 * (recon - model.normalize(xb)).pow(2).sum(-1).mean()
    kl = kl_divergence(mu, logvar)
    beta = t.beta * min(1.0, (step + 1) / max(1, t.beta_warmup))
    loss = rec + beta * kl
    reg = torch.zeros(())
    if t.reg_weight > 0:
        cent = mu.view(-1, t.batch_per_instrument, mu.shape[-1]).mean(1)[keep]
        reg = perceptual_regularizer(cent, target, t.reg_loss, t.reg_sigma)
        loss = loss + t.reg_weight * reg
    return loss, {"rec": rec.item(), "kl": kl.item(), "reg": reg.item()}


def train_space(data_dir: str | os.PathLike, out: str | os.PathLike, cfg: TimbreConfig,
                ratings, progress: bool = True) -> dict:
    """Render (if needed), analyse and train one timbre space into ``out``; returns its metrics.

    Args:
        data_dir: the data folder (:mod:`darkgan.timbre.data`), rendered on first use.
        out: checkpoint folder (``config.json`` + ``model.safetensors``), written atomically.
        cfg: the configuration (validated here). ratings: :class:`~darkgan.timbre.ratings.Ratings`.

    Raises:
        DarkGANError: a bad config, an ``exclude`` name not rated, another job writing ``out``.
    """
    import torch
    from tqdm import tqdm

    from darkgan.timbre import data as tdata
    from darkgan.timbre.model import TimbreVAE

    cfg.validate()
    excluded = ratings.index(cfg.train.exclude) if cfg.train.exclude else None
    tdata.render_notes(data_dir, cfg.data, ratings, progress)
    notes = tdata.load_notes(data_dir)
    x = tdata.frames(data_dir, cfg.model.front_end, cfg.data.frames_per_note, progress)
    cfg.model.n_bins = x.shape[2]
    inst = np.array([ratings.instruments.index(n) if r else -1 for n, r in zip(notes["instrument"], notes["rated"])])
    train_mask = notes["rated"] & ~notes["test"]
    torch.manual_seed(cfg.train.seed)
    model = TimbreVAE(cfg.model)
    flat = torch.from_numpy(x[train_mask].reshape(-1, x.shape[2]))
    model.mean.copy_(flat.mean(0))
    model.std.copy_(flat.std(0).clamp_min(1e-2))
    keep = [k for k in range(len(ratings.instruments)) if k != excluded]
    target = torch.tensor(ratings.dissimilarity[np.ix_(keep, keep)], dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    t = cfg.train
    batches = _batches(x, notes["pitch"].astype(np.float32), inst, train_mask, len(ratings.instruments),
                       t.batch_per_instrument, np.random.default_rng(t.seed))
    start, stopped_early, log = time.monotonic(), False, []
    with folder_lock(out):
        model.train()
        for step in tqdm(range(t.steps), desc=f"train {cfg.model.front_end}", disable=not progress):
            xb, pb = (torch.from_numpy(a) for a in next(batches))
            loss, parts = batch_loss(model, xb, pb, step, t, keep, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == t.steps - 1:
                log.append({"step": step, **parts})
            if time.monotonic() - start > 60 * t.max_minutes:
                stopped_early = True
                break
        model.eval()
        metrics = {"steps_done": step + 1, "stopped_early": stopped_early,
                   "train_seconds": round(time.monotonic() - start, 1), "log": log}
        metrics.update(_fit_metrics(model, x, notes, inst, ratings))
        centroids = _centroids(model, x, notes, np.ones(len(x), dtype=bool))
        if cfg.train.exclude:
            metrics["left_out"] = {"instrument": cfg.train.exclude,
                                   **loo_correlation(centroids, ratings, cfg.train.exclude)}
        save_space(out, model, cfg, ratings, metrics, centroids)
    return metrics


def note_latents(model, x: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``[N, K, F]`` frames, ``[N]`` pitches -> ``[N, Z]``: the mean encoder mean of each note."""
    import torch

    with torch.no_grad():
        n, k, f = x.shape
        mu, _ = model.encode(torch.from_numpy(x.reshape(-1, f)),
                             torch.from_numpy(np.repeat(pitch.astype(np.float32), k)))
    return mu.view(n, k, -1).mean(1).numpy()


def _centroids(model, x, notes, mask) -> dict[str, list[float]]:
    z = note_latents(model, x[mask], notes["pitch"][mask])
    names = notes["instrument"][mask]
    return {str(n): z[names == n].mean(0).tolist() for n in dict.fromkeys(names.tolist())}


def correlations(dist: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation between two ``[K, K]`` distance matrices (upper triangle)."""
    from scipy.stats import pearsonr, spearmanr

    iu = np.triu_indices(len(dist), 1)
    return {"pearson": float(pearsonr(dist[iu], target[iu])[0]),
            "spearman": float(spearmanr(dist[iu], target[iu])[0])}


def _fit_metrics(model, x, notes, inst, ratings) -> dict:
    """Perceptual fit of the centroids (all rated notes), the left-out instrument's row when one
    was excluded, and the held-out frame reconstruction error (normalised MSE)."""
    import torch

    rated = notes["rated"]
    cent = _centroids(model, x, notes, rated)
    c = np.array([cent[n] for n in ratings.instruments])
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1)
    out = {"fit": correlations(dist, ratings.dissimilarity)}
    test = rated & notes["test"]
    xt = torch.from_numpy(x[test].reshape(-1, x.shape[2]))
    pt = torch.from_numpy(np.repeat(notes["pitch"][test].astype(np.float32), x.shape[1]))
    with torch.no_grad():
        recon, _, _ = model(xt, pt)
        out["test_frame_mse"] = float((recon - model.normalize(xt)).pow(2).mean())
    return out


def loo_correlation(centroids: dict, ratings, name: str) -> dict[str, float]:
    """Correlation of one instrument's latent distances to the other rated ones with its ratings row."""
    from scipy.stats import pearsonr, spearmanr

    k = ratings.index(name)
    c = np.array([centroids[n] for n in ratings.instruments])
    others = [j for j in range(len(c)) if j != k]
    d = np.linalg.norm(c[others] - c[k], axis=-1)
    r = ratings.dissimilarity[k, others]
    return {"pearson": float(pearsonr(d, r)[0]), "spearman": float(spearmanr(d, r)[0])}


def save_space(out: str | os.PathLike, model, cfg: TimbreConfig, ratings, metrics: dict,
               centroids: dict) -> None:
    """Write ``out/model.safetensors`` then ``out/config.json`` (both atomically)."""
    from safetensors.torch import save

    out = Path(out)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out / "model.safetensors") as f:
        f.write(save(state))
    write_json(out / "config.json", {"format": FORMAT, "config": config_to_dict(cfg),
                                     "ratings": ratings.to_dict(), "centroids": centroids,
                                     "metrics": metrics})


def load_space_files(path: str | os.PathLike):
    """``(TimbreVAE in eval mode, TimbreConfig, Ratings, centroids {name: [Z]}, metrics)``.

    Raises:
        CheckpointError: a missing or foreign ``config.json``, missing or mismatched weights.
    """
    import torch
    from safetensors.torch import load_file

    from darkgan.timbre.model import TimbreVAE
    from darkgan.timbre.ratings import ratings_from_dict

    path = Path(path)
    meta = read_json(path / "config.json") if (path / "config.json").exists() else None
    if not meta or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a timbre space (no config.json with format {FORMAT})")
    cfg = config_from_dict(TimbreConfig, meta["config"])
    model = TimbreVAE(cfg.model)
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")))
    except (OSError, RuntimeError, FileNotFoundError) as e:
        raise CheckpointError(f"{path}/model.safetensors: cannot load ({str(e).splitlines()[0]})") from None
    model.eval()
    torch.set_grad_enabled(True)
    return model, cfg, ratings_from_dict(meta["ratings"], str(path)), meta["centroids"], meta.get("metrics", {})
