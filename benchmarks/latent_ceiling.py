"""How close can a generator's notes get to asked attributes? Optimise each note's latent.

    python benchmarks/latent_ceiling.py --data DIR [--checkpoint default] [--notes 32] [--steps 100]
                                        [--lr 0.05] [--seed 0] [--threads 2]

For ``--notes`` validation notes of ``DIR``, the generator (frozen) is asked for each note's pitch
and attributes alpha = sigmoid(z_teacher / T); the latent z of every note is then optimised with
Adam to minimise the teacher-in-the-loop loss (:func:`darkgan.training.losses.teacher_attribute_loss`,
``std_mse``, after :func:`~darkgan.training.losses.augment_for_teacher`), exactly the loss of
``train.loss_weights.g_teacher``. The loss it reaches is a lower bound for any attribute mapping
or conditioning of this generator. Printed every 20 steps, with the same loss on the untransformed
notes, and the references: real notes against their own labels and against another note's labels.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled dataset (cache, labels, vocabulary)")
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--notes", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from darkgan.data.magif import magif_to_note, magif_to_wave
    from darkgan.models.checkpoint import load_generator
    from darkgan.teacher import load_teacher
    from darkgan.training.data import load_training_data
    from darkgan.training.losses import augment_for_teacher, teacher_attribute_loss
    from darkgan.training.terms import attribute_stats

    g, cfg = load_generator(args.checkpoint)
    g = g.float().eval().requires_grad_(False)
    data, T = load_training_data(args.data), cfg.temperature
    std = attribute_stats(data.logits, data.train_rows, T)[1]
    rows = np.random.default_rng(args.seed).choice(data.cache.rows("valid"), args.notes, replace=False)
    alpha = torch.sigmoid(torch.from_numpy(data.logits[rows]) / T)
    pitch_index = torch.from_numpy(data.pitch_index(rows)).long()
    teacher, cls = load_teacher(cfg.teacher["id"]), torch.tensor(cfg.class_indices)
    norm, tf = cfg.get_normalizer(), ("shift", "noise", "tilt")
    gen = torch.Generator().manual_seed(args.seed)

    def loss_of(wave: torch.Tensor, target: torch.Tensor, transforms, grad: bool = False) -> torch.Tensor:
        heard = augment_for_teacher(wave, transforms, gen) if transforms else wave
        return teacher_attribute_loss(teacher.logits(heard, grad=grad).index_select(1, cls), target, T, std)

    real = magif_to_wave(data.cache.load(np.sort(rows), normalize=False))
    order = np.argsort(rows)  # cache.load wants sorted rows; put the labels in that order
    own = alpha[order]
    print(f"references (real notes): own labels {float(loss_of(real, own, tf)):.3f} "
          f"(clean {float(loss_of(real, own, ())):.3f}), another note's labels "
          f"{float(loss_of(real, own.roll(1, 0), tf)):.3f}", flush=True)
    torch.manual_seed(args.seed)
    z = torch.randn(args.notes, g.cfg.latent_dim, requires_grad=True)
    opt, t0 = torch.optim.Adam([z], lr=args.lr), time.time()
    for i in range(args.steps + 1):
        wave = magif_to_note(norm.denormalize(g(z, pitch_index, alpha)))
        loss = loss_of(wave, alpha, tf, grad=True)
        if i % 20 == 0:
            clean = float(loss_of(wave.detach(), alpha, ()))
            print(f"step {i:4d}: loss {float(loss.detach()):.3f} (clean {clean:.3f}), {time.time() - t0:.0f} s",
                  flush=True)
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
