"""Evaluation report: ``report.md``, ``report.html`` (tables, PNG plots, audio players), WAVs.

Layout of ``REPORT_DIR``::

    metrics.json                 every number (written by the runner)
    report.md, report.html       Table 1 (PIS, IIS, KID x1e-4, FAD, FAD-inf, pitch accuracy),
                                 Table 2 (rho_i, teacher and YAMNet), Figures 2 and 3, examples
    fig2_ood.png                 mean rho vs out-of-distribution increment (paper Fig. 2)
    fig3_increment.png           increment consistency vs delta_k (paper Fig. 3)
    fig_rho.png                  rho_i per attribute (teacher vs YAMNet)
    examples/<model>/*.wav       example generations per attribute (16 kHz, 16-bit)
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from darkgan.utils.io import atomic_write

TABLE1 = [("pis", "pis", "PIS", 1), ("iis", "iis", "IIS", 1), ("kid", "kid_x1e4", "KID x1e-4", 2),
          ("fad_teacher", "fad", "FAD (teacher)", 2), ("fad_inf_teacher", "fad_inf", "FAD-inf (teacher)", 2),
          ("fad_yamnet", "fad", "FAD (YAMNet)", 2), ("fad_inf_yamnet", "fad_inf", "FAD-inf (YAMNet)", 2),
          ("pitch_accuracy", "pitch_accuracy", "pitch acc.", 2)]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40] or "x"


def _fmt(v, digits=2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def write_wav(path: Path, wave: np.ndarray, sr: int = 16000) -> None:
    """16-bit PCM WAV, atomically."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wave, np.float32), -1, 1), sr, subtype="PCM_16", format="WAV")
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def write_examples(out_dir: Path, models, alphas, results, names, z_all, cond_pitch, n_attr: int, fc,
                   real=None) -> dict:
    """Audio examples: per model, its first 4 main-set notes, and for its ``n_attr`` best attributes
    (highest rho_i) one note with the validation vector ("base") and the same note (same z,
    pitch) with that attribute raised to 1 ("high"). Returns ``{model: [{"label", "file"}]}``."""
    from darkgan.evaluation.data import real_waves

    out: dict = {}
    ex_dir = Path(out_dir) / "examples"
    if real is not None:
        cache, rows = real
        w = real_waves(cache, rows[:4])
        lst = []
        for j, wave in enumerate(w):
            f = ex_dir / "real-valid" / f"note{j}-{cache.note_str[rows[j]]}.wav"
            write_wav(f, wave)
            lst.append({"label": f"{cache.note_str[rows[j]]}", "file": str(f.relative_to(out_dir))})
        out["real valid"] = lst
    for m in models:
        lst = []
        z = z_all[m.latent_dim]
        alpha = alphas.get(m.name)
        w = m.generate(z[:4], cond_pitch[:4], None if alpha is None else alpha[:4])
        for j, wave in enumerate(w):
            f = ex_dir / _slug(m.name) / f"random{j}-midi{int(cond_pitch[j])}.wav"
            write_wav(f, wave)
            lst.append({"label": f"MIDI {int(cond_pitch[j])}", "file": str(f.relative_to(out_dir))})
        if alpha is not None and n_attr:
            rho = results.get("correlation", {}).get(m.name, {}).get("teacher", {}).get("rho") or []
            rho = np.array([np.nan if v is None else v for v in rho], float)
            order = [int(i) for i in np.argsort(-np.nan_to_num(rho, nan=-2.0))][:n_attr]
            for k, i in enumerate(order):
                a = np.repeat(alpha[k:k + 1], 2, 0)
                a[1, i] = 1.0
                pair = m.generate(np.repeat(z[k:k + 1], 2, 0), np.repeat(cond_pitch[k:k + 1], 2), a)
                for tag, wave, val in (("base", pair[0], alpha[k, i]), ("high", pair[1], 1.0)):
                    f = ex_dir / _slug(m.name) / f"{_slug(names[i])}-{tag}.wav"
                    write_wav(f, wave)
                    lst.append({"label": f"{names[i]} = {val:.2f}", "attribute": names[i], "file":
                                str(f.relative_to(out_dir))})
        out[m.name] = lst
    return out


