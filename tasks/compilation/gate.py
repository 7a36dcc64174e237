"""Compile gate: prove the model compiles and fits on every deployment target, and produce the artifact.

Two parts, one verdict:
- the deployable artifact: ``jax.export`` lowered for every platform in the policy (cpu
  and tpu, symbolic batch), compiled and run here at every batch bucket and equal to the
  un-exported model; its sha256 is what the canary and batch inference verify;
- the compile report (tasks/compilation/report.py): an AOT compile per target x bucket x
  variant with a data-parallel mesh, memory per device against HBM, flops and a roofline
  latency estimate. A required target that does not fit fails the gate.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from models.aot import model_request
from tasks.compilation.report import MIB, CompileReport, compile_report
from tasks.evidence import Check, GateResult, evidence_file, held_to, write_json
from tasks.policy import CompilationPolicy

MAX_ABS_DIFF = 1e-5  # exported vs jit on the same platform is bitwise-equal in practice; allow float noise


def export_tolerance(outputs_max_abs: float) -> float:
    """The largest exported-vs-jit difference allowed: :data:`MAX_ABS_DIFF` for outputs up to 1 (logits,
    probabilities), relative above (a regressor's outputs in the label's units, e.g. 150, carry f32 rounding of
    ~1e-5 from a different but equivalent op order)."""
    return MAX_ABS_DIFF * max(1.0, float(outputs_max_abs))


class BucketCompile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int
    platform: str
    first_call_seconds: float
    max_abs_diff: float


class VariantArtifact(BaseModel):
    """A precision variant of the same version: its own exported artifact and (quantized/cast) params."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    artifact: str
    artifact_sha256: str
    params: str
    params_sha256: str
    param_bytes: int
    nonzero_fraction: float = 1.0  # share of the params that are not 0 (pruned variants)


def export_variants(config, params, policy: CompilationPolicy, out_dir: Path) -> tuple[list[VariantArtifact], list[str]]:
    """Export every non-f32 variant of the policy; returns the artifacts and one message per variant that failed."""
    from models.variants import export_variant, variant_info, variant_params_to_bytes
    from tasks.evidence import sha256_bytes

    artifacts, problems = [], []
    for variant in policy.variants[1:]:
        try:
            blob, vparams = export_variant(variant, config, params, platforms=policy.platforms)
        except Exception as e:  # a variant that cannot be built is reported, the f32 model still stands
            problems.append(f"variant {variant} export failed: {' '.join(str(e).split())[:300]}")
            continue
        artifact, params_path = out_dir / f"inference-{variant}.jaxexport", out_dir / f"params-{variant}.msgpack"
        artifact.write_bytes(blob)
        data = variant_params_to_bytes(vparams)
        params_path.write_bytes(data)
        info = variant_info(variant, vparams)
        artifacts.append(VariantArtifact(variant=variant, artifact=str(artifact), artifact_sha256=sha256_bytes(blob),
                                         params=str(params_path), params_sha256=sha256_bytes(data),
                                         param_bytes=info.param_bytes, nonzero_fraction=info.nonzero_fraction))
    return artifacts, problems


def variants_markdown(params, variants: list[VariantArtifact]) -> str:
    """The variants' argument memory beside f32's, and how much of each is nonzero (the pruned ones)."""
    if not variants:
        return ""
    from models.variants import variant_info

    base = variant_info("f32", params)
    lines = ["", "", "| variant | params bytes | vs f32 | nonzero |", "|---|---|---|---|",
             f"| f32 | {base.param_bytes:,} | 1.00x | {base.nonzero_fraction:.0%} |"]
    lines += [f"| {v.variant} | {v.param_bytes:,} | {v.param_bytes / base.param_bytes:.2f}x | {v.nonzero_fraction:.0%} |"
              for v in variants]
    return "\n".join(lines) + "\n"


class CompileResult(GateResult):
    artifact_sha256: str | None
    artifact_bytes: int | None
    platforms: list[str]
    export_seconds: float | None
    buckets: list[BucketCompile]
    report: CompileReport | None = None
    variants: list[VariantArtifact] = []


def target_checks(report: CompileReport, policy: CompilationPolicy) -> list[Check]:
    """One check per target: its peak memory per device against capacity; required targets must fit."""
    checks = []
    for verdict in report.verdicts:
        rows = [r for r in report.rows if r.target == verdict.target]
        peak = max((r.memory_bytes or 0 for r in rows), default=0) / MIB
        capacity = next((r.capacity_bytes / MIB for r in rows if r.capacity_bytes), None)
        required = verdict.target in policy.required_targets
        checks.append(Check(
            name=f"target:{verdict.target}:peak_mib" + ("" if required else ":optional"),
            value=round(peak, 3) if verdict.verdict != "compile error" else verdict.verdict,
            threshold=round(capacity, 1) if capacity else "host memory",
            comparison="<=", passed=verdict.verdict == "fits" or not required))
    return checks


