"""Drift at scale: lockgate's drift gate vs full-data Evidently, same data, same run.

- ``drift_1m_<scenario>``: 21 columns x 1M rows (reference: the demo generator's
  reference population; current: each scenario). Candidate: ``drift_evidence`` end to
  end (summaries from parquet, Evidently's stattests, Evidently's HTML report on a
  pinned-method 20k-row sample). Baseline: Evidently's DataDriftPreset on all rows
  with the same methods pinned (the parquet read into pandas first, not timed). Notes
  give equal decisions and the largest |score difference|.
- ``evidently_report_<rows>``: the drift report of a daily batch (the 21 columns, ``rows`` per side, covariate
  drift): ``drift_evidence`` as lockgate runs it against the same call with Evidently drawing as it ships, i.e. with
  ValueDrift's per-column widgets, which the report does not show (tasks/drift/value_drift_widgets.py). CPU
  seconds, interleaved in one process; notes give whether the HTML and the scores are equal.
- ``drift_10m`` and ``drift_100m``: 10M and 100M rows per side (1M-row partitions;
  for 100M, 10 distinct partitions hard-linked 10 times each), wall time and peak RSS
  of a child process (VmHWM), rows/s. Full-data Evidently is not run there: its preset did not
  finish 5M rows in 10 minutes on this machine (issue 6 measurement).

Data is written once under ``LOCKGATE_BENCH_DATA`` (default /tmp/lockgate-bench/drift).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.drift_data import CATEGORICAL, NUMERIC, SCENARIOS, write_partitions
from benchmarks.harness import Comparison

ROOT = Path(os.environ.get("LOCKGATE_BENCH_DATA", "/tmp/lockgate-bench/drift"))
TARGET_10M_S, TARGET_RSS_MB = 30.0, 2048


def _specs():
    from tasks.drift.results import DriftSpec

    return ([DriftSpec(name=c, kind="numeric", role="prediction" if c == "prediction" else "feature") for c in NUMERIC]
            + [DriftSpec(name=c, kind="categorical") for c in CATEGORICAL])


def _slug(scenario: str) -> str:
    return scenario.replace(" ", "_")


def _evidently_full(reference, current, methods: dict[str, str]) -> dict[str, tuple[float, bool]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    preset = DataDriftPreset(columns=NUMERIC + CATEGORICAL, per_column_method=methods)
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    d = snapshot.dict()
    verdicts = {t["metric_config"]["metric_id"]: str(getattr(t["status"], "value", t["status"]))
                for t in d["tests"] if t["id"] == "drift"}
    return {m["config"]["column"]: (float(m["value"]), verdicts[m["id"]] == "FAIL")
            for m in d["metrics"] if m["config"]["type"] == "evidently:metric_v2:ValueDrift"}


def one_million() -> list[Comparison]:
    import pandas as pd

    from tasks.drift.gate import drift_evidence

    reference = write_partitions(ROOT / "ref_1m", 1_000_000, scenario="no drift", seed=1)
    ref_df = pd.read_parquet(reference, columns=NUMERIC + CATEGORICAL)
    import evidently.presets  # noqa: F401  (import cost, ~7 s, out of both timings)
    results = []
    for scenario in SCENARIOS:
        current = write_partitions(ROOT / f"{_slug(scenario)}_1m", 1_000_000, scenario=scenario, seed=500)
        t0 = time.perf_counter()
        ev = drift_evidence(reference, current, specs=_specs(), out_dir=ROOT / "out" / _slug(scenario))
        ours = time.perf_counter() - t0
        cur_df = pd.read_parquet(current, columns=NUMERIC + CATEGORICAL)
        t0 = time.perf_counter()
        full = _evidently_full(ref_df, cur_df, {c.column: c.method for c in ev.columns})
        base = time.perf_counter() - t0
        same = [c.column for c in ev.columns if c.drifted == full[c.column][1]]
        worst = max(ev.columns, key=lambda c: abs(c.score - full[c.column][0]))
        diff = abs(worst.score - full[worst.column][0])
        flagged = [c.column for c in ev.columns if c.drifted]
        notes = (f"decisions equal {len(same)}/{len(ev.columns)}; max |score diff| {diff:.2g} ({worst.column}, "
                 f"bound {worst.error_bound:.2g}); drifted {flagged or 'none'}; engine alone {ev.seconds:.2f} s")
        results.append(Comparison(f"drift_1m_{_slug(scenario)}", "lockgate drift_evidence", "Evidently preset, all rows",
                                  ours, base, base / ours, 1, _rss_mb(), notes))
    return results


def _rss_mb() -> float:
    """Peak RSS of this process image (VmHWM: unlike ru_maxrss, not inherited from the forking parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(rows: int) -> dict:
    """Run in a fresh process: drift_evidence over ``rows`` per side; wall time and peak RSS."""
    from tasks.drift.gate import drift_evidence

    reference = ROOT / f"ref_{rows}"
    current = ROOT / f"cov_{rows}"
    t0 = time.perf_counter()
    ev = drift_evidence(reference, current, specs=_specs(), out_dir=ROOT / "out" / f"scale_{rows}")
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "engine_s": ev.seconds, "rss_mb": _rss_mb(), "rows": ev.n_current + ev.n_reference,
            "drifted": [c.column for c in ev.columns if c.drifted]}


