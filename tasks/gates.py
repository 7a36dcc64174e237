"""Thin Prefect tasks over the gates: do the I/O, call the pure gate functions, publish evidence.

Each task returns the gate's typed result after writing it as JSON under the
version's evidence folder, logging it to the version's MLflow run and publishing a
Prefect markdown artifact. Task boundaries sit where failure handling changes.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict

from tasks.errors import LockgateError
from tasks.evidence import EvidenceFile, GateResult, sha256_file, write_json
from tasks.policy import Policy
from tasks.registry import CHALLENGER, CHAMPION, ModelVersionRecord
from tasks.settings import Settings
from pathlib import Path

from tasks.stores import cache_dir, ledger_for, registry_for, use_jax_compilation_cache


def _in_a_run() -> bool:
    """Prefect attaches artifacts to a flow or task run; a gate function called outside one (``.fn`` in a fixture
    or a benchmark) has its JSON evidence and nothing to attach an artifact to."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _artifact_key(key: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", key.lower())  # Prefect's keys: lowercase letters, digits and dashes


def _markdown_artifact(markdown: str, key: str, description: str) -> None:
    if _in_a_run():
        create_markdown_artifact(markdown=markdown, key=_artifact_key(key), description=description[:500])


def _table_artifact(table: list[dict], key: str, description: str) -> None:
    if _in_a_run():
        create_table_artifact(table=table, key=_artifact_key(key), description=description[:500])


def publish_ledger_head(settings: Settings, name: str) -> None:
    """The ledger head the registry witnessed at ``name``'s last alias move, published again as a Prefect artifact
    (key ``ledger-head-<name>``): a witness in a third store, which `lockgate audit verify` compares too."""
    from tasks.registry import LEDGER_HEAD_TAG as WITNESS_TAG

    mark = registry_for(settings).model_tags(name).get(WITNESS_TAG)
    if mark:
        _markdown_artifact(f"```json\n{mark}\n```\n", f"{LEDGER_HEAD_ARTIFACT}-{name}",
                           f"ledger head at {name}'s last alias move")


LEDGER_HEAD_ARTIFACT = "ledger-head"


def _flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def publish(settings: Settings, record: ModelVersionRecord, result: GateResult, role: str, run_dir: Path) -> GateResult:
    """Write ``result`` into the lifecycle run's evidence folder, the MLflow run and a Prefect artifact."""
    write_json(Path(run_dir) / f"{role}.json", result)
    registry_for(settings).log_gate(record, result, prefix=role)
    _markdown_artifact(result.markdown(), f"{role}-{record.name}-v{record.version}", result.summary_line())
    return result


def _version_contract(settings: Settings, record: ModelVersionRecord):
    from tasks.registration.inference import load_version_contract

    return load_version_contract(registry_for(settings), record, cache_dir(settings))


def gate_evidence(run_dir: Path) -> dict[str, EvidenceFile]:
    """Every gate result this lifecycle run published so far, by role: its file and sha256 (a ledger row names both)."""
    return {path.stem: EvidenceFile(path=str(path), sha256=sha256_file(path)) for path in sorted(Path(run_dir).glob("*.json"))}


def evidence_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every gate result this lifecycle run published so far, by role."""
    return {role: f.sha256 for role, f in gate_evidence(run_dir).items()}


@task(name="mark-challenger", cache_policy=NO_CACHE)
def mark_challenger(settings: Settings, policy: Policy, record: ModelVersionRecord) -> None:
    from tasks.governance.promotion import move_alias

    move_alias(registry_for(settings), ledger_for(settings), name=record.name, alias=CHALLENGER, version=record.version,
               actor=settings.actor, reason=f"v{record.version} entered the lifecycle", policy=policy.name,
               evidence={}, flow_run_id=_flow_run_id())


@task(name="check-contract", cache_policy=NO_CACHE)
def check_contract(settings: Settings, policy: Policy, record: ModelVersionRecord, champion: ModelVersionRecord | None,
                   run_dir: Path):
    """The candidate's data contract against the champion's: breaking changes need the policy's say-so."""
    from tasks.validation.contract_change import contract_compatibility

    candidate_contract = _version_contract(settings, record)
    if champion is None:
        result = GateResult(gate="contract", passed=True, decision="first deployment",
                            reasons=[f"no champion: contract {candidate_contract.name} v{candidate_contract.version} "
                                     "has nothing to stay compatible with"])
    else:
        result = contract_compatibility(_version_contract(settings, champion), candidate_contract,
                                        allow_breaking=policy.validation.allow_breaking_contract_change)
    return publish(settings, record, result, "contract", run_dir)


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_data(settings: Settings, policy: Policy, record: ModelVersionRecord, dataset_path: str, role: str,
                  run_dir: Path):
    from tasks.datasets import read_table
    from tasks.registration.inference import load_reference
    from tasks.validation.gate import expectation_table, validate_dataset

    contract = _version_contract(settings, record)
    if role == "validation-reference":
        df = load_reference(registry_for(settings), record, cache_dir(settings))
    else:
        df = read_table(dataset_path, what=role)
    folder = Path(run_dir) / role
    result, _ = validate_dataset(df, contract, policy.validation, dataset=dataset_path, include_label=True,
                                 evidence_dir=folder, quarantine_path=folder / "quarantine.parquet")
    publish_table(f"{role}-table-{record.name}-v{record.version}", expectation_table(result), result.summary_line())
    return publish(settings, record, result, role, run_dir)


