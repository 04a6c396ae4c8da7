"""darkgan.training: losses, data, the progressive training loop, distributed training, CLI.

- :mod:`darkgan.training.loop`: ``train(data_dir, out_dir, ...)``, ``Schedule``, ``State``,
  ``train_step_d``, ``train_step_g`` (``darkgan train``; see ``docs/training.md``).
- :mod:`darkgan.training.losses`: WGAN-GP, drift, distillation (paper Eq. 1-2), pitch, EMA.
- :mod:`darkgan.training.data`: cache + teacher labels + vocabulary, deterministic batches,
  background prefetching.
- :mod:`darkgan.training.distributed`: torchrun / DDP setup.
"""
