"""FRAMI: data-free distillation of sound classifiers (issue 19).

Source: "FRAMI: feature-rich audio model inversion for data-free knowledge distillation"
(``shared/reference/papers/frami-data-free-kd.txt``), with its baselines Hinton et al.'s KD and
DeepInversion (ADI, Yin et al., CVPR 2020).

Modules: :mod:`.config` (typed presets), :mod:`.features` (log-mel inputs from the training
cache), :mod:`.models` (ResNet-like classifiers with statistics pooling), :mod:`.inversion`
(ADI and feature-invariant contrastive inversion, Eq. 1-2), :mod:`.distill` (training, KD,
hidden-state reuse), :mod:`.run` (resumable runs behind ``darkgan distill-tagger``).
"""