def report_arguments(config, params, policy: CompilationPolicy, cache_dir: Path) -> tuple[dict, dict]:
    """(model request, keyword arguments) of the compile report :func:`compile_evidence` makes: the same for
    ``start_compile_report``, so the gate takes a report started early instead of compiling it again."""
    return model_request(config, params), dict(
        targets=list(policy.targets), buckets=list(policy.batch_buckets), variants=list(policy.variants),
        cache_dir=cache_dir, timeout=policy.compile_timeout_seconds, headroom=policy.hbm_headroom,
        workers=policy.compile_workers, group_targets=policy.group_targets)


def compile_evidence(config, params, sample_x: np.ndarray, policy: CompilationPolicy, out_dir: Path, *,
                     cache_dir: Path, import_meanwhile: tuple[str, ...] = ()) -> CompileResult:
    """Export, serialize and write the artifact; compile and check it at every bucket on the local platform;
    AOT-compile every target x bucket x variant of the policy.

    Args:
      config: a built-in config (``MLPConfig`` ...) or a model given by code (``models.code_model.CodeModel``,
        its code imported from the version's stored copy).
      sample_x: f32[n, num_features] real rows (or the dict of a model's declared columns) used to compare
        exported vs direct outputs.
      cache_dir: where compile-report rows are cached across runs.
      import_meanwhile: modules a later gate needs, imported while the compile report's children run
        (``compile_report``).
    """
    import jax

    from models.export import export_inference, export_info, load_exported, predict, score_bucketed
    from models.inputs import resize_rows

    out_dir.mkdir(parents=True, exist_ok=True)
    local = jax.default_backend()
    t0 = time.perf_counter()
    try:
        blob = export_inference(config, params, platforms=policy.platforms)
    except Exception as e:  # a lowering error is the gate's finding, not a crash
        message = " ".join(str(e).split())[:500]
        return CompileResult(
            gate="compilation", passed=False, decision="compile error", reasons=[f"export failed: {message}"],
            artifact_sha256=None, artifact_bytes=None, platforms=list(policy.platforms), export_seconds=None, buckets=[],
        )
    export_seconds = time.perf_counter() - t0
    artifact = out_dir / "inference.jaxexport"
    artifact.write_bytes(blob)
    info = export_info(blob)
    exported = load_exported(blob)

    buckets, scale = [], 0.0
    # the un-exported model, jitted: one compile per bucket instead of one per op and shape (eager apply)
    direct = jax.jit(predict, static_argnums=0)
    # An artifact not lowered for this host's platform cannot run here; the check below says so.
    for batch in policy.batch_buckets if local in info.platforms else ():
        x = resize_rows(sample_x, batch)
        t0 = time.perf_counter()
        got = score_bucketed(exported, params, x, buckets=(batch,))
        first_call = time.perf_counter() - t0
        want = np.asarray(direct(config, params, x))
        scale = max(scale, float(np.max(np.abs(want), initial=0.0)))
        buckets.append(BucketCompile(batch=batch, platform=local, first_call_seconds=first_call,
                                     max_abs_diff=float(np.max(np.abs(got - want)))))

    checks = [
        Check(name="platforms", value=",".join(info.platforms), threshold=list(policy.platforms), comparison="in",
              passed=set(policy.platforms) <= set(info.platforms)),
        Check(name="local_platform_in_artifact", value=local, threshold=info.platforms, comparison="in",
              passed=local in info.platforms),
        held_to("max_abs_diff", max((b.max_abs_diff for b in buckets), default=None), "<=",
                export_tolerance(scale)),
        Check(name="artifact_bytes", value=info.nr_bytes, passed=True),
        Check(name="export_seconds", value=round(export_seconds, 4), passed=True),
    ]
    checks += [Check(name=f"first_call_seconds:b{b.batch}", value=round(b.first_call_seconds, 4), passed=True) for b in buckets]
    model, arguments = report_arguments(config, params, policy, cache_dir)
    report = compile_report(model, import_meanwhile=import_meanwhile, **arguments)
    checks += target_checks(report, policy)
    variants, variant_problems = export_variants(config, params, policy, out_dir)
    failed = [c for c in checks if not c.passed]
    reasons = [c.describe() for c in failed] or [
        f"exported for {', '.join(info.platforms)} ({info.nr_bytes} bytes, sha256 {info.sha256[:12]}…); "
        f"compiled and matched at buckets {list(policy.batch_buckets)} on {local}"
    ]
    reasons += [f"{v.target}: {v.verdict} ({v.reason})" for v in report.verdicts] + variant_problems
    info_path = out_dir / "export_info.json"
    info_path.write_text(info.model_dump_json(indent=2))
    report_json = write_json(out_dir / "compile_report.json", report)
    (out_dir / "compile_report.md").write_text(report.markdown() + variants_markdown(params, variants))
    return CompileResult(
        gate="compilation",
        passed=not failed,
        decision="compiled" if not failed else "fail",
        reasons=reasons,
        checks=checks,
        evidence={"artifact": evidence_file(artifact), "export_info": evidence_file(info_path),
                  "compile_report": report_json, "compile_report_md": evidence_file(out_dir / "compile_report.md")},
        artifact_sha256=info.sha256,
        artifact_bytes=info.nr_bytes,
        platforms=info.platforms,
        export_seconds=export_seconds,
        buckets=buckets,
        report=report,
        variants=variants,
    )