@task(name="screen-poisoning", cache_policy=NO_CACHE)
def screen_poisoning(settings: Settings, policy: Policy, record: ModelVersionRecord, golden_path: str, run_dir: Path):
    """The registered reference snapshot's poisoning screen against the golden set (tasks/registration/poisoning.py),
    on the version's encoded features; its findings as a table artifact beside the result."""
    import json

    from models.features import FeatureSpec
    from tasks.datasets import read_table
    from tasks.registration.inference import load_reference
    from tasks.registration.poisoning import poisoning_screen
    from tasks.registration.register import CONFIG_FILE, FEATURES_FILE

    registry = registry_for(settings)
    dst = cache_dir(settings) / record.name / f"v{record.version}"  # data only: the params are the compile gate's
    spec = FeatureSpec.model_validate_json(registry.fetch(record, FEATURES_FILE, dst).read_text())
    task = json.loads(registry.fetch(record, CONFIG_FILE, dst).read_text()).get("task", "classification")
    reference, contract = load_reference(registry, record, cache_dir(settings)), _version_contract(settings, record)
    if spec.inputs is not None:  # a model taking raw columns: the data is screened in the contract's encoding
        from models.features import fit_feature_spec

        spec = fit_feature_spec(reference, contract.numeric_features, contract.categorical_features)
    result = poisoning_screen(reference,
                              read_table(golden_path, what="golden set"), contract=contract,
                              spec=spec, task=task, policy=policy.poisoning,
                              dataset=f"{record.name} v{record.version} reference snapshot", golden_name=golden_path)
    if (Path(run_dir) / "poisoning.json").exists():  # write-once: a run's evidence is never replaced
        raise LockgateError(f"{run_dir}/poisoning.json exists already; a lifecycle run screens once")
    if result.findings:
        publish_table(f"poisoning-findings-{record.name}-v{record.version}",
                      [{"check": f.check, "mode": f.mode, "rows": f.counts.get("rows", 0),
                        "summary": f.summary, "first_ids": ", ".join(f.row_ids[:5])} for f in result.findings],
                      result.summary_line())
    return publish(settings, record, result, "poisoning", run_dir)


def start_compile_report(settings: Settings, policy: Policy, record: ModelVersionRecord) -> Future | None:
    """Start the compilation gate's compile report now (policy ``compilation.compile_early``), so its children
    compile while the gates ahead of it run; the gate takes the result. A plain function, not a gate: it records
    nothing, and anything that goes wrong here (the version's files unreadable, say) is left for the gate to find
    and record. The started report's future, for ``finish_early_report``; None when none was started."""
    if not policy.compilation.compile_early:
        return None
    from tasks.compilation.gate import report_arguments
    from tasks.compilation.report import early_workers
    from tasks.compilation.report import start_compile_report as start
    from tasks.registration.inference import load_version_files

    try:
        _, config, _, params = load_version_files(registry_for(settings), record, cache_dir(settings))
        model, arguments = report_arguments(config, params, policy.compilation, compile_cache_dir(settings))
    except Exception:  # noqa: BLE001 - the compilation gate loads the same files and records what fails
        return None
    return start(model, **{**arguments, "workers": early_workers(policy.compilation.compile_workers)})


def compile_cache_dir(settings: Settings) -> Path:
    """Where compile-report rows are cached across runs (settings.compile_cache_dir)."""
    return settings.compile_cache_path


@task(name="compile-model", cache_policy=NO_CACHE)
def compile_model(settings: Settings, policy: Policy, record: ModelVersionRecord, golden_path: str, run_dir: Path):
    use_jax_compilation_cache(settings)
    from models.features import feature_matrix
    from tasks.compilation.gate import compile_evidence
    from tasks.datasets import read_table
    from tasks.drift.gate import EVIDENTLY_MODULES
    from tasks.registration.inference import ARTIFACT_FILE, ARTIFACT_SHA_TAG, load_version_files
    from tasks.registry import MODEL_DIR

    registry = registry_for(settings)
    _, config, spec, params = load_version_files(registry, record, cache_dir(settings))
    sample = feature_matrix(read_table(golden_path, what="golden set").head(256), spec)
    folder = Path(run_dir) / "compilation"
    # the drift gate's Evidently imports (~3-4 s) happen while this process only waits for the compile children
    result = compile_evidence(config, params, sample, policy.compilation, folder,
                              cache_dir=compile_cache_dir(settings), import_meanwhile=EVIDENTLY_MODULES)
    if result.report is not None:
        _markdown_artifact(result.report.markdown(), f"compile-report-{record.name}-v{record.version}",
                           "compile report: target x bucket x variant")
    compiled_before = record.tags.get(ARTIFACT_SHA_TAG)
    if result.passed and compiled_before and compiled_before != result.artifact_sha256:
        # a version's artifact is written once: what an earlier run canaried, signed and maybe promoted stays
        result = result.model_copy(update={"passed": False, "decision": "artifact changed", "reasons": [
            f"v{record.version} was compiled before to an artifact with sha256 {compiled_before[:16]}…; this compile "
            f"gives {result.artifact_sha256[:16]}… (another JAX/XLA?): a version's artifact is never replaced; "
            "register the model again as a new version"]})
    if result.passed and not compiled_before:  # the first compile of the version; a re-run finds it all in place
        from tasks.registration.pyfunc_logging import log_version_pyfunc
        from tasks.registration.register import FEATURES_FILE, PARAMS_FILE

        registry.client.log_artifact(record.run_id, str(folder / ARTIFACT_FILE), MODEL_DIR)
        registry.set_version_tags(record.name, record.version, {
            ARTIFACT_SHA_TAG: result.artifact_sha256, "lockgate.platforms": ",".join(result.platforms)})
        from tasks.governance.artifact_signature import sign_version

        # signed where it is made: what is canaried, approved and promoted is what this signature covers
        sign_version(settings, registry, registry.get(record.name, record.version))
        for v in result.variants:  # variants sit beside the f32 artifact, each with its own hashes
            for path in (v.artifact, v.params):
                registry.client.log_artifact(record.run_id, path, f"{MODEL_DIR}/variants")
            registry.set_version_tags(record.name, record.version, {
                f"lockgate.variant.{v.variant}.artifact_sha256": v.artifact_sha256,
                f"lockgate.variant.{v.variant}.params_sha256": v.params_sha256})
        # the version's model/ folder becomes a models-from-code pyfunc: mlflow.pyfunc.load_model("models:/NAME@champion")
        dst = cache_dir(settings) / record.name / f"v{record.version}"
        log_version_pyfunc(registry.client, record.name, record.version, artifact_path=folder / ARTIFACT_FILE,
                           params_path=registry.fetch(record, PARAMS_FILE, dst),
                           feature_spec_path=registry.fetch(record, FEATURES_FILE, dst),
                           buckets=policy.compilation.batch_buckets, model_code=config.code_path)
    return publish(settings, record, result, "compilation", run_dir)


