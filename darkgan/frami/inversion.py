"""Model inversion of a sound classifier into log-mel spectrograms: ADI and FRAMI.

- ADI baseline (DeepInversion, Yin et al., CVPR 2020, Eq. 3-4): optimise input pixels ``x`` so
  that the teacher's batch statistics at every BatchNorm layer match its running statistics
  (``||mu(x) - mu_bn||_2 + ||var(x) - var_bn||_2``), the teacher predicts the target classes
  (cross-entropy) and image priors hold (total variation, l2); with a student in the loop, the
  adaptive competition term ``1 - JS(p_teacher, p_student)`` (Yin et al. Eq. 8) pushes towards
  samples on which the student still disagrees with the teacher. DeepInversion's reference-code
  extras are settings, off by default (they did not help on our task, docs/frami.md): a
  multiplier on the first BatchNorm layer's term (``first_bn_mult``), random time jitter
  (``jitter``: the batch is rolled along time before each teacher pass) and a cosine decay of
  the learning rate (``cosine``).
- FRAMI (paper, "Feature invariance contrastive inversion", Eq. 1-2): each synthesized sample is
  cut into K chunks along time; T_finv (Eq. 1) is the mean pairwise cosine similarity of the
  chunks' teacher embeddings (utterance-level hidden states after statistics pooling); L_fic
  (Eq. 2) is a contrastive loss whose anchor is the whole sample's embedding, whose positive is a
  random chunk's embedding with T_finv added to its logit, and whose negatives are the other
  samples of the batch and samples drawn from a growing memory bank of everything synthesized so
  far. The denominator includes the positive (InfoNCE), which keeps the loss >= 0.

Two synthesizers (``inversion.synthesizer``): ``pixels`` optimises each batch's spectrograms
directly (DeepInversion), ``generator`` optimises the inputs ``z`` and the weights of a small
convolutional generator (:class:`SpectrogramGenerator`) as contrastive model inversion does
(Fang et al., IJCAI 2021, the method FRAMI extends), the generator kept from batch to batch with
its input layer re-initialised per batch (Fang et al., "Up to 100x faster data-free knowledge
distillation", AAAI 2022: ``reset_l0``). ``auto`` (the default) takes each method as published:
pixels for ADI, the generator for FRAMI.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from darkgan.frami.config import InversionConfig
from darkgan.frami.models import SoundClassifier, check_invertible


class BNStatsHook:
    """Forward hook on a BatchNorm2d: ``.loss`` = ``||mu_b - mu_run||_2 + ||var_b - var_run||_2``
    of the layer's input ``[B, C, H, W]`` (DeepInversion Eq. 4)."""

    def __init__(self, bn: torch.nn.BatchNorm2d):
        self.loss = torch.zeros(())
        self.handle = bn.register_forward_hook(self._hook)

    def _hook(self, bn, inputs, _out):
        x = inputs[0]
        mu = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        self.loss = torch.norm(mu - bn.running_mean, 2) + torch.norm(var - bn.running_var, 2)

    def remove(self) -> None:
        self.handle.remove()


