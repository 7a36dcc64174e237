"""The `lifecycle` flow: candidate -> validate -> compile -> canary -> drift -> approve -> promote (or reject).

Wiring only: each gate is a task in tasks/gates.py; the first gate that does not
pass ends the flow with the candidate rejected and its reasons in the ledger. When
the policy needs a human for promotion in this environment, the approval step
pauses the run until reviewers approve, reject, or the request expires.
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict

from data_contracts.contract import ContractError
from pipelines.prefect_clients import share_tls_context
from tasks import gates
from tasks.compilation.report import finish_early_report
from tasks.errors import LockgateError
from tasks.evidence import GateResult
from tasks.registry import CHAMPION
from tasks.settings import Settings
from tasks.governance.promotion_state import committed_alias
from tasks.stores import ledger_for, new_lifecycle_dir, policy_for, registry_for

share_tls_context()  # before any flow runs: one TLS context for Prefect's clients (pipelines/prefect_clients.py)


class LifecycleOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    decision: str  # "champion" or "rejected"
    champion_before: int | None
    gates: list[str]
    reasons: list[str]


@flow(name="lifecycle", log_prints=True)
def lifecycle(version: int, golden: str, current: str | None = None, model_name: str | None = None) -> LifecycleOutcome:
    """Take model version ``version`` through every gate.

    Args:
      version: the registered candidate version.
      golden: labeled golden/holdout parquet for validation, compile checks and the canary.
      current: latest production data for drift (defaults to the golden set).
    """
    settings = Settings()
    policy = policy_for(settings)
    registry = registry_for(settings)
    name = model_name or settings.model_name
    candidate = registry.get(name, version)
    # the committed champion: a move a crash left half-done is recovered first, or the canary would judge the
    # candidate against a champion the ledger never committed
    champion = committed_alias(registry, ledger_for(settings), name=name, alias=CHAMPION, actor=settings.actor)
    gates.mark_challenger(settings, policy, candidate)
    # this run's evidence folder (v<N>/lifecycle-<k>): a re-run writes a new one, so no row's file is replaced
    run = new_lifecycle_dir(settings, name, version)
    early = gates.start_compile_report(settings, policy, candidate)  # its children compile beside the first gates

    results: list[GateResult] = []
    steps = [
        ("contract", lambda: gates.check_contract(settings, policy, candidate, champion, run)),
        ("validation", lambda: gates.validate_data(settings, policy, candidate, golden, "validation-golden", run)),
        ("validation", lambda: gates.validate_data(settings, policy, candidate, golden, "validation-reference", run)),
        ("poisoning", lambda: gates.screen_poisoning(settings, policy, candidate, golden, run)),
        ("compilation", lambda: gates.compile_model(settings, policy, candidate, golden, run)),
        ("canary", lambda: gates.evaluate_canary(settings, policy, candidate, champion, golden, current, run_dir=run)),
        ("drift", lambda: gates.detect_drift(settings, policy, candidate, current or golden, run)),
        ("approval", lambda: gates.decide_approval(settings, policy, candidate, results, run)),
    ]
    try:
        for gate, step in steps:
            try:
                results.append(step())
            except (LockgateError, ContractError) as e:  # bad input or a changed artifact: recorded, not a crash
                results.append(gates.gate_error(gate, e))
            if not results[-1].passed:
                decision = gates.reject_candidate(settings, policy, candidate, results, run)
                break
        else:
            results.append(gates.promote_model(settings, policy, candidate, results, run))
            decision = CHAMPION if results[-1].passed else "rejected"  # a stale champion or failed smoke test
    finally:
        if early is not None:  # stopped before compiling: its children end (their rows cached), none orphaned
            finish_early_report(early)
    gates.publish_model_card(settings, candidate, run)
    return LifecycleOutcome(
        model_name=name,
        version=version,
        decision=decision,
        champion_before=champion.version if champion else None,
        gates=[r.summary_line() for r in results],
        reasons=results[-1].reasons if decision != CHAMPION else [gates.promotion_reason(results)],
    )
