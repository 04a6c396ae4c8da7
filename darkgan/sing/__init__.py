"""SING: the symbol-to-instrument neural generator (Défossez et al., NeurIPS 2018).

An LSTM turns (velocity, instrument, pitch, time) embeddings into a sequence of D-dimensional
frames; a convolutional decoder whose last layer is an overlap-add transposed convolution turns
them into a 4 s, 16 kHz waveform. Trained in three stages (autoencoder, LSTM on the encoder's
embeddings, end to end) on the spectral loss. Modules: ``config`` (presets), ``model``,
``losses``, ``data`` (notes in memory, the pitch-completion split), ``checkpoint``, ``train``,
``api`` (:class:`Sing`), ``evaluate`` (Table 1), ``cli`` (``darkgan sing ...``).
"""