@task(name="evaluate-canary", cache_policy=NO_CACHE)
def evaluate_canary(settings: Settings, policy: Policy, record: ModelVersionRecord, champion: ModelVersionRecord | None,
                    golden_path: str, current_path: str | None = None, *, run_dir: Path):
    """Candidate vs champion through their hash-verified artifacts: golden-set metrics of the model's task (from its
    registered config) with paired bootstrap CIs, slices, shadow scoring on the latest partition, interleaved
    latency, variants; plots and the HTML report as evidence."""
    use_jax_compilation_cache(settings)
    from tasks.canary.gate import canary_result, golden_metrics, variant_verdict
    from tasks.canary.evidence import canary_plots, latency_report, model_task, shadow_report, tpu_estimates
    from tasks.canary.stats import CanaryInputError, bootstrap_deltas, check_inputs, check_regression_inputs, slice_metrics
    from tasks.datasets import read_table
    from tasks.errors import LockgateError
    from tasks.registration.inference import load_compiled, variant_scores

    registry, buckets, cp = registry_for(settings), policy.compilation.batch_buckets, policy.canary
    # the candidate's tags changed in the compile gate (artifact sha256): read them again
    record = registry.get(record.name, record.version)
    contract = _version_contract(settings, record)
    golden = read_table(golden_path, what="golden set")
    if contract.label_column not in golden.columns:
        raise LockgateError(f"golden set {golden_path} has no label column {contract.label_column!r}")
    cand = load_compiled(registry, record, cache_dir(settings), buckets)
    champ = load_compiled(registry, champion, cache_dir(settings), buckets) if champion else None
    task = model_task(cand, champ)
    checked_inputs = check_regression_inputs if task == "regression" else check_inputs
    try:
        y, p_c, p_h = checked_inputs(golden[contract.label_column].to_numpy(), cand.score(golden),
                                     champ.score(golden) if champ else None)
    except CanaryInputError as e:
        raise LockgateError(f"canary on {golden_path}: {e}") from None
    stats = dict(resamples=cp.bootstrap_resamples, confidence=cp.confidence_level, seed=cp.seed,
                 threshold=cp.decision_threshold)
    deltas, slices, shadow, extra = [], [], None, []
    if champ is not None:
        margins = cp.margins_for(task)
        deltas = list(bootstrap_deltas(y, p_c, p_h, metrics=list(margins), **stats,
                                       **cp.bootstrap_stop(margins)).values())
        slice_metric, slice_margin = cp.slice_rule(task)
        slices = slice_metrics(y, p_c, p_h, {c: golden[c].to_numpy() for c in contract.slice_columns},
                               metric=slice_metric, min_size=cp.min_slice_size, margin=slice_margin, **stats,
                               sequential=cp.bootstrap_stopping == "sequential", batch=cp.bootstrap_batch)
        shadow, shadow_checks = shadow_report(cand, champ, read_table(current_path or golden_path, what="shadow data"),
                                              contract.slice_columns, cp, task)
        extra += shadow_checks
    latency, latency_checks = latency_report(cand, champ, golden, cp)
    extra += latency_checks
    folder = Path(run_dir) / "canary"
    result = canary_result(
        golden_metrics(task, y, p_c, cp.decision_threshold),
        golden_metrics(task, y, p_h, cp.decision_threshold) if champ else None,
        cp, candidate_version=record.version, champion_version=champion.version if champion else None, deltas=deltas,
        slices=slices, shadow=shadow, extra_checks=extra, latency=latency,
        tpu_estimates_ms=tpu_estimates(Path(run_dir)))
    if result.passed:
        verdicts = [variant_verdict(v, y, p_f32, p_variant, cp, task)
                    for v, p_f32, p_variant in variant_scores(registry, record, golden, cache_dir(settings), buckets)]
        result = result.model_copy(update={
            "variants": verdicts,
            "reasons": result.reasons + [f"variant {v.variant} {'accepted' if v.accepted else 'REJECTED'}: {v.reason}"
                                         for v in verdicts]})
        accepted = ",".join(v.variant for v in verdicts if v.accepted)
        registry.set_version_tags(record.name, record.version, {"lockgate.variants_accepted": accepted or "none"})
    draw = cp.draws_plots(result.passed)
    result = result.model_copy(update={"evidence": canary_plots(y, p_c, p_h, result, latency, folder, draw=draw)})
    return publish(settings, record, result, "canary", run_dir)