def _plots(out_dir: Path, metrics: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    res = metrics["results"]
    if res.get("ood"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, r in res["ood"].items():
            for tagger, style in (("teacher", "-"), ("yamnet", "--")):
                if tagger in r:
                    ax.plot(r[tagger]["deltas"], [np.nan if v is None else v for v in r[tagger]["mean_rho"]], style,
                            marker="o", ms=3, label=f"{name} ({tagger})")
        ax.set_xscale("log")
        ax.set_xlabel(r"increment $\delta_l$")
        ax.set_ylabel(r"mean $\rho_i$ over attributes with $\rho_i > 0$")
        ax.set_title("Out-of-distribution attribute correlation (cf. paper Fig. 2)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_write(out_dir / "fig2_ood.png") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        made.append("fig2_ood.png")
    if res.get("increment"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, r in res["increment"].items():
            for tagger, style in (("teacher", "-"), ("yamnet", "--")):
                if tagger in r:
                    ax.plot(r[tagger]["deltas"], [np.nan if v is None else v for v in r[tagger]["mean_ic"]], style,
                            marker="o", ms=3, label=f"{name} ({tagger})")
        ax.set_xlabel(r"increment $\delta_k = k/5$")
        ax.set_ylabel(r"mean $(F_i(G(\alpha+\delta)) - F_i(G(\alpha))) / \sigma$")
        ax.set_title("Increment consistency (cf. paper Fig. 3)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_write(out_dir / "fig3_increment.png") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        made.append("fig3_increment.png")
    corr = {k: v for k, v in res.get("correlation", {}).items() if k != "real valid" and "teacher" in v}
    if corr:
        names = metrics["attributes"]["names"]
        k = len(names)
        fig, ax = plt.subplots(figsize=(max(6, 0.12 * k + 2), 4))
        w = 0.8 / max(1, 2 * len(corr))
        j = 0
        for name, r in corr.items():
            for tagger in ("teacher", "yamnet"):
                if tagger in r:
                    vals = [np.nan if v is None else v for v in r[tagger]["rho"]]
                    ax.bar(np.arange(k) + j * w, vals, width=w, label=f"{name} ({tagger})")
                    j += 1
        ax.set_xticks(np.arange(k))
        ax.set_xticklabels(names, rotation=90, fontsize=5)
        ax.set_ylabel(r"$\rho_i$")
        ax.set_title("Attribute correlation per attribute (cf. paper Table 2)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_write(out_dir / "fig_rho.png") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        made.append("fig_rho.png")
    return made


def _table1(metrics: dict) -> tuple[list[str], list[list[str]]]:
    header = ["model"] + [label for _, _, label, _ in TABLE1]
    rows = []
    for row, vals in metrics["results"]["rows"].items():
        cells = [row]
        for key, field, _, digits in TABLE1:
            v = vals.get(key, {}).get(field)
            if key == "kid" and v is not None:
                cells.append(f"{_fmt(v, digits)} ± {_fmt(vals[key].get('kid_std_x1e4'), digits)}")
            else:
                cells.append(_fmt(v, digits))
        rows.append(cells)
    return header, rows


def _table2(metrics: dict, limit: int = 30) -> tuple[list[str], list[list[str]]]:
    corr = metrics["results"].get("correlation", {})
    names = metrics["attributes"]["names"]
    if not corr or not names:
        return [], []
    cols = []
    for row, r in corr.items():
        for tagger in ("teacher", "yamnet"):
            if tagger in r:
                cols.append((f"{row} ({tagger})", [None if v is None else v for v in r[tagger]["rho"]]))
    # order by the first generator's teacher rho (else the first column)
    key_col = next((c for c in cols if not c[0].startswith("real valid") and c[0].endswith("(teacher)")), cols[0])
    order = sorted(range(len(names)), key=lambda i: -(key_col[1][i] if key_col[1][i] is not None else -9))
    header = ["attribute"] + [c[0] for c in cols]
    rows = [[names[i]] + [_fmt(c[1][i]) for c in cols] for i in order[:limit]]
    rows.append(["mean (all)"] + [_fmt(float(np.nanmean([np.nan if v is None else v for v in c[1]]))
                                        if any(v is not None for v in c[1]) else None) for c in cols])
    return header, rows


def _md_table(header, rows) -> str:
    if not header:
        return "_(none)_\n"
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _html_table(header, rows) -> str:
    if not header:
        return "<p><em>(none)</em></p>"
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def _sizes_text(metrics: dict) -> str:
    p = metrics["protocol"]
    pp = metrics["protocol_paper"]
    s = metrics["sizes"]
    return (f"Protocol **{p['name']}** (seed {metrics['seed']}, device {metrics['device']}): {p['n']} generations per "
            f"model (paper {pp['n']}); real sets: reference {s['reference']} training notes, 'real train' "
            f"{s['real train']} other training notes, 'real valid' {s['real valid']} validation notes; KID subsets "
            f"{p['kid_subsets']} x {p['kid_subset']} at most, half the smaller set (paper {pp['kid_subsets']} x "
            f"{pp['kid_subset']}), embedding scaled to unit mean square on the reference set; "
            f"out-of-distribution: {len(s['ood_levels'])} increments (paper 51) x {s['ood_n']} notes (paper "
            f"{pp['ood_n']}) for up to {p['ood_attributes'] or 'all'} attributes with rho > 0 (paper: all); increment "
            f"consistency: {len(s['ic_steps'])} increments (paper 26) x {s['ic_n']} notes (paper {pp['ic_n']}) for "
            f"the {p['ic_attributes']} best attributes (paper 50); pitch accuracy on {p['pitch_n']} notes per set.")


def write_report(out_dir: Path, metrics: dict) -> None:
    """Write ``report.md``, ``report.html`` and the PNG figures from ``metrics`` (metrics.json)."""
    out_dir = Path(out_dir)
    figs = _plots(out_dir, metrics)
    t1h, t1r = _table1(metrics)
    t2h, t2r = _table2(metrics)
    emb = metrics.get("embedding_models", {})
    emb_lines = [f"- {k}: `{v.get('id')}` sha256 `{str(v.get('weights_sha256'))[:16]}…`, embedding dim "
                 f"{v.get('embedding_dim')}" for k, v in emb.items()]
    inc = emb.get("inception", {}).get("valid") or {}
    if inc:
        emb_lines.append(f"- inception validation accuracy: pitch {_fmt(inc.get('pitch_accuracy'))}, family "
                         f"{_fmt(inc.get('family_accuracy'))}, attribute correlation {_fmt(inc.get('attribute_mean_corr'))}")
    missing = metrics.get("missing", [])
    miss_lines = [f"- {m['what']} ({m['set']}): {m['reason']}" for m in missing] or ["- nothing"]
    models = [f"- **{m['name']}**: `{m.get('path')}` (preset {m.get('preset')}, T = {m.get('temperature')}, "
              f"{m.get('attributes')} attributes, step {m.get('step')}, key {m.get('key')})" for m in metrics["models"]]
    md = ["# DarkGAN evaluation report", "", f"Created {metrics['created']}; data `{metrics['data']['dir']}` "
          f"({metrics['data']['notes']} notes, MIDI {metrics['data']['pitch_range'][0]}..{metrics['data']['pitch_range'][1]}).",
          "", "## Models", *models, "", "## Sample sizes", _sizes_text(metrics), "",
          "## Table 1: quality (cf. paper Table 1)",
          "PIS/IIS/KID on our inception classifier; FAD against the reference training notes on the "
          "teacher's and YAMNet's embeddings; lower KID/FAD is better. Compare rows within this report.", "",
          _md_table(t1h, t1r), "## Table 2: attribute correlation rho_i (cf. paper Table 2)",
          "Pearson correlation between the conditioning alpha_i and the tagger's prediction on the generated "
          "note. 'real valid': the teacher's self-consistency on real notes (the ceiling). YAMNet columns use "
          "the attributes YAMNet shares with the teacher (same AudioSet class).", "", _md_table(t2h, t2r)]
    for fig in figs:
        md += [f"![{fig}]({fig})", ""]
    md += ["## Embedding models", *emb_lines, "", "## Missing results", *miss_lines, "",
           f"Cache: {metrics['cache']['hits']} feature sets reused, {metrics['cache']['computed']} computed. "
           f"Wall time {metrics['wall_time_s']} s.", ""]
    with atomic_write(out_dir / "report.md", "w") as f:
        f.write("\n".join(md))

    ex_html = []
    for name, lst in (metrics["results"].get("examples") or {}).items():
        items = "".join(f"<div class='ex'><div>{html.escape(e['label'])}</div><audio controls preload='none' "
                        f"src='{html.escape(e['file'])}'></audio></div>" for e in lst)
        ex_html.append(f"<h3>{html.escape(name)}</h3><div class='exs'>{items}</div>")
    def para(text: str) -> str:
        t = html.escape(text)
        return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)

    body = [f"<h1>DarkGAN evaluation report</h1><p>Created {html.escape(metrics['created'])}; data "
            f"<code>{html.escape(metrics['data']['dir'])}</code> ({metrics['data']['notes']} notes).</p>",
            "<h2>Models</h2><ul>" + "".join(f"<li>{para(m[2:])}</li>" for m in models) + "</ul>",
            f"<h2>Sample sizes</h2><p>{para(_sizes_text(metrics))}</p>",
            "<h2>Table 1: quality (cf. paper Table 1)</h2><p>PIS/IIS/KID on our inception classifier; FAD "
            "against the reference training notes on the teacher's and YAMNet's embeddings.</p>",
            _html_table(t1h, t1r),
            "<h2>Table 2: attribute correlation &rho;<sub>i</sub> (cf. paper Table 2)</h2><p>'real valid': "
            "the teacher's self-consistency on real notes. YAMNet: the attributes it shares with the teacher.</p>",
            _html_table(t2h, t2r)]
    for fig in figs:
        body.append(f"<figure><img src='{fig}' alt='{fig}'><figcaption>{fig}</figcaption></figure>")
    body.append("<h2>Audio examples</h2>" + ("".join(ex_html) or "<p><em>(none)</em></p>"))
    body.append("<h2>Embedding models</h2><ul>" + "".join(f"<li>{para(x[2:])}</li>" for x in emb_lines) + "</ul>")
    body.append("<h2>Missing results</h2><ul>" + "".join(f"<li>{para(x[2:])}</li>" for x in miss_lines) + "</ul>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,"
             "th:first-child{text-align:left}img{max-width:100%}.exs{display:flex;flex-wrap:wrap;gap:8px}"
             ".ex{font-size:12px;border:1px solid #eee;padding:4px}")
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>DarkGAN evaluation</title>"
           f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    with atomic_write(out_dir / "report.html", "w") as f:
        f.write(doc)