class SpectrogramGenerator(nn.Module):
    """The generator of the ``generator`` synthesizer: ``z [B, z_dim] -> x [B, 1, M, T]`` (normalised log-mel).

    The DCGAN-like generator of contrastive model inversion (Fang et al., IJCAI 2021): a linear map
    to ``[B, 2C, ceil(M/4), ceil(T/4)]``, batch norm, two (nearest 2x upsampling, 3x3 conv, batch
    norm, LeakyReLU 0.2) blocks (2C then C channels), a 3x3 conv to one channel, cropped to
    ``(M, T)``. Unlike theirs the output is linear (no sigmoid): the teacher reads standardised
    log-mel, not pixels in [0, 1]. Weights are drawn by :meth:`init_weights` from a given RNG
    (N(0, 0.02); batch-norm scales N(1, 0.02)), so a run is reproducible from its seed.

    Args:
        shape: ``(M, T)`` mel bands and frames of the output.
        z_dim: size of the input code.
        channels: C.
    """

    def __init__(self, shape: tuple[int, int], z_dim: int = 256, channels: int = 32):
        super().__init__()
        self.shape, self.z_dim = tuple(shape), z_dim
        self.init_size = (-(-shape[0] // 4), -(-shape[1] // 4))
        c = channels
        self.project = nn.Linear(z_dim, 2 * c * self.init_size[0] * self.init_size[1])
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * c), nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(len(z), -1, *self.init_size)
        return self.body(h)[..., : self.shape[0], : self.shape[1]]

    @torch.no_grad()
    def init_weights(self, gen: torch.Generator, only_input: bool = False) -> "SpectrogramGenerator":
        """Draw the weights from ``gen``: linear and conv weights N(0, 0.02), biases 0, batch-norm
        scales N(1, 0.02) and shifts 0; ``only_input``: the input layer (``project``) alone."""
        for m in [self.project] if only_input else self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=gen) * 0.02)
                m.bias.zero_()
        return self


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbours along frequency and time of ``x [B, 1, M, T]`` (scalar)."""
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + ((x[..., 1:] - x[..., :-1]) ** 2).mean()


def chunk_embeddings(teacher: SoundClassifier, x: torch.Tensor, k: int) -> torch.Tensor:
    """Teacher utterance-level embeddings of K time chunks: ``x [B, 1, M, T] -> [B, K, E]``
    (``T`` cut into K near-equal parts, each pooled by the teacher's statistics pooling)."""
    chunks = torch.tensor_split(x, k, dim=-1)
    width = min(c.shape[-1] for c in chunks)
    stacked = torch.stack([c[..., :width] for c in chunks], 1)  # [B, K, 1, M, w]
    emb = teacher.hidden(stacked.flatten(0, 1))[2]
    return emb.view(x.shape[0], k, -1)


def t_finv(chunk_emb: torch.Tensor) -> torch.Tensor:
    """T_finv (FRAMI Eq. 1): mean cosine similarity over chunk pairs i < j, ``[B, K, E] -> [B]``.

    Cosines are of embeddings centred on the mean over all ``B * K`` chunks (detached): the raw
    embeddings share a large common component (cos 0.94-0.98 between any two random inputs of a
    trained teacher), which would leave the term nothing to do. Needs ``B >= 2``.
    """
    z = F.normalize(chunk_emb - chunk_emb.detach().flatten(0, 1).mean(0), dim=-1)
    sim = z @ z.transpose(1, 2)  # [B, K, K]
    k = z.shape[1]
    iu = torch.triu_indices(k, k, offset=1)
    return sim[:, iu[0], iu[1]].mean(1)


def fic_loss(anchor: torch.Tensor, chunk_emb: torch.Tensor, negatives: torch.Tensor, tau: float,
             use_finv: bool = True, gen: torch.Generator | None = None) -> torch.Tensor:
    """L_fic (FRAMI Eq. 2), scalar.

    Args:
        anchor: ``[B, E]`` whole-sample embeddings (all cosines are of embeddings centred on the
            anchors' batch mean, see :func:`t_finv`).
        chunk_emb: ``[B, K, E]`` chunk embeddings (a random chunk is the positive).
        negatives: ``[N, E]`` memory-bank embeddings (detached); the rest of the batch is added.
        tau: temperature.
        use_finv: add T_finv to the positive logit (off = Table 3's "w/o T_finv").
    """
    b, k, _ = chunk_emb.shape
    center = anchor.detach().mean(0)
    a = F.normalize(anchor - center, dim=-1)
    pick = torch.randint(k, (b,), generator=gen)
    pos = (a * F.normalize(chunk_emb[torch.arange(b), pick] - center, dim=-1)).sum(-1)
    if use_finv:
        pos = pos + t_finv(chunk_emb)
    in_batch = a @ a.t()
    in_batch = in_batch.masked_fill(torch.eye(b, dtype=torch.bool), float("-inf"))
    logits = [pos[:, None], in_batch]
    if negatives.numel():
        logits.append(a @ F.normalize(negatives - center, dim=-1).t())
    logits = torch.cat(logits, 1) / tau
    return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long))


