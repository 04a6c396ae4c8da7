"""Move a labelled training subset to a remote GPU machine that cannot render or reach the network.

The full training cache (35k notes x 128 KiB) is far too large to copy to a lent GPU machine
whose transfer limit is 64 MiB; the first seconds of the notes compress to ~15 KiB each as FLAC.

    # here: pick up to --max-mb of notes (every pitch, spread over instruments), FLAC + labels
    python scripts/remote_subset.py pack data/default --out .gpu/subset --max-mb 52
    # there: rebuild a training folder (cache/, labels/, vocabulary.json) from the pack
    python scripts/remote_subset.py unpack .gpu/subset --out /tmp/subset

The rebuilt folder is what `darkgan train --data` reads; normalisation statistics are fitted on
the subset's training rows, as `darkgan data prepare` would.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import numpy as np

CROP = 16000


def pack(data: Path, out: Path, max_mb: float, seed: int = 0, valid_fraction: float = 0.05) -> None:
    import soundfile as sf
    from tqdm import tqdm

    from darkgan.data.cache import NoteCache
    from darkgan.data.nsynth import NoteDataset
    from darkgan.teacher.vocabulary import load_vocabulary

    cache = NoteCache(data)
    vocab = load_vocabulary(data)
    teacher_id = vocab["teacher"]
    labels = np.load(data / "labels" / f"{teacher_id}.npz", allow_pickle=False)
    label_row = {s: i for i, s in enumerate(labels["note_str"].tolist())}
    ds = NoteDataset(data)
    by_name = {r["note_str"]: i for i, r in enumerate(ds.records)}

    rng = np.random.default_rng(seed)
    budget_notes = int(max_mb * 2**20 / 15500)  # ~15.5 KiB of FLAC per 1 s note
    n_valid = max(1, int(budget_notes * valid_fraction))
    chosen = []
    for split, count in (("train", budget_notes - n_valid), ("valid", n_valid)):
        rows = cache.rows(split)
        # spread over instruments: round-robin over instruments in random order
        inst = cache.instrument_str[rows]
        groups = {k: rng.permutation(rows[inst == k]).tolist() for k in np.unique(inst)}
        keys = rng.permutation(list(groups)).tolist()
        picked = []
        while len(picked) < count and any(groups.values()):
            for k in keys:
                if groups[k] and len(picked) < count:
                    picked.append(groups[k].pop())
        chosen += sorted(picked)
    chosen = np.array(chosen, dtype=np.int64)

    out.mkdir(parents=True, exist_ok=True)
    crops = np.empty((len(chosen), CROP), dtype=np.float32)
    for j, row in enumerate(tqdm(chosen, desc="read crops", unit="note")):
        crops[j] = ds.load_audio(by_name[cache.note_str[row]])
    buf = io.BytesIO()
    sf.write(buf, crops.reshape(-1), 16000, format="FLAC", subtype="PCM_16")
    (out / "crops.flac").write_bytes(buf.getvalue())
    meta = {k: getattr(cache, k)[chosen] for k in
            ("note_str", "pitch", "velocity", "instrument_family", "instrument_source", "instrument_str", "split")}
    np.savez(out / "index.npz", **meta)
    lrows = np.array([label_row[s] for s in meta["note_str"]])
    (out / "labels").mkdir(exist_ok=True)
    np.savez_compressed(out / "labels" / f"{teacher_id}.npz", note_str=meta["note_str"],
                        logits=labels["logits"][lrows], class_names=labels["class_names"])
    shutil.copy(data / "labels" / f"{teacher_id}.json", out / "labels" / f"{teacher_id}.json")
    shutil.copy(data / "vocabulary.json", out / "vocabulary.json")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(json.dumps({"notes": len(chosen), "train": int((meta["split"] == "train").sum()),
                      "instruments": int(len(np.unique(meta["instrument_str"]))), "size_mb": round(size, 1)}))


def unpack(pack_dir: Path, out: Path) -> None:
    import soundfile as sf
    import torch

    from darkgan.data.magif import fade_out, wave_to_magif
    from darkgan.data.prepare import write_index_and_stats

    audio, sr = sf.read(pack_dir / "crops.flac", dtype="float32")
    assert sr == 16000, sr
    waves = torch.from_numpy(audio.reshape(-1, CROP))
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    arr = np.lib.format.open_memmap(cache / "magif.npy", mode="w+", dtype=np.float16,
                                    shape=(len(waves), 2, 1024, 32))
    for start in range(0, len(waves), 512):
        arr[start:start + 512] = wave_to_magif(fade_out(waves[start:start + 512])).numpy().astype(np.float16)
    arr.flush()
    with np.load(pack_dir / "index.npz", allow_pickle=False) as idx:
        meta = {k: idx[k] for k in idx.files}
    write_index_and_stats(cache, arr, meta, {"pitches": None, "fade_out": True, "source": str(pack_dir)})
    shutil.copytree(pack_dir / "labels", out / "labels", dirs_exist_ok=True)
    shutil.copy(pack_dir / "vocabulary.json", out / "vocabulary.json")
    print(f"{out}: {len(waves)} notes unpacked")


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
