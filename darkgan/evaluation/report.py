"""Evaluation report: ``report.md``, ``report.html`` (tables, PNG plots, audio players), WAVs.

Layout of ``REPORT_DIR``::

    metrics.json                 every number (written by the runner)
    report.md, report.html       Table 1 (PIS, IIS, KID x1e-4, FAD, FAD-inf, pitch accuracy),
                                 Table 2 (rho_i, teacher and YAMNet), Figures 2 and 3, examples
    fig2_ood.png                 mean rho vs out-of-distribution increment (paper Fig. 2)
    fig3_increment.png           increment consistency vs delta_k (paper Fig. 3)
    fig_rho.png                  rho_i per attribute (teacher vs YAMNet)
    examples/<model>/*.wav       example generations per attribute (16 kHz, 16-bit)
    listening/<model>/*.wav|png  the listening page: strongest attributes at user values 0 / 0.5 / 1
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from darkgan.generation.cli import write_wav  # noqa: F401 (the project's WAV writer; re-exported)
from darkgan.utils.io import atomic_write

#: Table-1 columns: (result key, value field, label, digits, interval low field, high field).
TABLE1 = [("pis", "pis", "PIS", 2, "pis_low", "pis_high"), ("iis", "iis", "IIS", 2, "iis_low", "iis_high"),
          ("kid", "kid_x1e4", "KID x1e-4", 2, "kid_low_x1e4", "kid_high_x1e4"),
          ("kad_teacher", "kad", "KAD (teacher)", 2, "kad_low", "kad_high"),
          ("kad_yamnet", "kad", "KAD (YAMNet)", 2, "kad_low", "kad_high"),
          ("fad_teacher", "fad", "FAD (teacher)", 2, None, None),
          ("fad_inf_teacher", "fad_inf", "FAD-inf (teacher)", 2, None, None),
          ("fad_yamnet", "fad", "FAD (YAMNet)", 2, None, None),
          ("fad_inf_yamnet", "fad_inf", "FAD-inf (YAMNet)", 2, None, None),
          ("pitch_accuracy", "pitch_accuracy", "pitch acc.", 2, "low", "high"),
          ("tail", "onset_median_db", "onset burst (dB)", 1, None, None),
          ("tail", "burst_median_db", "end burst (dB)", 1, None, None),
          ("tail", "envelope_median_db", "last 10 ms (dB)", 1, None, None)]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40] or "x"


def _fmt(v, digits=2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def write_examples(ctx) -> dict:
    """Audio examples: 4 real validation notes; per model its first 4 main-set notes, and for its
    ``example_attributes`` best attributes (highest teacher rho_i) one note with the validation
    vector ("base") and the same note (same z, pitch) with that attribute raised to 1 ("high").
    Returns ``{row: [{"label", "file"}]}`` (paths relative to the report folder)."""
    from darkgan.evaluation.data import real_waves

    out_dir, cache, rows = ctx.out_dir, ctx.data.cache, ctx.plan.va_rows[:4]
    ex_dir = out_dir / "examples"
    out: dict = {"real valid": []}
    for j, wave in enumerate(real_waves(cache, rows)):
        f = ex_dir / "real-valid" / f"note{j}-{cache.note_str[rows[j]]}.wav"
        write_wav(f, wave)
        out["real valid"].append({"label": f"{cache.note_str[rows[j]]}", "file": str(f.relative_to(out_dir))})
    for m in ctx.models:
        pitch, alpha = ctx.cond(m)
        z = ctx.plan.z[m.latent_dim]
        lst = []
        for j, wave in enumerate(ctx.waves(ctx.gen_set(m))[:4]):
            f = ex_dir / _slug(m.name) / f"random{j}-midi{int(pitch[j])}.wav"
            write_wav(f, wave)
            lst.append({"label": f"MIDI {int(pitch[j])}", "file": str(f.relative_to(out_dir))})
        order = ctx.order_by_rho(m)[:ctx.proto.example_attributes] if alpha is not None else []
        for k, i in enumerate(order):
            a = np.repeat(alpha[k:k + 1], 2, 0)
            a[1, i] = 1.0
            pair = m.generate(np.repeat(z[k:k + 1], 2, 0), np.repeat(pitch[k:k + 1], 2), a)
            for tag, wave, val in (("base", pair[0], alpha[k, i]), ("high", pair[1], 1.0)):
                f = ex_dir / _slug(m.name) / f"{_slug(ctx.data.names[i])}-{tag}.wav"
                write_wav(f, wave)
                lst.append({"label": f"{ctx.data.names[i]} = {val:.2f}", "attribute": ctx.data.names[i],
                            "file": str(f.relative_to(out_dir))})
        out[m.name] = lst
    return out


def _save(fig, out_dir: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_write(out_dir / name) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return name


#: The curve figures: (results key, y field, file, title, x label, y label, log x).
CURVES = [("ood", "mean_rho", "fig2_ood.png", "Out-of-distribution attribute correlation (cf. paper Fig. 2)",
           r"increment $\delta_l$", r"mean $\rho_i$ over attributes with $\rho_i > 0$", True),
          ("increment", "mean_ic", "fig3_increment.png", "Increment consistency (cf. paper Fig. 3)",
           r"increment $\delta_k = k/5$", r"mean $(F_i(G(\alpha+\delta)) - F_i(G(\alpha))) / \sigma$", False)]


def _curve_plot(out_dir: Path, res: dict, spec: tuple) -> str:
    import matplotlib.pyplot as plt

    key, field, fname, title, xlabel, ylabel, logx = spec
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in res[key].items():
        for tagger, style in (("teacher", "-"), ("yamnet", "--")):
            if tagger in r:
                unit = " [std of logit]" if r.get("delta_units", "").startswith("std") else ""
                ax.plot(r[tagger]["deltas"], [np.nan if v is None else v for v in r[tagger][field]], style,
                        marker="o", ms=3, label=f"{name} ({tagger}){unit}")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, fname)


def _rho_plot(out_dir: Path, metrics: dict, corr: dict) -> str:
    import matplotlib.pyplot as plt

    names = metrics["attributes"]["names"]
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(6, 0.12 * k + 2), 4))
    cols = [(f"{name} ({t})", r[t]) for name, r in corr.items() for t in ("teacher", "yamnet") if t in r]
    w = 0.8 / max(1, len(cols))
    for j, (label, r) in enumerate(cols):
        ax.bar(np.arange(k) + j * w, [np.nan if v is None else v for v in r["rho"]], width=w, label=label)
    ax.set_xticks(np.arange(k))
    ax.set_xticklabels(names, rotation=90, fontsize=5)
    ax.set(ylabel=r"$\rho_i$", title="Attribute correlation per attribute (cf. paper Table 2)")
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "fig_rho.png")


def _plots(out_dir: Path, metrics: dict) -> list[str]:
    """Figures 2 and 3 and the rho_i bars (validation conditioning), for what the metrics hold."""
    import matplotlib

    matplotlib.use("Agg")
    res = metrics["results"]
    made = [_curve_plot(out_dir, res, spec) for spec in CURVES if res.get(spec[0])]
    corr = {k: v for k, v in res.get("correlation", {}).items() if not k.startswith("real") and "teacher" in v}
    if corr:
        made.append(_rho_plot(out_dir, metrics, corr))
    return made


def _cell(d: dict | None, field: str, digits: int, low: str | None = None, high: str | None = None) -> str:
    """``value [low, high]`` (or the value alone) of a result dict; an en dash when absent."""
    if not d:
        return "–"
    v = _fmt(d.get(field), digits)
    if low and d.get(low) is not None:
        v += f" [{_fmt(d.get(low), digits)}, {_fmt(d.get(high), digits)}]"
    return v


def _table1(metrics: dict) -> tuple[list[str], list[list[str]]]:
    rows = metrics["results"]["rows"]
    cols = [c for c in TABLE1 if any(c[0] in v for v in rows.values())]
    header = ["model"] + [c[2] for c in cols]
    return header, [[row] + [_cell(vals.get(k), f, dg, lo, hi) for k, f, _, dg, lo, hi in cols]
                    for row, vals in rows.items()]


def _rho_columns(metrics: dict) -> list[tuple[str, dict]]:
    cols = []
    for key, cond in (("correlation", "valid"), ("correlation_train", "train")):
        for row, r in metrics["results"].get(key, {}).items():
            for tagger in ("teacher", "yamnet"):
                if tagger in r:
                    cols.append((f"{row} ({tagger}, {cond} cond.)", r[tagger]))
    return cols


def _table2(metrics: dict, limit: int = 30) -> tuple[list[str], list[list[str]]]:
    names = metrics["attributes"]["names"]
    cols = _rho_columns(metrics)
    if not cols or not names:
        return [], []
    # order by the first generator's teacher rho (else the first column)
    key = next((c for n, c in cols if not n.startswith("real") and "(teacher" in n), cols[0][1])
    order = sorted(range(len(names)), key=lambda i: -(key["rho"][i] if key["rho"][i] is not None else -9))
    header = ["attribute"] + [n for n, _ in cols]
    rows = [[names[i]] + [_cell({"r": c["rho"][i], "lo": (c.get("rho_low") or [None] * len(names))[i],
                                 "hi": (c.get("rho_high") or [None] * len(names))[i]}, "r", 2, "lo", "hi")
                          for _, c in cols] for i in order[:limit]]
    rows.append(["mean (all)"] + [_cell(c, "mean_rho", 3, "mean_rho_low", "mean_rho_high") for _, c in cols])
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
            f"the {p['ic_attributes']} best attributes (paper 50); increments added to the probability (paper), for "
            f"a standardised-logit model in standard deviations of the attribute's logit (its input units); "
            f"pitch accuracy on {p['pitch_n']} notes per set.")


def _control_lines(metrics: dict) -> list[str]:
    """One line per row: mean rho_i with its 95 % interval, per tagger and conditioning."""
    out = []
    for key, cond in (("correlation", "validation"), ("correlation_train", "training")):
        for row, r in metrics["results"].get(key, {}).items():
            parts = [f"{t} {_cell(r[t], 'mean_rho', 3, 'mean_rho_low', 'mean_rho_high')}"
                     for t in ("teacher", "yamnet") if t in r]
            if parts:
                out.append(f"- **{row}**, {cond} conditioning: mean rho " + "; ".join(parts))
    return out


def _listening_html(metrics: dict) -> str:
    """The listening page: per model, rows attribute x pitch, columns user values 0 / 0.5 / 1."""
    parts = []
    for name, notes in (metrics["results"].get("listening") or {}).items():
        rows: dict = {}
        for e in notes:
            rows.setdefault((e["attribute"], e["pitch"], e["rho"]), []).append(e)
        trs = []
        for (att, pitch, rho), cells in rows.items():
            tds = "".join(f"<td><img src='{html.escape(c['png'])}' alt='spectrogram' width='160'><br><audio controls "
                          f"preload='none' src='{html.escape(c['wav'])}'></audio><br>raw {c['raw']:.3f}</td>"
                          for c in cells)
            trs.append(f"<tr><td>{html.escape(att)}<br>rho {_fmt(rho)}<br>MIDI {pitch}</td>{tds}</tr>")
        head = "".join(f"<th>user value {v}</th>" for v in ("0", "0.5", "1"))
        parts.append(f"<h3>{html.escape(name)}</h3><table><thead><tr><th>attribute</th>{head}</tr></thead>"
                     f"<tbody>{''.join(trs)}</tbody></table>")
    if not parts:
        return ""
    return ("<h2>Listening page</h2><p>The attributes with the strongest control (highest teacher rho), at "
            "user values 0 (typical note) / 0.5 / 1 (99th percentile of the reference notes); every other "
            "attribute typical; one noise vector per pitch.</p>" + "".join(parts))


def _common(metrics: dict) -> dict:
    emb = metrics.get("embedding_models", {})
    emb_lines = [f"- {k}: `{v.get('id')}` sha256 `{str(v.get('weights_sha256'))[:16]}…`, embedding dim "
                 f"{v.get('embedding_dim')}" for k, v in emb.items()]
    inc = emb.get("inception", {}).get("valid") or {}
    if inc:
        emb_lines.append(f"- inception validation accuracy: pitch {_fmt(inc.get('pitch_accuracy'))}, family "
                         f"{_fmt(inc.get('family_accuracy'))}, attribute correlation {_fmt(inc.get('attribute_mean_corr'))}")
    models = [f"- **{m['name']}**: `{m.get('path')}` (preset {m.get('preset')}, "
              + (f"SING, {m.get('instruments')} instruments; scored: {m.get('scored')}" if m.get("family") == "sing"
                 else f"T = {m.get('temperature')}, {m.get('attributes')} attributes")
              + f", step {m.get('step')}, key {m.get('key')})" for m in metrics["models"]]
    return {"emb": emb_lines, "models": models, "control": _control_lines(metrics),
            "missing": [f"- {m['what']} ({m['set']}): {m['reason']}" for m in metrics.get("missing", [])] or ["- nothing"],
            "t1": _table1(metrics), "t2": _table2(metrics)}


T1_TEXT = ("PIS/IIS/KID on our inception classifier; KAD (kernel audio distance, any n) and FAD (needs n > the "
           "embedding dimension) against the reference training notes on the teacher's and YAMNet's embeddings; "
           "lower KID/KAD/FAD is better; [95 % intervals]. Compare rows within this report.")
T2_TEXT = ("Pearson correlation between the conditioning alpha_i and the tagger's prediction on the generated note, "
           "[bootstrap 95 % interval], on validation and on training conditioning. 'real valid' / 'real train': the "
           "teacher's labels against the teacher on the same real notes re-synthesised from MAG-IF (the ceiling). "
           "YAMNet columns use the attributes YAMNet shares with the teacher (same AudioSet class).")


def _markdown(metrics: dict, c: dict, figs: list[str]) -> str:
    d = metrics["data"]
    md = ["# DarkGAN evaluation report", "", f"Created {metrics['created']}; data `{d['dir']}` ({d['notes']} notes, "
          f"MIDI {d['pitch_range'][0]}..{d['pitch_range'][1]}); metrics {', '.join(metrics.get('metrics', []))}.", "",
          "## Models", *c["models"], "", "## Sample sizes", _sizes_text(metrics), "",
          "## Table 1: quality (cf. paper Table 1)", T1_TEXT, "", _md_table(*c["t1"]),
          "## Attribute control", *c["control"], "",
          "## Table 2: attribute correlation rho_i (cf. paper Table 2)", T2_TEXT, "", _md_table(*c["t2"])]
    for fig in figs:
        md += [f"![{fig}]({fig})", ""]
    if metrics["results"].get("listening"):
        md += ["Listening page: see report.html.", ""]
    md += ["## Embedding models", *c["emb"], "", "## Missing results", *c["missing"], "",
           f"Cache: {metrics['cache']['hits']} feature sets reused, {metrics['cache']['computed']} computed. "
           f"Wall time {metrics['wall_time_s']} s.", ""]
    return "\n".join(md)


def _para(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _ul(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_para(x[2:])}</li>" for x in lines) + "</ul>"


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
         "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,"
         "th:first-child{text-align:left}img{max-width:100%}.exs{display:flex;flex-wrap:wrap;gap:8px}"
         ".ex{font-size:12px;border:1px solid #eee;padding:4px}")


def _html(metrics: dict, c: dict, figs: list[str]) -> str:
    ex = "".join(f"<h3>{html.escape(name)}</h3><div class='exs'>" + "".join(
        f"<div class='ex'><div>{html.escape(e['label'])}</div><audio controls preload='none' "
        f"src='{html.escape(e['file'])}'></audio></div>" for e in lst) + "</div>"
        for name, lst in (metrics["results"].get("examples") or {}).items())
    body = [f"<h1>DarkGAN evaluation report</h1><p>Created {html.escape(metrics['created'])}; data "
            f"<code>{html.escape(metrics['data']['dir'])}</code> ({metrics['data']['notes']} notes).</p>",
            "<h2>Models</h2>" + _ul(c["models"]), f"<h2>Sample sizes</h2><p>{_para(_sizes_text(metrics))}</p>",
            f"<h2>Table 1: quality (cf. paper Table 1)</h2><p>{html.escape(T1_TEXT)}</p>", _html_table(*c["t1"]),
            "<h2>Attribute control</h2>" + _ul(c["control"]),
            f"<h2>Table 2: attribute correlation &rho;<sub>i</sub> (cf. paper Table 2)</h2><p>{html.escape(T2_TEXT)}</p>",
            _html_table(*c["t2"])]
    body += [f"<figure><img src='{f}' alt='{f}'><figcaption>{f}</figcaption></figure>" for f in figs]
    body += [_listening_html(metrics), "<h2>Audio examples</h2>" + (ex or "<p><em>(none)</em></p>"),
             "<h2>Embedding models</h2>" + _ul(c["emb"]), "<h2>Missing results</h2>" + _ul(c["missing"])]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>DarkGAN evaluation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def write_report(out_dir: Path, metrics: dict) -> None:
    """Write ``report.md``, ``report.html`` and the PNG figures from ``metrics`` (metrics.json)."""
    out_dir = Path(out_dir)
    figs = _plots(out_dir, metrics)
    c = _common(metrics)
    with atomic_write(out_dir / "report.md", "w") as f:
        f.write(_markdown(metrics, c, figs))
    with atomic_write(out_dir / "report.html", "w") as f:
        f.write(_html(metrics, c, figs))