@dataclass
class InversionBatch:
    """One optimised batch: ``x [B, 1, M, T]`` (standardised log-mel), ``y [B]`` target classes,
    ``losses`` the final value of each term."""

    x: torch.Tensor
    y: torch.Tensor
    losses: dict[str, float]


def _memory_negatives(teacher, memory: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random memory-bank negatives ``[n, E]``: rows of ``memory`` when it already holds the
    teacher's embeddings ``[N, E]``, else the teacher's embeddings of samples ``[N, 1, M, T]``."""
    if memory.numel() == 0 or n == 0:
        return torch.zeros(0)
    idx = torch.randperm(len(memory), generator=gen)[:n]
    if memory.dim() == 2:
        return memory[idx]
    with torch.no_grad():
        return teacher.hidden(memory[idx])[2]


def memory_embeddings(teacher, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The teacher's utterance-level embeddings of synthesized samples, ``x [N, 1, M, T] -> [N, E]``
    (eval mode, no gradient, in batches): FRAMI's memory-bank negatives, computed once per sample
    instead of at every step (the teacher is fixed, so they never change)."""
    teacher.eval()
    with torch.no_grad():
        return torch.cat([teacher.hidden(x[i:i + batch])[2] for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0)


def competition(t_logits: torch.Tensor, s_logits: torch.Tensor) -> torch.Tensor:
    """ADI's adaptive competition (Yin et al. 2020, Eq. 8): ``1 - JS(softmax(t), softmax(s))``
    averaged over the batch of logits ``[B, C]`` (scalar in [1 - ln 2, 1]; lower = more disagreement)."""
    p, q = F.softmax(t_logits, 1), F.softmax(s_logits, 1)
    m = ((p + q) / 2).clamp_min(1e-12).log()
    js = 0.5 * (F.kl_div(m, p, reduction="batchmean") + F.kl_div(m, q, reduction="batchmean"))
    return 1 - js


def initial_spectrograms(n: int, shape: tuple[int, int], envelope: float, gen: torch.Generator) -> torch.Tensor:
    """The starting point of an inversion: ``[n, 1, M, T]`` standard normal noise, plus with
    ``envelope > 0`` a random smooth spectral envelope per sample, constant over time: the first 8
    DCT-II basis vectors over the M mel bands with N(0, 1) weights, scaled so that its standard
    deviation over bands is ``envelope`` (a spectral-envelope prior; the noise is drawn first, so
    ``envelope = 0`` gives exactly ``torch.randn``). Ours: the diagnosis of docs/frami.md (inverted
    samples lack the rendered notes' spectral envelope); DeepInversion (Yin et al., CVPR 2020) starts
    from plain noise. Returns ``[n, 1, M, T]`` float32 in normalised log-mel units."""
    x = torch.randn((n, 1, *shape), generator=gen)
    if envelope <= 0:
        return x
    m = shape[0]
    k = torch.arange(1, min(8, m - 1) + 1, dtype=torch.float32)
    basis = torch.cos(torch.pi * (torch.arange(m, dtype=torch.float32)[:, None] + 0.5) * k / m)  # [M, K]
    env = torch.randn((n, len(k)), generator=gen) @ basis.T  # [n, M]
    env = env / env.std(dim=1, keepdim=True).clamp_min(1e-6) * envelope
    return x + env[:, None, :, None]


def invert_batch(teacher: SoundClassifier, y: torch.Tensor, shape: tuple[int, int], cfg: InversionConfig,
                 method: str, memory: torch.Tensor, gen: torch.Generator, bar: tqdm | None = None,
                 student: torch.nn.Module | None = None,
                 generator: SpectrogramGenerator | None = None) -> InversionBatch:
    """Synthesize ``len(y)`` log-mel spectrograms ``[B, 1, M, T]`` (``shape = (M, T)``) for target classes ``y``.

    ``method``: ``"adi"`` (BN statistics + CE + priors) or ``"frami"`` (+ ``cfg.w_fic * L_fic``,
    negatives from ``memory``: samples ``[N, 1, M, T]`` or their teacher embeddings ``[N, E]``
    (:func:`memory_embeddings`; the same negatives, without a teacher pass each step)). With ``student`` and ``cfg.w_adv > 0``, + ADI's
    :func:`competition` term. Teacher and student are in eval mode and are not changed.
    Without ``generator`` the spectrograms themselves are optimised (lr ``cfg.lr``); with one, its
    input layer is re-drawn from ``gen`` (``cfg.g_reset_input``), then its weights (lr
    ``cfg.g_lr``) and new codes ``z`` (lr ``cfg.z_lr``) are optimised, and it keeps what it learnt
    for the next batch (:func:`darkgan.frami.run.synthesize` makes it when
    :func:`synthesizer_for` says ``generator``).

    Raises:
        DarkGANError: the teacher has no BatchNorm layers, or (FRAMI) no statistics pooling.
    """
    bns = check_invertible(teacher, need_pooling=method == "frami")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    hooks = [BNStatsHook(bn) for bn in bns]
    make, opt = _synthesis_variables(len(y), shape, cfg, gen, generator)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps) if cfg.cosine else None
    rival = student.eval() if student is not None and cfg.w_adv > 0 else None
    flags = [(p, p.requires_grad) for p in rival.parameters()] if rival is not None else []
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        for _ in range(cfg.steps):
            losses = _inversion_losses(teacher, make(), y, hooks, cfg, method, memory, gen, rival)
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            if sched is not None:
                sched.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v.item():.3g}" for k, v in losses.items()}, refresh=False)
    finally:
        for h in hooks:
            h.remove()
        for p, flag in flags:
            p.requires_grad_(flag)
    with torch.no_grad():
        x = make()
    return InversionBatch(x=x.detach(), y=y, losses={k: v.item() for k, v in losses.items()})


