"""Validation at scale: chunked GE (lockgate) vs plain GE on the whole frame, same data, same run.

Data: the credit contract's 14 columns plus 6 extra numeric columns (20 columns), 1M-row
hive partitions with distinct ids, about 0.5% of rows breaking a row-level expectation
(range, allowed set, pattern, nulls) and 10 ids duplicated across partitions. Each side
runs in its own child process (wall time, and peak memory: the summed PSS of that process and its
worker processes, see _PeakMemory), reading parquet and
validating; the notes say whether the verdicts, the per-expectation counts and the
quarantined rows (positions and failed expectations) are identical.

- ``validation_1m`` and ``validation_10m``: lockgate ``validate_location`` vs
  ``read_table`` + ``validate_frame`` (plain GE on pandas, GE's md5 hashing off as in lockgate).
- ``validation_100m``: lockgate only (plain GE would need ~40 GB here), time and memory.
- ``validation_batch_2k`` / ``_50k``: one in-memory batch (a daily partition), lockgate
  ``validate_frame`` (each expectation's configuration and each configuration's expectation
  built once per validation, GE's JSON converter with a fast path for plain values) vs the
  same GE calls as GE makes them: outside ``configurations_built_once`` (through lockgate's
  one-line wrappers) and with GE's own converter; interleaved in this process.
- ``validation_json_150`` / ``_2000``: ``validate_frame`` with the fast path of GE's JSON converter for plain values
  (data_contracts/ge_json.py) vs GE's own converter put back; interleaved in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.harness import Comparison

ROOT = Path(os.environ.get("LOCKGATE_BENCH_DATA", "/tmp/lockgate-bench")) / "validation"
PART_ROWS = 1_000_000
TARGET_10M_S, TARGET_MEMORY_MB = 30.0, 2048


def write_partitions(rows: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_contracts.synthetic_credit import generate_frame

    root = ROOT / f"rows_{rows}"
    for i in range(rows // PART_ROWS):
        path = root / f"day={i:04d}" / "part-0.parquet"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        df = generate_frame(PART_ROWS, seed=100 + i, day=date(2026, 1, 1) + timedelta(days=i), id_offset=i * PART_ROWS)
        rng = np.random.default_rng(i)
        bad = rng.choice(PART_ROWS, PART_ROWS // 200, replace=False)
        q = len(bad) // 4
        df.loc[bad[:q], "age"] = 150
        df.loc[bad[q:2 * q], "region"] = "atlantis"
        df.loc[bad[2 * q:3 * q], "application_id"] = "broken-id"
        df.loc[bad[3 * q:], "loan_amount"] = np.nan
        if i == 1:  # 10 ids of partition 0 again: uniqueness fails across partitions
            df.loc[:9, "application_id"] = [f"APP-{k:010d}" for k in range(10)]
        for k in range(6):
            df[f"extra_{k}"] = rng.normal(size=PART_ROWS)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=256_000)
    return root


def _pss_mb(pid: int | str) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process ended between listing and reading
        pass
    return 0.0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


class _PeakMemory:
    """Peak memory of this process and its worker processes together: the sum of their PSS (shared pages counted
    once, split between the processes sharing them), sampled every 0.5 s (reading PSS walks page tables: sampling
    every 50 ms cost as much CPU as a worker), and at least this process's own VmHWM."""

    def __init__(self):
        import threading

        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.wait(0.5):
            self.peak_mb = max(self.peak_mb, _pss_mb(me) + sum(_pss_mb(k) for k in _descendants(me)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # a sample can miss a short spike; the process's own peak cannot
                self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)


class _Digest:
    """sha256 over (row position, failed expectations) in position order, fed as rows arrive."""

    def __init__(self):
        self.h, self.n = hashlib.sha256(), 0

    def add(self, first_row: int, row_failures: dict[int, list[str]]) -> None:
        for position in sorted(row_failures):
            self.h.update(f"{first_row + position}:{';'.join(row_failures[position])}\n".encode())
            self.n += 1


def _child(kind: str, rows: int) -> dict:
    from data_contracts.contract import load_contract
    from data_contracts.ge_suite import ge_runtime

    ge_runtime()  # GE's import and context (~9 s) out of both timings
    contract = load_contract("credit_default")
    root = ROOT / f"rows_{rows}"
    digest = _Digest()
    t0 = time.perf_counter()
    with _PeakMemory() as memory:
        outcome = _validate(kind, root, contract, digest)
    wall = time.perf_counter() - t0
    counts = {e.name: [e.success, e.unexpected_count] for e in outcome.expectations}
    return {"wall_s": wall, "memory_mb": memory.peak_mb, "passed": outcome.passed, "n_rows": outcome.n_rows,
            "quarantined": outcome.n_failed_rows, "rows_digest": digest.h.hexdigest()[:16],
            "counts": counts, "dataset_failures": sorted(outcome.dataset_failures)}


def _validate(kind: str, root: Path, contract, digest: _Digest):
    if kind == "plain":
        from data_contracts.validate import validate_frame
        from tasks.datasets import read_table

        outcome = validate_frame(read_table(root), contract, include_label=True)
        digest.add(0, outcome.row_failures)
        return outcome
    import tempfile

    from data_contracts.validate_chunked import validate_chunked

    with tempfile.TemporaryDirectory() as tmp:  # flat-memory mode, as `lockgate validate` runs it
        return validate_chunked(root, contract, include_label=True, keep_row_failures=False,
                                ge_results_path=Path(tmp) / "ge.jsonl",
                                on_chunk=lambda chunk: digest.add(chunk.first_row, chunk.outcome.row_failures))


def _run_child(kind: str, rows: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_validation", "--child", kind, str(rows)],
                         check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_at(rows: int) -> Comparison:
    write_partitions(rows)
    ours, plain = _run_child("chunked", rows), _run_child("plain", rows)
    same = all(ours[k] == plain[k] for k in ("passed", "n_rows", "quarantined", "rows_digest", "counts",
                                             "dataset_failures"))
    target = f"; target <= {TARGET_10M_S:.0f} s, <= {TARGET_MEMORY_MB} MB" if rows == 10_000_000 else ""
    notes = (f"{rows:,} rows x 20 columns; identical verdict, counts and quarantined rows: {same} "
             f"({ours['quarantined']:,} quarantined); peak memory (PSS, workers included) lockgate "
             f"{ours['memory_mb']:.0f} MB vs plain "
             f"{plain['memory_mb']:.0f} MB; {rows / ours['wall_s']:,.0f} rows/s{target}")
    return Comparison(f"validation_{rows // 1_000_000}m", "lockgate validate_chunked", "plain GE on the whole frame",
                      ours["wall_s"], plain["wall_s"], plain["wall_s"] / ours["wall_s"], 1, ours["memory_mb"], notes)


def only_lockgate(rows: int) -> Comparison:
    write_partitions(rows)
    ours = _run_child("chunked", rows)
    notes = (f"{rows:,} rows x 20 columns in {rows // PART_ROWS} partitions; {ours['quarantined']:,} quarantined; "
             f"peak memory {ours['memory_mb']:.0f} MB; {rows / ours['wall_s']:,.0f} rows/s; plain GE not run "
             "(the whole frame would not fit in memory)")
    return Comparison(f"validation_{rows // 1_000_000}m", "lockgate validate_chunked", "-", ours["wall_s"],
                      float("nan"), float("nan"), 1, ours["memory_mb"], notes)


def small_batch(rows: int) -> Comparison:
    """Per-batch validation latency, where GE's fixed cost per expectation outweighs the data."""
    from datetime import date

    from benchmarks.harness import compare
    from data_contracts.contract import load_contract
    from data_contracts.ge_suite import build_suite, ge_runtime
    from data_contracts.synthetic_credit import generate_frame
    from data_contracts.validate import RESULT_FORMAT, _release_batches, summarise_result, validate_frame

    contract, runtime = load_contract("credit_default"), ge_runtime()
    suite = build_suite(contract, include_label=False)
    df = generate_frame(rows, seed=7, day=date(2026, 1, 1)).drop(columns=[contract.label_column])
    df.loc[df.index[::97], "age"] = 150  # some rows to quarantine

    swapped = ges_own_converter()

    def ge_as_is():
        frame = df.copy(deep=False)
        with runtime.lock, swapped():
            try:
                result = runtime.batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
                    suite, result_format=RESULT_FORMAT)
            finally:
                _release_batches(runtime)
        return summarise_result(result, {"contract_name": contract.name, "contract_version": contract.version,
                                         "contract_fingerprint": contract.fingerprint, "include_label": False,
                                         "n_rows": len(df)}, columns=set(frame.columns), seconds=0.0)

    ours, plain = validate_frame(df, contract, include_label=False), ge_as_is()
    same = (ours.row_failures == plain.row_failures and ours.dataset_failures == plain.dataset_failures
            and [(e.name, e.success, e.unexpected_count) for e in ours.expectations]
            == [(e.name, e.success, e.unexpected_count) for e in plain.expectations])
    return compare(f"validation_batch_{rows // 1000}k", ("lockgate validate_frame", lambda: validate_frame(
        df, contract, include_label=False)), ("GE as is", ge_as_is), repeats=15,
        notes=f"{rows:,} rows x 13 columns, {len(suite.expectations)} expectations, "
              f"{ours.n_failed_rows} rows quarantined; identical outcome: {same}")


def ges_own_converter():
    """A context in which GE's modules use GE's own JSON converter again (data_contracts/ge_json.py undone)."""
    import contextlib

    from great_expectations import util

    from data_contracts.ge_json import ge_modules_naming

    fast = util.convert_to_json_serializable
    modules = ge_modules_naming(fast)

    @contextlib.contextmanager
    def swapped():
        for module in modules:
            module.convert_to_json_serializable = fast.__wrapped__
        try:
            yield
        finally:
            for module in modules:
                module.convert_to_json_serializable = fast

    return swapped


def json_converter(rows: int) -> Comparison:
    """validate_frame with the converter's fast path for plain values against GE's own converter, interleaved."""
    from datetime import date

    from benchmarks.harness import compare
    from data_contracts.contract import load_contract
    from data_contracts.ge_suite import ge_runtime
    from data_contracts.synthetic_credit import generate_frame
    from data_contracts.validate import validate_frame

    contract = load_contract("credit_default")
    ge_runtime()
    swapped = ges_own_converter()
    df = generate_frame(rows, seed=7, day=date(2026, 1, 1))
    df.loc[df.index[::97], "age"] = 150

    def with_ges_converter():
        with swapped():
            return validate_frame(df, contract, include_label=True)

    ours, plain = validate_frame(df, contract, include_label=True), with_ges_converter()
    same = ours.model_dump(exclude={"seconds", "ge_result"}) == plain.model_dump(exclude={"seconds", "ge_result"})
    return compare(f"validation_json_{rows}", ("fast path for plain values", lambda: validate_frame(
        df, contract, include_label=True)), ("GE's convert_to_json_serializable", with_ges_converter), repeats=15,
        notes=f"{rows:,} labelled rows, wall time of validate_frame; identical outcome: {same}")


def run() -> list[Comparison]:
    return [json_converter(150), json_converter(2_000), small_batch(2_000), small_batch(50_000),
            compare_at(1_000_000), compare_at(10_000_000), only_lockgate(100_000_000)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]))))