def at_scale(rows: int, distinct: int) -> Comparison:
    write_partitions(ROOT / f"ref_{rows}", rows, scenario="no drift", seed=1, distinct=distinct)
    write_partitions(ROOT / f"cov_{rows}", rows, scenario="covariate drift", seed=1000, distinct=distinct)
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_drift", "--child", str(rows)], check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    label = f"{rows // 1_000_000}m"
    target = f"; target <= {TARGET_10M_S:.0f} s and <= {TARGET_RSS_MB} MB" if rows == 10_000_000 else ""
    notes = (f"{rows:,} rows per side ({r['rows'] / r['engine_s']:,.0f} rows/s in the engine, engine "
             f"{r['engine_s']:.1f} s, wall incl. Evidently report {r['wall_s']:.1f} s), peak RSS {r['rss_mb']:.0f} MB"
             f"{target}; full-data Evidently not run (did not finish 5M in 10 min)")
    return Comparison(f"drift_{label}", "lockgate drift_evidence", "-", r["wall_s"], float("nan"), float("nan"), 1,
                      r["rss_mb"], notes)


def report_widgets(rows: int, repeats: int = 9) -> Comparison:
    """drift_evidence with and without ValueDrift's unshown per-column widgets, CPU time, interleaved."""
    import shutil
    import statistics
    import tempfile
    from contextlib import nullcontext
    from datetime import date
    from unittest import mock

    from benchmarks.drift_data import frame
    from tasks.drift import value_drift_widgets
    from tasks.drift.gate import HTML_NAME, drift_evidence

    reference = frame(rows, seed=1, day=date(2026, 11, 1), scenario="no drift")
    current = frame(rows, seed=2, day=date(2026, 11, 2), scenario="covariate drift")
    work = Path(tempfile.mkdtemp(prefix="lockgate-bench-report-"))
    outputs: dict[str, tuple[str, dict, int]] = {}  # HTML without random ids, scores, snapshot JSON bytes

    def report(name: str, shipped: bool, i: int) -> float:
        out = work / f"{name}-{i}"
        with mock.patch.object(value_drift_widgets, "skipping", lambda: False) if shipped else nullcontext():
            t0 = time.process_time()
            ev = drift_evidence(reference, current, specs=_specs(), out_dir=out)
            spent = time.process_time() - t0
        html = value_drift_widgets.RANDOM_IDS.sub("", (out / HTML_NAME).read_text())
        scores = {c.column: (c.score, c.drifted) for c in ev.columns}
        outputs[name] = (html, scores, Path(ev.evidence["json"].path).stat().st_size)
        shutil.rmtree(out)
        return spent

    report("lockgate", False, -1), report("evidently", True, -1)  # warm-up: imports, plotly's validators
    ours, theirs = [], []
    for i in range(repeats):
        theirs.append(report("evidently", True, i))
        ours.append(report("lockgate", False, i))
    a, b = statistics.median(ours), statistics.median(theirs)
    same_html = outputs["lockgate"][0] == outputs["evidently"][0]
    same_scores = outputs["lockgate"][1] == outputs["evidently"][1]
    notes = (f"CPU s; 21 columns; HTML equal (ids aside) {same_html}; scores equal {same_scores}; snapshot JSON "
             f"{outputs['lockgate'][2] / 1e6:.2f} vs {outputs['evidently'][2] / 1e6:.2f} MB")
    work.rmdir()
    return Comparison(f"evidently_report_{rows}", "lockgate's report", "Evidently drawing every widget", a, b, b / a,
                      repeats, _rss_mb(), notes)


def run() -> list[Comparison]:
    return [report_widgets(600), report_widgets(5000), *one_million(), at_scale(10_000_000, 10),
            at_scale(100_000_000, 10)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(int(sys.argv[2]))))
