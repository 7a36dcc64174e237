"""AOT compile reports on real compile-only TPU topologies (libtpu) and the CPU, in child processes."""

from __future__ import annotations

import pytest

from tasks.compilation.report import (MIB, CompileRow, compile_report, finish_early_report, start_compile_report,
                                      target_verdict)
from tasks.compilation.gate import target_checks
from tasks.policy import CompilationPolicy

SMALL = {"num_features": 12, "hidden_sizes": [32, 16]}
# five 32768-wide layers: 16 GiB of f32 weights replicated on every device, more than a v5e chip's 15.75 GiB HBM
HUGE = {"num_features": 12, "hidden_sizes": [32768] * 5}


def test_small_mlp_fits_cpu_and_tpu_and_is_cached(tmp_path, monkeypatch):
    import sys

    # modules a later gate needs are imported while the children compile (a broken one is left to its real user)
    modules = tmp_path / "modules"
    modules.mkdir()
    for name, body in (("meanwhile_a", "X = 1"), ("meanwhile_broken", "raise RuntimeError('broken')"),
                       ("meanwhile_b", "X = 2")):
        (modules / f"{name}.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(modules))
    # one worker: both targets compile in one child (one JAX start-up), each with its own devices and rows
    kwargs = dict(targets=["cpu", "v5e-4"], buckets=[1, 64, 1024], variants=["f32"], cache_dir=tmp_path / "cache",
                  timeout=120, headroom=0.9, workers=1)
    report = compile_report("mlp", SMALL, **kwargs, import_meanwhile=("meanwhile_a", "meanwhile_broken"))
    assert "meanwhile_a" in sys.modules and "meanwhile_broken" not in sys.modules
    assert [v.verdict for v in report.verdicts] == ["fits", "fits"]
    tpu = [r for r in report.rows if r.target == "v5e-4"]
    assert [r.devices for r in tpu] == [4, 4, 4] and [r.global_batch for r in tpu] == [4, 64, 1024]
    assert all(r.flops > 0 and r.estimated_seconds > 0 and r.memory_bytes > 0 for r in tpu)
    assert tpu[0].capacity_bytes == int(16 * 1024**3 * 0.9)
    assert tpu[2].flops > tpu[1].flops  # per-device work grows with the bucket
    assert not any(r.cached for r in report.rows)
    assert [r.devices for r in report.rows if r.target == "cpu"] == [1, 1, 1] and "cache" not in report.verdicts[0].reason
    again = compile_report("mlp", SMALL, **kwargs, import_meanwhile=("meanwhile_b",))
    assert all(r.cached for r in again.rows) and "(all from the cache)" in again.verdicts[1].reason
    assert "meanwhile_b" not in sys.modules  # no child to wait for: nothing imported early
    sys.modules.pop("meanwhile_a")
    assert [r.memory_bytes for r in again.rows] == [r.memory_bytes for r in report.rows]


def test_a_report_started_early_is_taken_by_the_call_with_the_same_arguments(tmp_path):
    kwargs = dict(targets=["cpu"], buckets=[8], variants=["f32"], cache_dir=tmp_path, timeout=120, headroom=0.9)
    early = start_compile_report({"model": "mlp", "config": SMALL}, **kwargs)
    assert start_compile_report({"model": "mlp", "config": SMALL}, **kwargs) is early  # started once
    report = compile_report("mlp", SMALL, **kwargs, workers=2)  # the children's count changes no row
    assert report is early.result() and not any(r.cached for r in report.rows)
    # other arguments: a report of their own (its rows from the cache the early one filled), not the early one
    other = compile_report("mlp", SMALL, **{**kwargs, "headroom": 0.5})
    assert other is not report and all(r.cached for r in other.rows)
    # a report no call took (its lifecycle stopped before compiling) is waited for, its rows cached
    unused = start_compile_report({"model": "mlp", "config": SMALL}, **{**kwargs, "buckets": [16]})
    finish_early_report(unused)
    assert unused.done() and all(r.cached for r in compile_report("mlp", SMALL, **{**kwargs, "buckets": [16]}).rows)


def test_model_too_big_for_hbm_does_not_fit_and_fails_a_required_target(tmp_path):
    report = compile_report("mlp", HUGE, targets=["v5e-4", "tpu7x-8"], buckets=[8], variants=["f32"],
                            cache_dir=tmp_path, timeout=300, headroom=0.9)
    v5e, tpu7x = report.verdicts
    assert v5e.verdict == "does not fit" and "HBM" in v5e.reason
    assert tpu7x.verdict == "fits"  # 192 GiB per chip
    policy = CompilationPolicy(targets=("cpu", "v5e-4", "tpu7x-8"), required_targets=("v5e-4",))
    checks = {c.name: c for c in target_checks(report, policy)}
    assert not checks["target:v5e-4:peak_mib"].passed
    assert checks["target:tpu7x-8:peak_mib:optional"].passed


def test_hang_and_crash_become_compile_errors_not_cached(tmp_path):
    hung = compile_report("mlp", SMALL, targets=["v5e-4"], buckets=[8], variants=["f32"], cache_dir=tmp_path,
                          timeout=0.2, headroom=0.9)
    assert hung.verdicts[0].verdict == "compile error" and "timed out after 0.2 s" in hung.verdicts[0].reason
    bad = compile_report("mlp", {"num_features": 12, "hidden_sizes": [8], "nonsense": 1}, targets=["cpu"],
                         buckets=[8], variants=["f32"], cache_dir=tmp_path, timeout=60, headroom=0.9)
    assert bad.verdicts[0].verdict == "compile error" and "nonsense" in bad.verdicts[0].reason
    assert list(tmp_path.glob("*.json")) == []


def _row(**kw):
    base = dict(target="v5e-4", bucket=64, variant="f32", status="ok", memory_bytes=10 * MIB, capacity_bytes=100 * MIB)
    return CompileRow(**{**base, **kw})


@pytest.mark.parametrize(
    "rows,verdict,fragment",
    [
        ([_row(), _row(bucket=1024)], "fits", "2 compiles, peak 10.00 MiB"),
        ([_row(), _row(bucket=1024, memory_bytes=150 * MIB)], "does not fit", "bucket 1024 f32: peak 150.0 MiB > capacity 100.0"),
        ([_row(status="out_of_memory", message="RESOURCE_EXHAUSTED: exceeds available HBM")], "does not fit", "HBM"),
        ([_row(), _row(status="error", message="child crashed with SIGSEGV")], "compile error", "SIGSEGV"),
    ],
)
def test_target_verdict(rows, verdict, fragment):
    result = target_verdict("v5e-4", rows)
    assert result.verdict == verdict and fragment in result.reason



def test_the_cache_key_names_the_compiler_versions_looked_up_once_per_process(monkeypatch):
    from importlib import metadata

    from tasks.compilation import report as module

    model = {"model": "mlp", "config": SMALL}
    lookups = []
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda pkg: lookups.append(pkg) or real(pkg))
    module._installed_versions.cache_clear()
    try:
        key = module.cache_key(model, "cpu", 64, "f32")
        assert [module.cache_key(model, "v5e-4", b, "f32") for b in (1, 64)] and len(lookups) == 5  # once
        assert module._versions()["jax"] == real("jax")
        module._installed_versions.cache_clear()  # as in a process started after an upgrade of jaxlib
        monkeypatch.setattr(metadata, "version", lambda pkg: "9.9.9" if pkg == "jaxlib" else real(pkg))
        assert module.cache_key(model, "cpu", 64, "f32") != key
    finally:
        module._installed_versions.cache_clear()
