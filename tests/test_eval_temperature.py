"""``benchmarks/temperature.py``, the temperature study on the final recipe (DarkGAN Sec. 5), runs
end to end on the shipped student and the real teacher: one generation, every T measured.

Stop 53 found the script broken since stop 47 (``control.setup`` had grown an ``--oracle`` option
that the study's arguments lacked); this test runs the script's own ``parse_args`` and ``study``.
"""
from __future__ import annotations

import numpy as np


def test_temperature_study_measures_one_generation_at_every_temperature(load_benchmark):
    """Pearson's rho changes with T (a nonlinear re-expression of the same conditioning), Spearman's
    cannot (every T is monotone in the logit); at the trained T = 2 the student follows words."""
    tb = load_benchmark("temperature")
    args = tb.parse_args(["--checkpoint", "student", "--n", "96", "--temperatures", "1,2,5",
                          "--no-yamnet", "--n-boot", "50", "--batch-size", "32"])
    out = tb.study(args)
    rows = {r["temperature"]: r["teacher"] for r in out["rows"]}
    assert sorted(rows) == [1.0, 2.0, 5.0] and out["trained_temperature"] == 2.0
    spearman = [rows[t]["spearman"] for t in (1.0, 2.0, 5.0)]
    assert np.ptp(spearman) < 1e-9, spearman
    assert rows[2.0]["mean_rho"] > 0.2, rows[2.0]
    assert abs(rows[1.0]["mean_rho"] - rows[2.0]["mean_rho"]) > 1e-3, rows
    assert rows[2.0]["mean_rho_low"] <= rows[2.0]["mean_rho"] <= rows[2.0]["mean_rho_high"]
    assert "| 2 |" in tb.table(out)