def synthesizer_for(method: str, cfg: InversionConfig) -> str:
    """``pixels`` or ``generator``: ``cfg.synthesizer``, with ``auto`` resolved as each method was
    published (ADI: DeepInversion's pixels; FRAMI: contrastive model inversion's generator)."""
    if cfg.synthesizer != "auto":
        return cfg.synthesizer
    return "generator" if method == "frami" else "pixels"


def _synthesis_variables(n: int, shape, cfg: InversionConfig, gen: torch.Generator, generator):
    """``(make() -> x [n, 1, M, T], Adam over what is optimised)``: the pixels, or ``generator``'s weights and codes."""
    if generator is None:
        x = initial_spectrograms(n, shape, cfg.init_envelope, gen).requires_grad_(True)
        return (lambda: x), torch.optim.Adam([x], lr=cfg.lr, betas=(0.5, 0.9))
    if cfg.g_reset_input:
        generator.init_weights(gen, only_input=True)
    generator.train()
    z = torch.randn((n, generator.z_dim), generator=gen).requires_grad_(True)
    opt = torch.optim.Adam([{"params": list(generator.parameters()), "lr": cfg.g_lr},
                            {"params": [z], "lr": cfg.z_lr}], betas=(0.5, 0.999))
    return (lambda: generator(z)), opt


def _inversion_losses(teacher, x, y, hooks, cfg: InversionConfig, method: str, memory, gen,
                      rival=None) -> dict[str, torch.Tensor]:
    if cfg.jitter:
        shift = int(torch.randint(-cfg.jitter, cfg.jitter + 1, (1,), generator=gen))
        x = torch.roll(x, shift, dims=-1)
    logits, _, utt = teacher.hidden(x)
    bn = hooks[0].loss * cfg.first_bn_mult + sum(h.loss for h in hooks[1:])
    out = {"bn": cfg.w_bn * bn, "ce": cfg.w_ce * F.cross_entropy(logits, y),
           "tv": cfg.w_tv * total_variation(x), "l2": cfg.w_l2 * (x ** 2).mean()}
    if rival is not None:
        out["adv"] = cfg.w_adv * competition(logits, rival(x))
    if method == "frami" and cfg.w_fic > 0:
        neg = _memory_negatives(teacher, memory, cfg.n_negatives, gen)
        out["fic"] = cfg.w_fic * fic_loss(utt, chunk_embeddings(teacher, x, cfg.chunks), neg, cfg.tau,
                                          cfg.use_finv, gen)
    return out
