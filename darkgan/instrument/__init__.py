"""From notes to music: sample instruments (SFZ, SoundFont 2) and MIDI rendering (issue 21).

``export.build_instrument`` turns a checkpoint + a description (attributes, ``like=``) into one
consistent sampled instrument over the checkpoint's pitch range (loops, velocity layers);
``sfz.write_sfz`` / ``sf2.write_sf2`` write it for any sampler; ``midi.render_midi`` plays a MIDI
file with it. Method and measured numbers: docs/instrument.md.
"""