@task(name="detect-drift", cache_policy=NO_CACHE)
def detect_drift(settings: Settings, policy: Policy, record: ModelVersionRecord, current_path: str, run_dir: Path):
    """Reference snapshot vs current data per the contract, with the candidate's scores as prediction drift."""
    use_jax_compilation_cache(settings)
    from tasks.batch.partition import SCORE_COLUMN
    from tasks.datasets import read_table
    from tasks.drift.gate import drift_evidence, drift_result, evidently_wanted, specs_for
    from tasks.registration.inference import load_compiled, load_reference

    registry = registry_for(settings)
    record = registry.get(record.name, record.version)  # the compile gate added the artifact's sha256 tag
    contract = _version_contract(settings, record)
    reference = load_reference(registry, record, cache_dir(settings))
    current = read_table(current_path, what="current data")
    model = load_compiled(registry, record, cache_dir(settings), policy.compilation.batch_buckets)
    reference = reference.assign(**{SCORE_COLUMN: model.score(reference)})
    current = current.assign(**{SCORE_COLUMN: model.score(current)})
    folder = Path(run_dir) / "drift"
    dp = policy.drift
    logger = get_run_logger()

    def progress(phase: str, done: int, total: int, rows: int) -> None:
        if done == total or done % max(1, total // 10) == 0:  # about every 10% of the partitions
            logger.info("drift %s: %d/%d partition(s), %d rows", phase, done, total, rows)

    evidence = drift_evidence(reference, current, specs=specs_for(contract, SCORE_COLUMN), out_dir=folder,
                              drift_share=dp.max_drifted_share, report_rows=dp.report_rows,
                              sample_rows=dp.sample_rows, progress=progress,
                              evidently=evidently_wanted(dp))
    result = drift_result(evidence, dp).model_copy(update={"dataset": str(current_path)})
    publish_table(f"drift-table-{record.name}-v{record.version}", result.table(), result.summary_line())
    return publish(settings, record, result, "drift", run_dir)


def publish_table(key: str, rows: list[dict], description: str) -> None:
    """Rows as a Prefect table artifact (inside a flow or task run)."""
    _table_artifact(rows, key, description)


def decide_approval(settings: Settings, policy: Policy, record: ModelVersionRecord, results: list[GateResult],
                    run_dir: Path, transition: str = "promote", role: str = "approval"):
    """The policy's approval rules for ``transition`` in settings.environment: auto-approve, or ask humans.

    Not a task: the flow itself pauses for the reviewers (for as long as the policy's expiry), each response is
    authorised against the policy and recorded; a task would stay open that whole time. ``role``: where the result
    is published in ``run_dir``, the lifecycle run's folder (a rollback's goes in a folder of its own)."""
    from tasks.governance.approval import approval_rules

    rules = approval_rules(policy, settings.environment, transition)
    if not rules.required:
        return approve_automatically(settings, policy, record, rules, run_dir, role)
    import os

    from prefect.settings import get_current_settings

    from tasks.governance.approval_prefect import wait_for_decision

    url = get_current_settings().api.url
    # a command's own temporary API (pipelines/temporary_api.py) is as unreachable for reviewers as none
    if not url or url == os.environ.get("LOCKGATE_TEMPORARY_API"):
        from tasks.errors import LockgateError

        raise LockgateError(f"{transition} needs human approval in {rules.environment} but this flow runs on "
                            "Prefect's temporary in-process API, which no reviewer can reach; run `lockgate server "
                            "start` (or set PREFECT_API_URL) first")
    request, request_sha = request_approval(settings, policy, record, rules, results, run_dir)
    result = wait_for_decision(settings, request, lambda verdict: record_approval_response(
        settings, policy, record, request_sha, verdict))
    if result.decision == "expired":
        _append(settings, policy, record, actor=settings.actor, action="approval.expired", reason=result.reasons[0],
                evidence={"approval-request": request_sha})
    return publish(settings, record, result, role, run_dir)


def _append(settings: Settings, policy: Policy, record: ModelVersionRecord, *, actor: str, action: str, reason: str,
            evidence: dict[str, str | EvidenceFile], proof: dict[str, str] | None = None) -> None:
    from tasks.ledger.entry import LedgerEntry

    ledger_for(settings).append(LedgerEntry(
        actor=actor, action=action, model_name=record.name, version=record.version, reason=reason,
        policy=policy.name, flow_run_id=_flow_run_id(), evidence=evidence, proof=proof))


@task(name="approve-automatically", cache_policy=NO_CACHE)
def approve_automatically(settings: Settings, policy: Policy, record: ModelVersionRecord, rules, run_dir: Path,
                          role: str = "approval"):
    from tasks.governance.approval import auto_approval

    from tasks.governance.promotion import failpoint

    result = publish(settings, record, auto_approval(rules, requester=settings.actor), role, run_dir)
    _append(settings, policy, record, actor=result.approved_by[0], action="approval.auto", reason=result.reasons[0],
            evidence=gate_evidence(run_dir))
    failpoint("approved")  # the fault tests crash the lifecycle here: approved, not yet promoted
    return result


@task(name="request-approval", cache_policy=NO_CACHE)
def request_approval(settings: Settings, policy: Policy, record: ModelVersionRecord, rules,
                     results: list[GateResult], run_dir: Path):
    """Open a request: its document (rules, requester, expiry, gate decisions, evidence hashes) as evidence, an
    ``approval.requested`` ledger row pointing at it, and a Prefect artifact for reviewers."""
    import secrets
    from datetime import timedelta

    from tasks.governance.approval import ApprovalRequest
    from tasks.governance.approval_prefect import request_markdown, request_path, utc_now

    now, run_id = utc_now(), _flow_run_id()
    files = gate_evidence(run_dir)
    evidence = {role: f.sha256 for role, f in files.items()}
    request = ApprovalRequest(
        request_id=secrets.token_hex(16), flow_run_id=run_id, model_name=record.name, version=record.version,
        rules=rules, requester=settings.actor, registrant=record.tags.get("lockgate.registered_by", "unknown"),
        requested_at=now, expires_at=now + timedelta(seconds=rules.expiry_seconds),
        gates=[f"{r.gate} {r.decision}" for r in results], evidence=evidence,
        artifact_sha256=record.tags.get("lockgate.artifact_sha256"))
    request_file = write_json(request_path(settings, record.name, record.version, run_id), request)
    _append(settings, policy, record, actor=settings.actor, action="approval.requested", reason=request.summary(),
            evidence={**files, "approval-request": request_file})
    request_sha = request_file.sha256
    _markdown_artifact(request_markdown(request), f"approval-request-{record.name}-v{record.version}",
                       request.summary())
    return request, request_sha


@task(name="record-approval-response", cache_policy=NO_CACHE)
def record_approval_response(settings: Settings, policy: Policy, record: ModelVersionRecord, request_sha: str,
                             verdict) -> None:
    """One ledger row per response, counted or refused, with the sha256 of the input as evidence and, for a signed
    response, its proof (what was signed, the signature, the key), which `lockgate audit verify` re-checks."""
    proof = None if verdict.signature is None else {
        "signed_payload": verdict.signed_payload, "signature": verdict.signature, "key": verdict.key}
    _append(settings, policy, record, actor=verdict.approver, action=verdict.action, reason=verdict.reason,
            evidence={"approval-request": request_sha, "approval-input": verdict.input_sha256}, proof=proof)


@task(name="promote-model", cache_policy=NO_CACHE)
def promote_model(settings: Settings, policy: Policy, record: ModelVersionRecord, results: list[GateResult],
                  run_dir: Path) -> GateResult:
    """Move champion to the candidate, atomically with the ledger, if the champion is still the one the canary
    compared it with; smoke-test it through the alias. No retries here: a failed move is reverted and recorded."""
    use_jax_compilation_cache(settings)
    from tasks.evidence import Check
    from tasks.governance.promotion import promote

    tags = registry_for(settings).get(record.name, record.version).tags
    # the deployed bytes themselves, beside the gate evidence: the exported program and the params it is called with
    deployed = {"artifact.jaxexport": tags.get("lockgate.artifact_sha256", ""),
                "params.msgpack": tags.get("lockgate.params_sha256", ""),
                "contract.fingerprint": tags.get("lockgate.contract_fingerprint", ""),
                "contract.yaml": tags.get("lockgate.contract_sha256", "")}
    canary = next((r for r in results if r.gate == "canary"), None)
    expected = getattr(canary, "champion_version", None)
    outcome = promote(registry_for(settings), ledger_for(settings), name=record.name, version=record.version,
                      actor=settings.actor, reason=promotion_reason(results), policy=policy.name,
                      evidence={**gate_evidence(run_dir), **deployed}, flow_run_id=_flow_run_id(),
                      expected_champion=expected)
    checks = [Check(name="champion_before", value=outcome.champion_before, threshold=expected, comparison="==",
                    passed=outcome.champion_before == expected),
              Check(name="smoke_test", value=outcome.smoke_test or "-", passed=outcome.status == "committed")]
    result = GateResult(gate="promotion", passed=outcome.status == "committed", decision=outcome.status,
                        reasons=[(outcome.smoke_test or outcome.reason) if outcome.status == "committed"
                                 else outcome.reason],
                        checks=checks if outcome.status != "refused" else checks[:1])
    publish_ledger_head(settings, record.name)
    published = publish(settings, record, result, "promotion", run_dir)
    if not published.passed:  # refused (the champion moved) or reverted (smoke test): the promotion is rejected
        open_incident(settings, rejection_trigger(
            policy, record, published, run_dir, condition=f"promotion {outcome.status}",
            summary=f"v{record.version} not promoted ({outcome.status}): {outcome.reason}"))
    return published


def gate_error(gate: str, error: Exception) -> GateResult:
    """A gate that could not run (missing file, hash mismatch, ...) is a failed gate with the error as its reason."""
    return GateResult(gate=gate, passed=False, decision="error", reasons=[" ".join(str(error).split())[:1000]])


def promotion_reason(results: list[GateResult]) -> str:
    """One line naming every gate's decision and the canary's comparison (its values and thresholds)."""
    gates_line = ", ".join(f"{r.gate} {r.decision}" + (f" by {', '.join(r.approved_by)}" if _human(r) else "")
                           for r in results)
    canary = next((r for r in results if r.gate == "canary"), None)
    detail = "; ".join(canary.reasons) if canary else ""
    return f"all gates passed ({gates_line}): {detail}"


def _human(result: GateResult) -> bool:
    return result.gate == "approval" and result.decision == "approved" and bool(getattr(result, "approved_by", None))


@task(name="reject-candidate", cache_policy=NO_CACHE)
def reject_candidate(settings: Settings, policy: Policy, record: ModelVersionRecord, results: list[GateResult],
                     run_dir: Path) -> str:
    from tasks.governance.promotion import reject

    failed = results[-1]
    reason = f"{failed.gate} gate: {failed.decision}: {'; '.join(failed.reasons)}"
    reject(registry_for(settings), ledger_for(settings), name=record.name, version=record.version, actor=settings.actor,
           reason=reason, policy=policy.name, evidence=gate_evidence(run_dir),
           flow_run_id=_flow_run_id())
    open_incident(settings, rejection_trigger(policy, record, failed, run_dir, condition=f"{failed.gate} gate",
                                              summary=f"v{record.version} rejected: {reason}"))
    return "rejected"


# -- batch inference -----------------------------------------------------------------------------------------------
class ChampionRef(BaseModel):
    """The champion a batch run scores with, by value: tasks on other processes (Dask) load it from the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    artifact_sha256: str


_CHAMPIONS: dict[tuple, tuple] = {}
_CHAMPIONS_LOCK = threading.Lock()


def _load_verified(settings: Settings, policy: Policy, record: ModelVersionRecord):
    from tasks.batch.partition import SCORE_COLUMN
    from tasks.registration.inference import load_compiled, load_reference

    from tasks.governance.artifact_signature import verify_version

    registry = registry_for(settings)
    verify_version(settings, registry, record)  # before any byte of it is loaded: signed when compiled, unchanged since
    model = load_compiled(registry, record, cache_dir(settings), policy.compilation.batch_buckets)
    reference = load_reference(registry, record, cache_dir(settings))
    # the contract too, loaded once per process (registry.fetch renames whole files into the shared cache)
    return model, reference.assign(**{SCORE_COLUMN: model.score(reference)}), _version_contract(settings, record)


def champion_model(settings: Settings, policy: Policy, ref: ChampionRef):
    """(CompiledModel, reference with scores, contract) of ``ref``, loaded and hash-verified once per process."""
    key = (settings, policy.compilation.batch_buckets, ref)
    with _CHAMPIONS_LOCK:
        if key not in _CHAMPIONS:
            record = registry_for(settings).get(ref.name, ref.version)
            loaded = _load_verified(settings, policy, record)
            if loaded[0].artifact_sha256 != ref.artifact_sha256:
                raise LockgateError(f"{ref.name} v{ref.version}'s artifact sha256 changed during the run")
            _CHAMPIONS[key] = loaded
        return _CHAMPIONS[key]


@task(name="load-champion", cache_policy=NO_CACHE)
def load_champion(settings: Settings, policy: Policy, name: str) -> ChampionRef:
    """Resolve the champion alias (once no promotion is half-done) and verify its artifact and params hashes (again
    on every run)."""
    from tasks.governance.promotion_state import committed_alias

    registry = registry_for(settings)
    record = (committed_alias(registry, ledger_for(settings), name=name, alias=CHAMPION, actor=settings.actor)
              or registry.require_alias(name, CHAMPION))  # no champion: require_alias's one-line error
    loaded = _load_verified(settings, policy, record)
    ref = ChampionRef(name=name, version=record.version, artifact_sha256=loaded[0].artifact_sha256)
    with _CHAMPIONS_LOCK:
        _CHAMPIONS[(settings, policy.compilation.batch_buckets, ref)] = loaded
    return ref


def batch_io(settings: Settings, name: str):
    from tasks.batch.partition import BatchIO
    from tasks.batch.partition_io import join

    return BatchIO(predictions_root=join(settings.predictions_root, name), quarantine_dir=settings.quarantine_dir / name,
                   evidence_dir=settings.evidence_dir / name / "batches", batch_rows=settings.score_batch_rows,
                   retries=settings.io_retries, retry_delay=settings.io_retry_delay_seconds,
                   inject_read_failures=settings.inject_read_failures, inject_seed=settings.inject_seed,
                   faults_dir=settings.home_dir / "faults" if settings.inject_read_failures > 0 else None)


def monitoring_now(settings: Settings, name: str):
    """The monitoring state (tasks.batch.monitoring.MonitoringState) of model ``name``, folded from the ledger now."""
    from tasks.batch.monitoring import monitoring_state

    return monitoring_state(ledger_for(settings).entries(model_name=name))


@task(name="score-partition", cache_policy=NO_CACHE)
def score_partition(settings: Settings, policy: Policy, champion: ChampionRef, target, force: bool,
                    rescore: bool = False):
    """Score one partition; transient IO errors are retried inside, every problem is an outcome and a ledger row.

    The monitoring block is read from the ledger when the partition starts and again right before its first
    prediction is written, so a block raised by another partition of this run stops every partition not yet
    writing; one already writing finishes and says so. ``rescore``: a re-score after an automatic rollback; it is
    not stopped by a block, and its monitor step may alert but never rolls back or blocks."""
    from tasks.batch.partition import blocked_outcome, score_partition_data

    logger = get_run_logger()
    state = monitoring_now(settings, champion.name)
    if state.blocked and not rescore:
        outcome = blocked_outcome(target.name, champion.version, state)
    else:
        model, reference, contract = champion_model(settings, policy, champion)
        outcome = score_partition_data(
            target, model=model, contract=contract, policy=policy,
            reference=reference, io=batch_io(settings, champion.name), flow_run_id=_flow_run_id(), force=force,
            log=logger.warning, block_check=None if rescore else (lambda: monitoring_now(settings, champion.name)))
        if rescore and outcome.monitor in ("block", "rollback"):
            outcome = outcome.model_copy(update={"monitor": "alert"})
    record_partition(settings, policy, champion, outcome)
    return outcome


def _record_unrecorded_output(settings: Settings, ledger, champion: ChampionRef, outcome, common: dict) -> None:
    """A crash between moving a partition's predictions into place and writing their ledger row leaves an output no
    row explains; the re-run skips the partition, so it writes that row now, naming the file's sha256."""
    from tasks.batch.partition_io import sha256_of
    from tasks.ledger.entry import LedgerEntry

    mark = f" partition {outcome.partition}: "
    if any(e.action == "partition.scored" and e.version == champion.version and mark in e.reason
           for e in ledger.entries(model_name=champion.name)):
        return
    from tasks.batch.partition import attempt_holding

    sha = sha256_of(outcome.output)
    held = attempt_holding(batch_io(settings, champion.name), outcome.partition, champion.version, sha)
    ledger.append(LedgerEntry(
        action="partition.scored", evidence={"predictions": EvidenceFile(path=held, sha256=sha) if held else sha},
        **common,
        reason=f"version {champion.version} scored partition {outcome.partition}: recorded by a later run; the run "
        f"that wrote {outcome.output} stopped before writing this row"))


def record_partition(settings: Settings, policy: Policy, champion: ChampionRef, outcome) -> None:
    """The outcome's ledger row (for a skip: only when the run that wrote the output never recorded it), its Prefect
    artifacts, and an alert or block it raised."""
    from tasks.ledger.entry import LedgerEntry
    from tasks.batch.monitoring import ALERT, BLOCK
    from tasks.governance.promotion import failpoint

    ledger, logger = ledger_for(settings), get_run_logger()
    common = dict(actor=settings.actor, model_name=champion.name, version=champion.version, policy=policy.name,
                  flow_run_id=_flow_run_id())
    if outcome.status == "skipped":
        _record_unrecorded_output(settings, ledger, champion, outcome, common)
    else:
        failpoint(f"partition-{outcome.status}")  # the fault test crashes here: output in place, no ledger row yet
        verb = {"scored": "scored"}.get(outcome.status, f"did not score ({outcome.status})")
        ledger.append(LedgerEntry(action=f"partition.{outcome.status}", evidence=outcome.evidence, **common,
                                  reason=f"version {champion.version} {verb} partition {outcome.partition}: "
                                  f"{outcome.message}"))
    logger.info("partition %s: %s: %s", outcome.partition, outcome.status, outcome.message)
    if outcome.monitor in ("alert", "block"):
        action = BLOCK if outcome.monitor == "block" else ALERT
        reason = f"partition {outcome.partition} (v{champion.version}): {'; '.join(outcome.monitor_reasons)}"
        ledger.append(LedgerEntry(action=action, reason=reason, evidence=outcome.evidence, **common))
        logger.warning("MONITOR %s: %s", outcome.monitor.upper(), reason)
        _markdown_artifact(f"# Monitoring {outcome.monitor}\n\n{reason}\n", f"monitor-{champion.name}", reason)
        open_incident(settings, monitor_trigger(policy, champion, outcome, kind="scoring-block" if action == BLOCK
                                                else "monitoring-alert"))
    table = "\n".join(["| partition | status | rows | quarantined | scored | drift | monitor |",
                       "|---|---|---|---|---|---|---|",
                       f"| {outcome.partition} | {outcome.status} | {outcome.rows} | {outcome.quarantined} | "
                       f"{outcome.scored} | {outcome.drift or '-'} | {outcome.monitor} |", "",
                       *[f"- {r}" for r in outcome.drift_reasons + outcome.monitor_reasons]])
    _markdown_artifact(table, f"batch-{champion.name}-{outcome.partition}", outcome.message)
    if outcome.drift_result is not None:
        publish_table(f"drift-table-{champion.name}-{outcome.partition}", outcome.drift_result.table(),
                      outcome.drift_result.summary_line())


@task(name="refuse-partitions", cache_policy=NO_CACHE)
def refuse_partitions(settings: Settings, policy: Policy, name: str, targets: list, error: Exception):
    """The champion could not be loaded and verified: every partition fails with the reason, in the ledger too."""
    from tasks.batch.partition import PartitionOutcome
    from tasks.ledger.entry import LedgerEntry

    message = f"champion not loaded: {' '.join(str(error).split())[:800]}"
    ledger_for(settings).append(LedgerEntry(
        actor=settings.actor, action="champion.refused", model_name=name, reason=message, policy=policy.name,
        flow_run_id=_flow_run_id()))
    return [PartitionOutcome(partition=t.name, status="failed", message=message) for t in targets]


@task(name="rollback-model", cache_policy=NO_CACHE)
def rollback_model(settings: Settings, policy: Policy, champion: ChampionRef, breached: list) -> ChampionRef | None:
    """Automatic rollback asked by the monitoring policy: the governed rollback path, then an alert row.

    Only when ``champion`` is still the champion (nobody moved it during the run). When there is nothing to roll
    back to, the target fails its smoke test, or the policy needs human approval for rollbacks in this environment
    (a batch run cannot wait days for reviewers), scoring is blocked instead and the ledger says why and how to ask
    (`lockgate rollback`); the approved rollback moves the champion, which lifts the block. Returns the restored
    champion, or None."""
    from tasks.ledger.entry import LedgerEntry
    from tasks.batch.monitoring import ALERT, BLOCK
    from tasks.governance.rollback import governed_rollback

    registry, ledger = registry_for(settings), ledger_for(settings)
    why = "; ".join(f"partition {o.partition}: {'; '.join(o.monitor_reasons)}" for o in breached)
    common = dict(actor=settings.actor, model_name=champion.name, policy=policy.name, flow_run_id=_flow_run_id())
    current = registry.aliases(champion.name).get(CHAMPION)
    evidence = {f"{o.partition}.{k}": v for o in breached for k, v in o.evidence.items()}
    if current != champion.version:
        skipped = f"rollback of v{champion.version} skipped: champion is now v{current}; {why}"
        ledger.append(LedgerEntry(action=ALERT, version=champion.version, **common, reason=skipped))
        open_incident(settings, _rollback_trigger(policy, champion, breached, evidence, "monitoring-alert", skipped))
        return None
    try:
        result = governed_rollback(settings, policy, champion.name, reason=f"automatic, monitoring breach: {why}",
                                   flow_run_id=_flow_run_id(), evidence=evidence)
        problem = None if result.passed else result.reasons[0]
    except LockgateError as e:  # nothing to roll back to, or reviewers must approve it
        problem = str(e)
    if problem is not None:
        blocked = f"rollback asked by monitoring but not made ({problem}); scoring blocked: {why}"
        ledger.append(LedgerEntry(action=BLOCK, version=champion.version, **common, reason=blocked))
        get_run_logger().error("MONITOR: rollback not made (%s); scoring blocked", problem)
        open_incident(settings, _rollback_trigger(policy, champion, breached, evidence, "scoring-block", blocked))
        return None
    reason = f"v{result.from_version} rolled back to v{result.to_version} after: {why}"
    ledger.append(LedgerEntry(action=ALERT, version=result.to_version, **common, reason=reason))
    open_incident(settings, _rollback_trigger(policy, champion, breached, evidence, "rollback", reason))
    get_run_logger().warning("MONITOR ROLLBACK: %s", reason)
    _markdown_artifact(f"# Monitoring rollback\n\n{reason}\n", f"monitor-{champion.name}", reason)
    publish_ledger_head(settings, champion.name)
    return load_champion.fn(settings, policy, champion.name)


def _rollback_trigger(policy: Policy, champion: ChampionRef, breached: list, evidence: dict, kind: str, summary: str):
    """The incident of an automatic rollback (or of the block made instead): the breached partitions' values and
    evidence; time to detect from the first of their data to land."""
    from tasks.governance.incidents import IncidentTrigger, modified_at

    landed = sorted((t, o.partition) for o in breached if (t := modified_at(o.source)))
    return IncidentTrigger(
        kind=kind, model_name=champion.name, version=champion.version, condition="monitoring rollback",
        summary=summary, reasons=[r for o in breached for r in o.monitor_reasons],
        measurements=[c for o in breached for c in _failed_measurements(o.drift_result)][:50], evidence=evidence,
        data_at=landed[0][0] if landed else None,
        data_what=f"partition {landed[0][1]} landed" if landed else None, policy=policy.name,
        flow_run_id=_flow_run_id())


@task(name="publish-model-card", cache_policy=NO_CACHE)
def publish_model_card(settings: Settings, record: ModelVersionRecord, run_dir: Path) -> str | None:
    """The version's model card from its evidence, written into this lifecycle run's folder (``model_card/``) and
    logged to MLflow whatever the decision; a card that cannot be written is a warning, never a change of the
    lifecycle's outcome."""
    from tasks.governance.model_card import CARD_DIR, write_model_card

    try:
        _, files = write_model_card(settings, registry_for(settings), ledger_for(settings), record,
                                    Path(run_dir) / CARD_DIR)
    except Exception as e:  # the decision is made and recorded; the card is documentation of it
        get_run_logger().warning("model card for %s v%s not written: %s", record.name, record.version, e)
        return None
    return str(files[0])


# -- incident response (tasks/governance/incidents.py) ---------------------------------------------------------------
def emit_incident_event(event: str, incident) -> str:
    """The incident's Prefect event (``lockgate.incident.opened`` / ``.resolved``, the model version as resource, so
    an automation can route it), where a Prefect run or API exists; what happened, as a line for the ledger.
    Prefect sends events in the background: "emitted" means handed to its events worker."""
    import contextlib
    import os

    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    # a command that set PREFECT_API_URL after Prefect was imported (the demo's temporary API): its settings lack it
    exported = os.environ.get("PREFECT_API_URL") if not get_current_settings().api.url else None
    if not _in_a_run() and not get_current_settings().api.url and not exported:
        return f"{event} not sent: no Prefect run or API in this process"  # emit_event would start a server of its own
    from prefect.events import emit_event

    from tasks.governance.incidents import event_resource

    resource, related = event_resource(incident)
    payload = {"incident_id": incident.incident_id, "kind": incident.kind, "summary": incident.summary[:2000],
               "opened_at": incident.opened_at, "resolved_by": incident.resolved_by,
               "resolution": incident.resolution, "evidence": {"incident": incident.document, **incident.evidence}}
    try:
        with temporary_settings({PREFECT_API_URL: exported}) if exported else contextlib.nullcontext():
            sent = emit_event(event=event, resource=resource, related=related, payload=payload)
    except Exception as e:  # noqa: BLE001 - e.g. an event over the server's size limit
        return f"{event} not sent: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return f"{event} emitted (id {sent.id})" if sent is not None else f"{event} not sent: Prefect emits no events here"


def open_incident(settings: Settings, trigger):
    """Open an incident for ``trigger`` (or attach it to the open one with the same key), notify the webhook and
    emit the Prefect event for a new one. Never raises: the gate's own decision is recorded either way, and a
    failure here is logged."""
    from tasks.governance.incidents import announce, open_or_attach

    logger = _logger()
    try:
        ledger = ledger_for(settings)
        incident, attached = open_or_attach(ledger, trigger, actor=settings.actor, evidence_dir=settings.evidence_dir)
    except Exception as e:  # noqa: BLE001 - an incident that cannot be recorded never changes the gate's outcome
        logger.error("incident not opened (%s: %s) for: %s", type(e).__name__, e, trigger.summary)
        return None
    if attached:
        logger.warning("INCIDENT %s: the same condition again (%d occurrences): %s", incident.incident_id,
                       incident.occurrences, trigger.summary)
        return incident
    url = settings.incident_webhook_url.get_secret_value() if settings.incident_webhook_url else None
    line = announce(ledger, incident, "opened", actor=settings.actor, webhook_url=url,
                    timeout=settings.incident_webhook_timeout_seconds, retries=settings.incident_webhook_retries,
                    emit=emit_incident_event)
    logger.warning("INCIDENT %s opened (%s): %s [%s]", incident.incident_id, incident.kind, trigger.summary, line)
    return incident


def _logger():
    import logging

    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow or task run (a gate called directly)
        return logging.getLogger("lockgate.incidents")


def _failed_measurements(drift) -> list:
    from tasks.governance.incidents import MAX_MEASUREMENTS

    return [c for c in (drift.checks if drift is not None else []) if not c.passed][:MAX_MEASUREMENTS]


def monitor_trigger(policy: Policy, champion: ChampionRef, outcome, *, kind: str):
    """The incident of a partition's monitoring alert or block: its drift and quality values and thresholds, the
    partition's evidence, and when its data landed (time to detect runs from there)."""
    from tasks.governance.incidents import IncidentTrigger, modified_at

    data_at = modified_at(outcome.source)
    return IncidentTrigger(
        kind=kind, model_name=champion.name, version=champion.version,
        condition="+".join(outcome.monitor_triggers) or outcome.monitor,
        summary=f"partition {outcome.partition} (v{champion.version}): {'; '.join(outcome.monitor_reasons)}",
        reasons=list(outcome.monitor_reasons), measurements=_failed_measurements(outcome.drift_result),
        evidence=dict(outcome.evidence), data_at=data_at,
        data_what=f"partition {outcome.partition} landed ({outcome.source})" if data_at else None,
        policy=policy.name, flow_run_id=_flow_run_id())


def _newest_evidence(files: dict[str, EvidenceFile]) -> tuple[str | None, str | None]:
    from tasks.governance.incidents import modified_at

    times = [(t, f.path) for f in files.values() if (t := modified_at(f.path))]
    return max(times) if times else (None, None)


def rejection_trigger(policy: Policy, record: ModelVersionRecord, result: GateResult, run_dir: Path, *,
                      condition: str, summary: str):
    """The incident of a rejected promotion: the failing gate's checks, the run's gate evidence; time to detect
    from the last gate result written before the decision."""
    from tasks.governance.incidents import IncidentTrigger

    files = gate_evidence(run_dir)
    data_at, path = _newest_evidence(files)
    return IncidentTrigger(
        kind="promotion-rejected", model_name=record.name, version=record.version, condition=condition,
        summary=summary, reasons=list(result.reasons), measurements=result.failed_checks(), evidence=files,
        data_at=data_at, data_what=f"gate result {path} written" if path else None, policy=policy.name,
        flow_run_id=_flow_run_id())
