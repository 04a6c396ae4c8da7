"""The audio constants every stage shares (one home; importing this module imports no torch).

``SAMPLE_RATE``: 16 kHz mono, the rendered notes' and the model's rate (DarkGAN Sec. 4.1;
NSynth). ``N_SAMPLES``: one note crop of the model, 1 s.
"""
SAMPLE_RATE = 16000  #: Hz
N_SAMPLES = 16000  #: samples in one note crop of the model (1 s)
