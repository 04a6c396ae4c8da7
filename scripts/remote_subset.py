"""Move a labelled training subset to a remote GPU machine that cannot render or reach the network.

The full training cache (35k notes x 128 KiB) is far too large to copy to a lent GPU machine
whose transfer limit is 64 MiB; the first seconds of the notes compress to ~15 KiB each as FLAC.

    # here: pick up to --max-mb of notes (every pitch, spread over instruments), FLAC + labels
    python scripts/remote_subset.py pack data/default --out .gpu/subset --max-mb 52
    # there: rebuild an NSynth-layout dataset, then the usual commands
    python scripts/remote_subset.py unpack .gpu/subset --out /tmp/subset
    DARKGAN_MODELS_DIR=.gpu/subset/models python -m darkgan data prepare /tmp/subset
    ... darkgan label /tmp/subset --device cuda; darkgan attributes /tmp/subset; darkgan train ...
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import numpy as np

CROP = 16000


def pack(data: Path, out: Path, max_mb: float, seed: int = 0, valid_fraction: float = 0.08,
         models_dir: Path | None = None) -> None:
    """Write ``out/crops.flac`` (first seconds, concatenated), ``out/examples.json``,
    ``out/splits.json`` and a copy of the teacher weights for the remote side."""
    import soundfile as sf
    from tqdm import tqdm

    from darkgan.data.nsynth import NoteDataset
    from darkgan.paths import models_dirs

    rng = np.random.default_rng(seed)
    budget = int(max_mb * 2**20 / 15500)  # ~15.5 KiB of FLAC per 1 s note
    chosen = []
    for split, count in (("train", budget - int(budget * valid_fraction)), ("valid", int(budget * valid_fraction))):
        ds = NoteDataset(data, split=split)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(ds.records):
            groups.setdefault(r["instrument_str"], []).append(i)
        groups = {k: rng.permutation(v).tolist() for k, v in sorted(groups.items())}
        keys = rng.permutation(sorted(groups)).tolist()
        picked: list[int] = []
        while len(picked) < count and any(groups.values()):  # round-robin over instruments
            for k in keys:
                if groups[k] and len(picked) < count:
                    picked.append(groups[k].pop())
        chosen += [(ds, i) for i in sorted(picked)]
    out.mkdir(parents=True, exist_ok=True)
    crops = np.empty((len(chosen), CROP), dtype=np.float32)
    examples, splits = {}, {}
    for j, (ds, i) in enumerate(tqdm(chosen, desc="read crops", unit="note")):
        crops[j] = ds.load_audio(i)
        rec = {k: v for k, v in ds.records[i].items() if k not in ("split", "path")}
        examples[rec["note_str"]] = rec
        splits[rec["note_str"]] = ds.records[i]["split"]
    buf = io.BytesIO()
    sf.write(buf, crops.reshape(-1), 16000, format="FLAC", subtype="PCM_16")
    (out / "crops.flac").write_bytes(buf.getvalue())
    (out / "examples.json").write_text(json.dumps(examples))
    (out / "splits.json").write_text(json.dumps({"scheme": "subset", "seed": seed, "splits": splits}))
    src = next(d / "efficientat-mn04-as" for d in ([models_dir] if models_dir else models_dirs())
               if (d / "efficientat-mn04-as" / "mn04_as_mAP_432.pt").is_file())
    shutil.copytree(src, out / "models" / "efficientat-mn04-as", dirs_exist_ok=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(json.dumps({"notes": len(chosen), "valid": int(sum(v == "valid" for v in splits.values())),
                      "instruments": len({r["instrument_str"] for r in examples.values()}),
                      "size_mb": round(size, 1)}))


def unpack(pack_dir: Path, out: Path) -> None:
    """Rebuild an NSynth-layout dataset folder: each WAV is the 1 s crop zero-padded to 4 s
    (the reader's 64000-sample layout); the first second, all that training reads, is exact."""
    import soundfile as sf

    audio, sr = sf.read(pack_dir / "crops.flac", dtype="int16")
    assert sr == 16000, sr
    crops = audio.reshape(-1, CROP)
    examples = json.loads((pack_dir / "examples.json").read_text())
    (out / "audio").mkdir(parents=True, exist_ok=True)
    padded = np.zeros(4 * CROP, dtype=np.int16)
    for crop, name in zip(crops, examples):
        padded[:CROP] = crop
        sf.write(out / "audio" / f"{name}.wav", padded, 16000, subtype="PCM_16")
    shutil.copy(pack_dir / "examples.json", out / "examples.json")
    shutil.copy(pack_dir / "splits.json", out / "splits.json")
    print(f"{out}: {len(crops)} notes unpacked")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-mb", type=float, default=52)
    p.add_argument("--seed", type=int, default=0)
    u = sub.add_parser("unpack")
    u.add_argument("pack", type=Path)
    u.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.data, a.out, a.max_mb, a.seed)
    else:
        unpack(a.pack, a.out)


if __name__ == "__main__":
    main()
