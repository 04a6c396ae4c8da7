"""The audio constants every stage shares (one home; importing this module imports no torch).

``SAMPLE_RATE``: 16 kHz mono, the rendered notes' and the model's rate (DarkGAN Sec. 4.1;
NSynth). ``N_SAMPLES``: one note crop of the model, 1 s. ``FADE_OUT_SAMPLES``: the raised-cosine
fade at the end of every training crop (64 ms, as the reference configuration), and the fade
synthesis applies unless a checkpoint says otherwise (``model.synthesis_fade``).
"""
SAMPLE_RATE = 16000  #: Hz
N_SAMPLES = 16000  #: samples in one note crop of the model (1 s)
FADE_OUT_SAMPLES = 1024  #: samples (64 ms) of the data's fade-out at the end of each crop
