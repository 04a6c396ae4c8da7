"""darkgan.models: the DarkGAN generator and critic, configuration presets, checkpoint I/O.

- :mod:`darkgan.models.config`: ``ModelConfig``, ``TrainConfig``, ``Config``, ``PRESETS``
  (``paper``, ``small``, ``tiny``), ``get_preset(name)``, ``apply_overrides(cfg, ["k=v", ...])``.
- :mod:`darkgan.models.generator`: ``Generator(cfg, n_pitches, n_attributes)(z, pitch_index,
  attributes, scale=None, alpha=1.0) -> [B, 2, H_s, W_s]`` (normalised MAG-IF).
- :mod:`darkgan.models.critic`: ``Critic(cfg, n_pitches, n_attributes)(x, scale=None, alpha=1.0)
  -> (score [B], attribute_logits [B, K], pitch_logits [B, P])``.
- :mod:`darkgan.models.layers`: equalized-LR layers, pixel norm, mini-batch std-dev,
  ``fold_equalized_lr``, ``assert_shape``.
- :mod:`darkgan.models.checkpoint`: ``save_checkpoint``, ``load_generator(path=None,
  device="cpu", weights="default") -> (Generator, CheckpointConfig)``, ``export_generator``.

Submodules import torch; import them directly (this package file does not).
"""
