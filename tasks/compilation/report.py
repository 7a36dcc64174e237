"""The compile report: every target x bucket x variant compiled ahead of time in a child process, cached.

Each target compiles in its own ``python -m models.aot`` child with an unlimited stack
(a tpu7x compile overflowed libtpu's stack at the default 8 MiB) and a timeout, so a
libtpu crash or hang becomes a "compile error" verdict with a message instead of
killing the flow. Results are cached under LOCKGATE_HOME by a key over everything that
determines them (model reference, config, stored code's sha256, params shapes, target, bucket,
variant, jax and libtpu versions), so an unchanged version is not recompiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from models.aot import estimated_seconds
from models.targets import get_target

MIB = 1024**2
Verdict = Literal["fits", "does not fit", "compile error"]


class CompileRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    bucket: int
    variant: str
    global_batch: int | None = None
    devices: int | None = None
    device_kind: str | None = None
    status: Literal["ok", "out_of_memory", "error"]
    message: str = ""
    compile_seconds: float | None = None
    memory_bytes: int | None = None  # per device: max(peak, arguments + temporaries)
    capacity_bytes: int | None = None  # per device usable memory (HBM x headroom for TPU)
    flops: float | None = None
    bytes_accessed: float | None = None
    estimated_seconds: float | None = None
    cached: bool = False

    @property
    def fits(self) -> bool:
        return self.status == "ok" and (self.capacity_bytes is None or (self.memory_bytes or 0) <= self.capacity_bytes)


class TargetVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    description: str
    verdict: Verdict
    reason: str


class CompileReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[CompileRow]
    verdicts: list[TargetVerdict]
    wall_seconds: float

    def markdown(self) -> str:
        lines = ["| target | bucket | variant | compile s | peak MiB / capacity MiB | GFLOP | est. latency | verdict |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            mem = f"{(r.memory_bytes or 0) / MIB:.2f}" if r.memory_bytes is not None else "-"
            cap = f"{r.capacity_bytes / MIB:,.0f}" if r.capacity_bytes else "host"
            est = f"{r.estimated_seconds * 1e6:.1f} µs" if r.estimated_seconds is not None else "-"
            verdict = "fits" if r.fits else ("does not fit" if r.status != "error" else "compile error")
            gflop = f"{r.flops / 1e9:.4f}" if r.flops is not None else "-"
            cs = f"{r.compile_seconds:.2f}" + (" (cached)" if r.cached else "") if r.compile_seconds is not None else "-"
            lines.append(f"| {r.target} | {r.bucket} | {r.variant} | {cs} | {mem} / {cap} | {gflop} | {est} | {verdict} |")
        lines += ["", *[f"- **{v.target}** ({v.description}): {v.verdict} — {v.reason}" for v in self.verdicts]]
        return "\n".join(lines)


@lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """The compiler stack's versions, looked up once per process: each lookup scans the installed distributions
    (~1.3 ms for the five) and a report keys every target x bucket x variant. An upgrade made while a process runs is
    keyed from that process's next start on (each command and each deployment's flow run is a process of its own)."""
    out = []
    for pkg in ("jax", "jaxlib", "libtpu", "flax", "qwix"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "absent"))
    return tuple(out)


def _versions() -> dict[str, str]:
    return dict(_installed_versions())


# What determines a compile: the model request without where its code copy sits (code_dir).
_KEYED = ("model", "config", "num_features", "code_sha256", "params")


def cache_key(model: dict, target: str, bucket: int, variant: str) -> str:
    t = get_target(target)
    payload = {"model": {k: model.get(k) for k in _KEYED}, "target": repr(t), "bucket": bucket, "variant": variant,
               "versions": _versions(), "schema": 2}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# The stack limit is raised by a shell in front of the child rather than with preexec_fn: running Python
# between fork and exec in a process with JAX's threads can deadlock (JAX warns about exactly that).
_CHILD = 'ulimit -s unlimited 2>/dev/null || ulimit -s "$(ulimit -H -s)"; exec "$0" -m models.aot'


def run_child(request: dict, timeout: float) -> dict:
    """Compile one target in a child process; a crash, hang or bad output becomes error rows."""
    # Compile-only TPU devices need no TPU; ALLOW_MULTIPLE_LIBTPU_LOAD lets children compile in parallel
    # (libtpu otherwise takes a machine-wide lockfile and the second child aborts).
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    try:
        proc = subprocess.run(["/bin/sh", "-c", _CHILD, sys.executable], input=json.dumps(request),
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"compile timed out after {timeout:g} s (the child process was killed)"}
    if proc.returncode != 0:
        how = (f"crashed with {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exited with code {proc.returncode}")
        tail = " ".join(" ".join(proc.stderr.strip().splitlines()[-3:]).split())[:400]
        return {"error": f"compile child {how}: {tail}"}
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": f"compile child wrote no result: {proc.stdout[:200]!r}"}


def _row(target: str, bucket: int, variant: str, raw: dict, headroom: float) -> CompileRow:
    t = get_target(target)
    capacity = None
    if t.platform == "tpu" and raw.get("devices"):
        per_chip_devices = max(1, raw["devices"] // t.chips)
        capacity = int(t.chip.hbm_bytes / per_chip_devices * headroom)
    memory = None
    if raw.get("status") == "ok":
        memory = max(raw.get("peak_bytes") or 0, (raw.get("argument_bytes") or 0) + (raw.get("temp_bytes") or 0))
    return CompileRow(
        target=target, bucket=bucket, variant=variant, global_batch=raw.get("global_batch"), devices=raw.get("devices"),
        device_kind=raw.get("device_kind"), status=raw.get("status", "error"), message=raw.get("message", ""),
        compile_seconds=raw.get("compile_seconds"), memory_bytes=memory, capacity_bytes=capacity,
        flops=raw.get("flops"), bytes_accessed=raw.get("bytes_accessed"),
        estimated_seconds=estimated_seconds(raw, t) if raw.get("status") == "ok" else None, cached=raw.get("cached", False),
    )


def target_verdict(target: str, rows: list[CompileRow]) -> TargetVerdict:
    """fits / does not fit (naming the largest bucket over capacity) / compile error (with the message)."""
    t = get_target(target)
    errors = [r for r in rows if r.status == "error"]
    too_big = [r for r in rows if r.status == "out_of_memory" or (r.status == "ok" and not r.fits)]
    if errors:
        r = errors[0]
        return TargetVerdict(target=target, description=t.describe(), verdict="compile error",
                             reason=f"bucket {r.bucket} {r.variant}: {r.message}")
    if too_big:
        r = max(too_big, key=lambda r: r.memory_bytes or 0)
        if r.status == "out_of_memory":
            detail = r.message[:300]
        else:
            detail = f"peak {r.memory_bytes / MIB:,.1f} MiB > capacity {r.capacity_bytes / MIB:,.1f} MiB per device"
        return TargetVerdict(target=target, description=t.describe(), verdict="does not fit",
                             reason=f"bucket {r.bucket} {r.variant}: {detail}")
    peak = max((r.memory_bytes or 0 for r in rows), default=0)
    cap = next((r.capacity_bytes for r in rows if r.capacity_bytes), None)
    room = f" of {cap / MIB:,.0f} MiB" if cap else ""
    return TargetVerdict(target=target, description=t.describe(), verdict="fits",
                         reason=f"{len(rows)} compiles{_from_cache(rows)}, peak {peak / MIB:,.2f} MiB per device{room}")


def _from_cache(rows: list[CompileRow]) -> str:
    cached = sum(r.cached for r in rows)
    return "" if not cached else " (all from the cache)" if cached == len(rows) else f" ({cached} from the cache)"


def compile_workers(setting: int | None, targets: int) -> int:
    """Child processes compiling at once: ``setting`` (policy ``compilation.compile_workers``) or this host's cores,
    never more than the targets left to compile."""
    return max(1, min(setting or os.cpu_count() or 1, targets))


def import_quietly(modules: tuple[str, ...]) -> None:
    """Import ``modules`` (for :func:`compile_report`'s ``import_meanwhile``); a module that fails to import is left
    for its real user to report."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the gate importing it later raises it where it belongs
            return


_EARLY: dict[str, Future] = {}  # compile reports started ahead of their gate (start_compile_report)
_EARLY_LOCK = threading.Lock()


def _report_key(model: dict, arguments: dict) -> str:
    """What a report's rows depend on: not how many children compiled them."""
    return json.dumps([model, {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()
                               if k != "workers"}], sort_keys=True, default=str)


def early_workers(setting: int | None) -> int:
    """Compile children for a report started early: ``setting`` (policy ``compilation.compile_workers``), else
    one fewer than this host's cores (at least one): the flow's own gates run meanwhile and need a core."""
    return setting or max(1, (os.cpu_count() or 1) - 1)


def start_compile_report(model: dict, **arguments) -> Future:
    """Start :func:`compile_report` for ``model`` in a thread now, while this process does other work (the lifecycle
    validates its data meanwhile: the compile children get the core the validation does not use). The later
    ``compile_report`` call with the same arguments (``workers`` aside: it does not change a row) takes this one's
    result instead of compiling again. Nothing is imported in the thread (it waits on child processes), so no
    import races the caller's."""
    key = _report_key(model, arguments)
    with _EARLY_LOCK:
        if key not in _EARLY:
            thread_result: Future = Future()

            def run() -> None:
                try:
                    thread_result.set_result(_compile_report(model, **arguments))
                except BaseException as e:  # noqa: BLE001 - handed to the caller of compile_report
                    thread_result.set_exception(e)

            threading.Thread(target=run, name="lockgate-compile-report", daemon=False).start()
            _EARLY[key] = thread_result
        return _EARLY[key]


def finish_early_report(future: Future) -> None:
    """Wait for a compile report started early, and drop it if no gate took it (a lifecycle stopped before
    compiling): its children end and their rows are cached, not orphaned."""
    with _EARLY_LOCK:
        for key in [k for k, f in _EARLY.items() if f is future]:
            del _EARLY[key]
    future.exception()


def compile_report(model: str | dict, config_dict: dict | None = None, *, import_meanwhile: tuple[str, ...] = (),
                   **arguments) -> CompileReport:
    """:func:`_compile_report`, or the result of the same report started early (:func:`start_compile_report`);
    ``import_meanwhile``: modules a later step needs (the drift gate's Evidently), imported in a thread while this
    process only waits for compile children, and done before this returns (no import races the caller's); nothing
    is imported when there is nothing to wait for (every row from the cache, or the early report already done)."""
    if isinstance(model, str):
        model = {"model": model, "config": dict(config_dict or {})}
    with _EARLY_LOCK:
        early = _EARLY.pop(_report_key(model, arguments), None)
    if early is None:
        return _compile_report(model, import_meanwhile=import_meanwhile, **arguments)
    if import_meanwhile and not early.done():
        import_quietly(import_meanwhile)
    return early.result()


def _compile_report(model: dict, *, targets: list[str], buckets: list[int],
                    variants: list[str], cache_dir: Path, timeout: float, headroom: float,
                    workers: int | None = None, group_targets: bool = True,
                    import_meanwhile: tuple[str, ...] = ()) -> CompileReport:
    """Compile (or read from cache) every target x bucket x variant and decide a verdict per target.

    ``model``: ``models.aot.model_request(model, params)`` (a model given by code: reference, config, stored code,
    params shapes), or a built-in architecture's name with its ``config_dict``. Rows read from the cache say so
    (``cached``, and "(cached)" in the markdown); only the rest are compiled. ``workers``: child processes at once
    (None: :func:`compile_workers`). ``group_targets``: the targets left to compile are shared out among the
    workers, one child each (one JAX and libtpu start-up per worker instead of per target), with the timeout
    per target; a child that crashes, hangs or writes nothing is retried one target per child, so a target's
    crash is its own compile error, never its neighbours'. False: one child per target.
    ``import_meanwhile``: see :func:`compile_report`."""
    import time

    start = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    raw_rows: dict[str, dict] = {t: {} for t in targets}
    missing: dict[str, list[tuple[int, str]]] = {t: [] for t in targets}
    for target in targets:
        for variant in variants:
            for bucket in buckets:
                path = cache_dir / f"{cache_key(model, target, bucket, variant)}.json"
                if path.exists():
                    raw_rows[target][(bucket, variant)] = {**json.loads(path.read_text()), "cached": True}
                else:
                    missing[target].append((bucket, variant))

    def request(target: str) -> dict:
        return {"model": model, "target": target, "buckets": sorted({b for b, _ in missing[target]}),
                "variants": sorted({v for _, v in missing[target]})}

    def compile_group(group: list[str]) -> dict[str, dict]:
        if len(group) == 1:
            return {group[0]: run_child(request(group[0]), timeout)}
        result = run_child({"model": model, "requests": [request(t) for t in group]}, timeout * len(group))
        if "error" in result:  # one target's crash or hang must not become its neighbours' verdict
            return {t: run_child(request(t), timeout) for t in group}
        return dict(zip(group, result["results"]))

    pending = [t for t in targets if missing[t]]
    if pending:
        n = compile_workers(workers, len(pending))
        groups = [pending[i::n] for i in range(n)] if group_targets else [[t] for t in pending]
        with ThreadPoolExecutor(max_workers=n + bool(import_meanwhile)) as pool:
            importing = pool.submit(import_quietly, import_meanwhile) if import_meanwhile else None
            results = {t: r for done in pool.map(compile_group, groups) for t, r in done.items()}
            if importing is not None:
                importing.result()
        for target in pending:
            result = results[target]
            if "error" in result:
                for key in missing[target]:
                    raw_rows[target][key] = {"status": "error", "message": result["error"]}
                continue
            for raw in result["rows"]:
                key = (raw["bucket"], raw["variant"])
                if key in missing[target]:
                    raw_rows[target][key] = raw
                    if raw["status"] != "error":  # compiler verdicts are deterministic; crashes may not be
                        path = cache_dir / f"{cache_key(model, target, *key)}.json"
                        tmp = path.with_suffix(f".{os.getpid()}.tmp")
                        tmp.write_text(json.dumps(raw))
                        tmp.replace(path)
    per_target = [[_row(t, b, v, raw_rows[t][(b, v)], headroom) for v in variants for b in buckets] for t in targets]
    rows = [r for rs in per_target for r in rs]
    verdicts = [target_verdict(t, rs) for t, rs in zip(targets, per_target)]
    return CompileReport(rows=rows, verdicts=verdicts, wall_seconds=time.perf_counter() - start)
