"""The canary's HTML report page: one offline file with the checks (value, CI, threshold, verdict) and the plots."""

import base64
import html
import re

import numpy as np

from tasks.canary.gate import canary_metrics, canary_result
from tasks.canary.evidence import canary_plots
from tasks.canary.stats import bootstrap_deltas, slice_metrics
from tasks.evidence import sha256_file
from tasks.policy import CanaryPolicy


def _classifier_result():
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n)
    champ = 1 / (1 + np.exp(-(1.4 * (y - 0.5) * 2 + rng.normal(0, 1, n))))
    cand = 1 / (1 + np.exp(-(0.6 * (y - 0.5) * 2 + rng.normal(0, 1, n))))  # clearly worse: some checks fail
    region = np.where(rng.random(n) < 0.7, "north", "south")
    policy = CanaryPolicy(margins={"auc": 0.01, "brier": 0.01}, bootstrap_resamples=50)
    deltas = bootstrap_deltas(y, cand, champ, metrics=["auc", "brier"], resamples=50, seed=0)
    slices = slice_metrics(y, cand, champ, {"region": region}, min_size=100, resamples=50)
    result = canary_result(canary_metrics(y, cand, 0.5), canary_metrics(y, champ, 0.5), policy, candidate_version=2,
                           champion_version=1, deltas=list(deltas.values()), slices=slices)
    return y, cand, champ, result


def test_report_page_holds_every_check_with_its_ci_and_every_plot_embedded(tmp_path):
    y, cand, champ, result = _classifier_result()
    evidence = canary_plots(y, cand, champ, result, None, tmp_path)
    assert set(evidence) == {"roc", "calibration", "slices", "report"}
    report = evidence["report"]
    assert report.path.endswith("canary_report.html") and report.sha256 == sha256_file(report.path)
    page = open(report.path, encoding="utf-8").read()

    rows = re.findall(r"<tr class=\"(pass|fail)\">(.*?)</tr>", page, flags=re.S)
    assert len(rows) == len(result.checks)
    for check, (verdict, row) in zip(result.checks, rows):
        cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        assert cells[0] == check.name and cells[-1] == ("PASS" if check.passed else "FAIL")
        assert verdict == ("pass" if check.passed else "fail")
    auc = next(d for d in result.deltas if d["metric"] == "auc")
    assert f"[{auc['ci_low']:+.5g}, {auc['ci_high']:+.5g}]" in page  # the CI column of the auc_delta row
    assert not result.passed and page.count('<tr class="fail">') == len(result.failed_checks())

    for role in ("roc", "calibration", "slices"):  # the very PNG bytes that are evidence, inline
        png = base64.b64encode(open(evidence[role].path, "rb").read()).decode()
        assert f'id="plot-{role}"' in page and f"data:image/png;base64,{png}" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from elsewhere: works offline


def test_without_plots_the_report_page_says_so_and_no_png_is_drawn(tmp_path):
    """canary.plots: on_failures on a passed canary: the same report page, its checks and CIs, and a note instead
    of the plots."""
    y, cand, champ, result = _classifier_result()
    evidence = canary_plots(y, cand, champ, result, None, tmp_path, draw=False)
    assert set(evidence) == {"report"} and [p.name for p in tmp_path.iterdir()] == ["canary_report.html"]
    page = open(evidence["report"].path, encoding="utf-8").read()
    assert len(re.findall(r"<tr class=\"(pass|fail)\">", page)) == len(result.checks)
    assert "<img" not in page and "canary.plots: on_failures" in page
