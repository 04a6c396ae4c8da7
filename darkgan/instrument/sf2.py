"""SoundFont 2.01 writer: an :class:`~darkgan.instrument.export.Instrument` as one ``.sf2`` file.

No well-kept PyPI library *writes* SoundFonts (``sf2utils`` and ``sf2-loader`` read or play
them), so the RIFF is written here, after the SoundFont 2.01 Technical Specification (E-mu /
Creative, 1998): ``RIFF sfbk`` = ``LIST INFO`` (``ifil`` 2.01, ``isng``, ``INAM``, ``ISFT``,
``ICMT``) + ``LIST sdta`` (``smpl``: 16-bit samples, each followed by 46 zero points, Sec. 6.1)
+ ``LIST pdta`` (the nine hydra sub-chunks ``phdr pbag pmod pgen inst ibag imod igen shdr``, each
closed by a terminal record, Sec. 7). One preset (bank 0, program ``program``) holds one
instrument with one zone per (velocity layer, key): generators ``keyRange`` first, ``velRange``
second, then ``overridingRootKey``, ``sampleModes`` (1 = loop continuously), ``releaseVolEnv``
(timecents), and ``sampleID`` last (Sec. 8.1.2). Loop points: ``dwStartloop`` is the first
sample of the loop and ``dwEndloop`` the first sample after it (Sec. 7.10), our half-open
``(start, end)``. Checked by loading it in FluidSynth and parsing it with sf2utils
(tests/test_instrument.py).
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from darkgan.instrument.export import Instrument

#: Generator operators (SF2.01 Sec. 8.1.2).
GEN = {"releaseVolEnv": 38, "instrument": 41, "keyRange": 43, "velRange": 44, "sampleID": 53,
       "sampleModes": 54, "overridingRootKey": 58}
#: Zero points after every sample (Sec. 6.1: at least 46).
PAD_POINTS = 46


def _chunk(ck_id: bytes, data: bytes) -> bytes:
    return ck_id + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, chunks: list[bytes]) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _zstr(text: str) -> bytes:
    """A zero-terminated string padded to an even length (INFO sub-chunks, Sec. 5)."""
    b = text.encode("ascii", "replace")[:255] + b"\0"
    return b + (b"\0" if len(b) % 2 else b"")


def _name20(text: str) -> bytes:
    return text.encode("ascii", "replace")[:19].ljust(20, b"\0")


def _gen(op: str, amount: int | tuple[int, int]) -> bytes:
    if isinstance(amount, tuple):
        return struct.pack("<HBB", GEN[op], amount[0], amount[1])
    return struct.pack("<Hh", GEN[op], int(amount))


def _sample_data(inst: Instrument) -> tuple[bytes, list[tuple[int, int]]]:
    """``smpl`` bytes and each sample's ``(start, end)`` in data points, order ``(layer, key)``."""
    parts, spans, pos = [], [], 0
    pad = np.zeros(PAD_POINTS, dtype="<i2")
    for v in range(len(inst.vel_ranges)):
        for k in range(len(inst.pitches)):
            pcm = np.clip(np.round(inst.samples[v, k] * 32767.0), -32768, 32767).astype("<i2")
            parts += [pcm.tobytes(), pad.tobytes()]
            spans.append((pos, pos + len(pcm)))
            pos += len(pcm) + PAD_POINTS
    return b"".join(parts), spans


def _hydra(inst: Instrument, spans: list[tuple[int, int]], program: int, bank: int) -> list[bytes]:
    """The nine ``pdta`` sub-chunks."""
    looped = inst.loops is not None
    release_tc = int(round(1200 * math.log2(max(inst.release_s, 0.001))))
    igen, ibag, shdr = [], [], []
    for i, (start, end) in enumerate(spans):
        v, k = divmod(i, len(inst.pitches))
        ibag.append(struct.pack("<HH", len(igen), 0))
        igen += [_gen("keyRange", inst.key_ranges[k]), _gen("velRange", inst.vel_ranges[v]),
                 _gen("overridingRootKey", int(inst.pitches[k])), _gen("sampleModes", 1 if looped else 0),
                 _gen("releaseVolEnv", release_tc), _gen("sampleID", i)]
        ls, le = (int(x) for x in inst.loops[k]) if looped else (8, end - start - 8)
        shdr.append(_name20(f"{inst.name[:10]}k{int(inst.pitches[k])}v{v + 1}")
                    + struct.pack("<IIIIIBbHH", start, end, start + ls, start + le, inst.sample_rate,
                                  int(inst.pitches[k]), 0, 0, 1))
    ibag.append(struct.pack("<HH", len(igen), 0))
    igen.append(struct.pack("<HH", 0, 0))
    shdr.append(_name20("EOS") + bytes(26))
    phdr = [_name20(inst.name) + struct.pack("<HHHIII", program, bank, 0, 0, 0, 0),
            _name20("EOP") + struct.pack("<HHHIII", 0, 0, 1, 0, 0, 0)]
    pbag = [struct.pack("<HH", 0, 0), struct.pack("<HH", 1, 0)]
    pgen = [_gen("instrument", 0), struct.pack("<HH", 0, 0)]
    inst_rec = [_name20(inst.name) + struct.pack("<H", 0), _name20("EOI") + struct.pack("<H", len(ibag) - 1)]
    return [_chunk(b"phdr", b"".join(phdr)), _chunk(b"pbag", b"".join(pbag)), _chunk(b"pmod", bytes(10)),
            _chunk(b"pgen", b"".join(pgen)), _chunk(b"inst", b"".join(inst_rec)), _chunk(b"ibag", b"".join(ibag)),
            _chunk(b"imod", bytes(10)), _chunk(b"igen", b"".join(igen)), _chunk(b"shdr", b"".join(shdr))]


def sf2_bytes(inst: Instrument, program: int = 0, bank: int = 0) -> bytes:
    """The whole ``.sf2`` file of ``inst`` as bytes (one preset: ``bank``:``program``)."""
    smpl, spans = _sample_data(inst)
    info = inst.info
    comment = (f"DarkGAN sample instrument; checkpoint {info.get('checkpoint')}; attributes "
               f"{info.get('attributes')}; like {info.get('like')}; seed {info.get('seed')}; velocity layers are "
               "low-passed copies of one generated note (the model has no velocity input)")
    info_chunks = [_chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", _zstr("EMU8000")),
                   _chunk(b"INAM", _zstr(inst.name)), _chunk(b"ISFT", _zstr("darkgan")),
                   _chunk(b"ICMT", _zstr(comment))]
    body = b"sfbk" + _list(b"INFO", info_chunks) + _list(b"sdta", [_chunk(b"smpl", smpl)]) \
        + _list(b"pdta", _hydra(inst, spans, program, bank))
    return _chunk(b"RIFF", body)


def write_sf2(inst: Instrument, path: str | Path, program: int = 0, bank: int = 0) -> Path:
    """Write ``inst`` as a SoundFont 2.01 file, atomically. Returns ``path``.

    Raises:
        OSError: the folder is not writable.
    """
    from darkgan.utils.io import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(sf2_bytes(inst, program, bank))
    return path
