"""Compile gate: export the inference function (jax.export, cpu+tpu, symbolic batch) and prove it runs.

The artifact is lowered for every platform in the policy; on this host it is then
compiled and run at every batch bucket and must match the un-exported model. The
artifact's sha256 is what the canary and batch inference verify before use.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.evidence import Check, GateResult, evidence_file, held_to
from tasks.policy import CompilationPolicy

MAX_ABS_DIFF = 1e-5  # exported vs jit on the same platform is bitwise-equal in practice; allow float noise


class BucketCompile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int
    platform: str
    first_call_seconds: float
    max_abs_diff: float


class CompileResult(GateResult):
    artifact_sha256: str | None
    artifact_bytes: int | None
    platforms: list[str]
    export_seconds: float | None
    buckets: list[BucketCompile]


def compile_evidence(config, params, sample_x: np.ndarray, policy: CompilationPolicy, out_dir: Path) -> CompileResult:
    """Export, serialize and write the artifact; compile and check it at every bucket on the local platform.

    Args:
      sample_x: f32[n, num_features] real rows used to compare exported vs direct outputs.
    """
    import jax

    from models.export import export_inference, export_info, load_exported, predict_proba, score_bucketed

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

    buckets = []
    # An artifact not lowered for this host's platform cannot run here; the check below says so.
    for batch in policy.batch_buckets if local in info.platforms else ():
        x = np.resize(np.asarray(sample_x, np.float32), (batch, sample_x.shape[1]))
        t0 = time.perf_counter()
        got = score_bucketed(exported, params, x, buckets=(batch,))
        first_call = time.perf_counter() - t0
        want = np.asarray(predict_proba(config, params, x))
        buckets.append(BucketCompile(batch=batch, platform=local, first_call_seconds=first_call,
                                     max_abs_diff=float(np.max(np.abs(got - want)))))

    checks = [
        Check(name="platforms", value=",".join(info.platforms), threshold=list(policy.platforms), comparison="in",
              passed=set(policy.platforms) <= set(info.platforms)),
        Check(name="local_platform_in_artifact", value=local, threshold=info.platforms, comparison="in",
              passed=local in info.platforms),
        held_to("max_abs_diff", max((b.max_abs_diff for b in buckets), default=None), "<=", MAX_ABS_DIFF),
        Check(name="artifact_bytes", value=info.nr_bytes, passed=True),
        Check(name="export_seconds", value=round(export_seconds, 4), passed=True),
    ]
    checks += [Check(name=f"first_call_seconds:b{b.batch}", value=round(b.first_call_seconds, 4), passed=True) for b in buckets]
    failed = [c for c in checks if not c.passed]
    reasons = [c.describe() for c in failed] or [
        f"exported for {', '.join(info.platforms)} ({info.nr_bytes} bytes, sha256 {info.sha256[:12]}…); "
        f"compiled and matched at buckets {list(policy.batch_buckets)} on {local}"
    ]
    report = out_dir / "export_info.json"
    report.write_text(info.model_dump_json(indent=2))
    return CompileResult(
        gate="compilation",
        passed=not failed,
        decision="compiled" if not failed else "fail",
        reasons=reasons,
        checks=checks,
        evidence={"artifact": evidence_file(artifact), "export_info": evidence_file(report)},
        artifact_sha256=info.sha256,
        artifact_bytes=info.nr_bytes,
        platforms=info.platforms,
        export_seconds=export_seconds,
        buckets=buckets,
    )
