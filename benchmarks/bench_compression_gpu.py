"""GPU timings of the eager and fast generators (paper and student architectures, random weights).

Usage: python benchmarks/bench_compression_gpu.py OUT.json   (needs CUDA)

Single-note latency (median of 30 after 5 warm-ups) and batch-64 notes/s, inputs -> waveform
(``torch.istft``), synchronised. Numbers in docs/compression.md.
"""
import torch, time, json, sys
from darkgan.models.config import get_preset, apply_overrides
from darkgan.models.generator import Generator
from darkgan.compression.fast import fast_generator, FastSynth
from darkgan.compression.presets import STUDENT_PRESETS
from darkgan.data.magif import Normalizer, magif_to_wave
dev = torch.device("cuda")
res = []
norm = Normalizer((-4.0, 0.0), (2.5, 0.6))
for name in ["paper", "student-m", "student-s", "student-xs"]:
    cfg = get_preset("paper")
    if name != "paper":
        ch = STUDENT_PRESETS[name][1]
        cfg = apply_overrides(cfg, [f"model.channels={list(ch['channels'])}", f"model.convs_per_block={ch['convs_per_block']}"])
    g = Generator(cfg.model, 27, 128).to(dev).eval()
    for kind in ["eager", "fast"]:
        if kind == "eager":
            fn = lambda z, p, a: magif_to_wave(norm.denormalize(g(z, p, a)))
        else:
            s = FastSynth(fast_generator(g), norm).to(dev)
            fn = lambda z, p, a: s(z, p, a)
        row = {"model": name, "kind": kind}
        for b in [1, 64]:
            z = torch.randn(b, 32, device=dev); p = torch.randint(0, 27, (b,), device=dev); a = torch.rand(b, 128, device=dev)
            with torch.inference_mode():
                for _ in range(5): fn(z, p, a)
                torch.cuda.synchronize()
                ts = []
                for _ in range(30 if b == 1 else 10):
                    t = time.perf_counter(); fn(z, p, a); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
            ts.sort()
            med = ts[len(ts) // 2]
            if b == 1: row["latency_ms"] = round(med * 1000, 3)
            else: row["notes_per_s_batch64"] = round(64 / med, 1)
        res.append(row)
        print(row, flush=True)
json.dump({"gpu": torch.cuda.get_device_name(), "rows": res}, open(sys.argv[1], "w"), indent=1)
