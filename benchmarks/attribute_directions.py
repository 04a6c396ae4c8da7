"""Where each attribute lives in the conditioning, and whether that predicts word control (issue 15, stop 44).

    python benchmarks/attribute_directions.py --data DIR [--control control.json ...] [--k 5 10 20]
        [--temperature 2] [--json out.json]

The generator's attribute input is the standardised teacher logit ``c = (z / T - mean) / std``
over the training notes (``model.attr_input = "std_logit"``). Its covariance is dominated by few
directions (on ``data/default`` the top 5 principal components of 128 carry 61 % of the
variance). For each attribute i this prints the share of its variance in the top-k principal
components, ``R2_i(k) = 1 - E[(c_i - P_k c)_i^2]`` (``P_k`` the projection on them), and, for each
``--control`` JSON of ``benchmarks/control.py`` (stage ``rho``), the Spearman correlation across
attributes between ``R2_i(k)`` and the generator's attribute correlation rho_i (teacher and
YAMNet), with the mean rho of the quarter of attributes with the least and the most of their
variance in the top k. A strong positive correlation says the generator follows the conditioning's
major directions and neglects attributes that live in minor ones (e.g. "Percussion"), the case for
``model.attr_input = "white_logit"``.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

SHOWN = ("Percussion", "Drum", "Tuning fork", "Saxophone", "Brass instrument", "Chime", "Electronic tuner",
         "Guitar", "Plucked string instrument", "Acoustic guitar", "Bass guitar")


def top_k_share(c: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
    """``{k: [K]}`` the share of each column's variance of ``c [N, K]`` (standardised) in its top-k
    principal components."""
    c = c - c.mean(0)
    _, vec = np.linalg.eigh(np.cov(c, rowvar=False, bias=True))
    vec = vec[:, ::-1]
    var = c.var(0)
    out = {}
    for k in ks:
        rec = c @ vec[:, :k] @ vec[:, :k].T
        out[k] = 1.0 - ((c - rec) ** 2).mean(0) / var
    return out


def rho_of(control: dict, tagger: str, names: list[str]) -> np.ndarray:
    """``[K]`` rho_i of ``tagger`` in a control.py JSON, NaN where it was not measured."""
    r = control["rho"][tagger]
    return np.array([r["rho"][r["names"].index(n)] if n in r["names"] else np.nan for n in names], float)


def main(argv=None) -> None:
    from scipy import stats

    from darkgan.training.data import load_training_data
    from darkgan.training.terms import standardized_logits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--control", nargs="*", default=[], help="control.py JSON files (stage rho)")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    data = load_training_data(a.data)
    c = standardized_logits(data.logits, data.train_rows, a.temperature)  # the generator's std_logit input
    names = list(data.attributes)
    share = top_k_share(c, a.k)
    lam = np.linalg.eigvalsh(np.cov(c, rowvar=False, bias=True))[::-1]
    print(f"{a.data}: {len(c)} training notes, {len(names)} attributes; variance in the top "
          + ", ".join(f"{k}: {lam[:k].sum() / lam.sum():.2f}" for k in a.k))
    print("| attribute | " + " | ".join(f"R2 top {k}" for k in a.k) + " |\n|---|" + "---|" * len(a.k))
    for n in SHOWN:
        if n in names:
            print(f"| {n} | " + " | ".join(f"{share[k][names.index(n)]:.2f}" for k in a.k) + " |")
    out = {"data": a.data, "k": a.k, "names": names, "share": {k: share[k].tolist() for k in a.k}, "controls": {}}
    for path in a.control:
        ctl = json.load(open(path))
        res = {}
        for tagger in ("teacher", "yamnet"):
            rho = rho_of(ctl, tagger, names)
            ok = ~np.isnan(rho)
            for k in a.k:
                order = np.argsort(share[k][ok])
                q = max(1, ok.sum() // 4)
                res[f"{tagger}_top{k}"] = {"spearman": float(stats.spearmanr(share[k][ok], rho[ok])[0]),
                                          "rho_low_quarter": float(rho[ok][order[:q]].mean()),
                                          "rho_high_quarter": float(rho[ok][order[-q:]].mean())}
        out["controls"][path] = res
        print(f"{path}: " + "; ".join(f"{key} Spearman {v['spearman']:+.2f} (rho {v['rho_low_quarter']:.2f} in the "
                                      f"least-explained quarter, {v['rho_high_quarter']:.2f} in the most)"
                                      for key, v in res.items() if not key.startswith("real") and (key.endswith(f"top{a.k[0]}") or key.endswith("top10"))))
        if "real" in ctl:  # the ceiling: is an attribute in minor directions harder to hear at all?
            for tagger in ("teacher", "yamnet"):
                real, rho = rho_of({"rho": ctl["real"]}, tagger, names), rho_of(ctl, tagger, names)
                ok = ~np.isnan(real) & ~np.isnan(rho)
                k = a.k[0]
                res[f"real_{tagger}_top{k}"] = {"spearman": float(stats.spearmanr(share[k][ok], real[ok])[0]),
                                                "spearman_ratio": float(stats.spearmanr(share[k][ok], rho[ok] - real[ok])[0])}
                print(f"{path}: real notes, {tagger}: Spearman(R2 top {k}, real rho) {res[f'real_{tagger}_top{k}']['spearman']:+.2f}, "
                      f"(R2, generated - real rho) {res[f'real_{tagger}_top{k}']['spearman_ratio']:+.2f}")
    if a.json:
        from darkgan.utils.io import write_json
        write_json(a.json, out)


if __name__ == "__main__":
    main()
