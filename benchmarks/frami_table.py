"""Table 2-style summary of FRAMI runs: ``python benchmarks/frami_table.py RUNS_DIR``.

Reads ``RUNS_DIR/<method>-s<seed>/results.json`` (``darkgan distill-tagger`` outputs) and
``RUNS_DIR/teacher-s<seed>/results.json``; prints a Markdown table of test accuracy (mean and
per seed), agreement with the teacher, and cost.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from darkgan.utils.io import read_json


def _fmt(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{100 * mean:.2f} ({', '.join(f'{100 * v:.2f}' for v in values)})"


def main(root: str) -> str:
    """The Markdown table of the runs under ``root``."""
    runs = defaultdict(list)
    for path in sorted(Path(root).glob("*-s*/results.json")):
        r = read_json(path)
        if r.get("done"):
            runs[path.parent.name.rsplit("-s", 1)[0]].append(r)
    lines = ["| run | seeds | test acc % mean (per seed) | agreement with teacher % | inversion samples / CPU s | student notes/s vs teacher |",
             "|---|---|---|---|---|---|"]
    for name in ("teacher", "data", "kd", "adi", "frami"):
        rs = runs.get(name, [])
        if not rs:
            continue
        key = "teacher_test_acc" if name == "teacher" else "student_test_acc"
        agree = _fmt([r["agreement"] for r in rs]) if "agreement" in rs[0] else "-"
        synth = f"{sum(r['synth_per_cpu_s'] for r in rs) / len(rs):.2f}" if "synth_per_cpu_s" in rs[0] else "-"
        speed = (f"{sum(r['student_notes_per_s'] for r in rs) / len(rs):.0f} vs {sum(r['teacher_notes_per_s'] for r in rs) / len(rs):.0f}"
                 if "student_notes_per_s" in rs[0] else "-")
        lines.append(f"| {name} | {len(rs)} | {_fmt([r[key] for r in rs])} | {agree} | {synth} | {speed} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "/work/runs/frami/micro"))
