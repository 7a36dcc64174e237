"""`lockgate demo`: the whole lifecycle on embedded defaults, end to end.

Generates synthetic credit-default data, trains a small first candidate and makes
it champion through the `lifecycle` flow, trains a bigger second candidate and runs
`lifecycle` again (promoted or rejected on the evidence), then scores the daily
partitions with `batch-inference` and prints where everything is. A demo that was
interrupted is resumed by the next one with its versions (see "resumed, not repeated").
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.commands.console import console
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.ledger.entry import LedgerEntry
    from tasks.registry import ModelVersionRecord
CONTRACT = "credit_default"


@dataclass(frozen=True)
class DemoSize:
    n_train: int
    n_golden: int
    rows_per_day: int
    batch_size: int


SIZES = {"small": DemoSize(3000, 1500, 600, 64), "default": DemoSize(20000, 5000, 5000, 256)}


@dataclass(frozen=True)
class Candidate:
    label: str
    hidden_sizes: tuple[int, ...]
    epochs: int
    train_share: float  # share of the training set this candidate sees (its reference snapshot)


CANDIDATES = (
    Candidate("baseline-small", (8,), 4, 0.3),
    Candidate("wider-more-data", (64, 32), 8, 1.0),
)


def train_candidate(candidate: Candidate, train_path: Path, out_dir: Path, *, seed: int, batch_size: int
                    ) -> tuple[Path, Path, Path]:
    """Train one candidate; write its config, params and reference snapshot; return their paths."""
    from data_contracts.contract import load_contract
    from models.config import MLPConfig
    from models.features import feature_matrix, fit_feature_spec
    from models.params_io import save_params
    from models.train import train_classifier
    from tasks.datasets import read_table, write_table

    contract = load_contract(CONTRACT)
    train = read_table(train_path, what="training data")
    train = train.iloc[: max(1, int(len(train) * candidate.train_share))]
    spec = fit_feature_spec(train, contract.numeric_features, contract.categorical_features)
    config = MLPConfig(num_features=spec.num_features, hidden_sizes=candidate.hidden_sizes)
    params = train_classifier(feature_matrix(train, spec), train[contract.label_column].to_numpy(), config,
                              epochs=candidate.epochs, batch_size=batch_size, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path, params_path = out_dir / "model_config.json", out_dir / "params.msgpack"
    config_path.write_text(json.dumps(config.to_dict(), indent=2))
    save_params(params, params_path)
    reference_path = write_table(train, out_dir / "reference.parquet")
    return config_path, params_path, reference_path


def run_demo(settings: Settings, *, size: str = "default", days: int = 5) -> int:
    from pipelines.temporary_api import ensure_api, start_temporary_api

    started = time.perf_counter()
    home = settings.ensure_home()
    # From this (the main) thread, so the server dies with the command; and before Prefect is imported (the flows
    # below), so Prefect's settings read the PREFECT_API_URL it exports.
    start_temporary_api(settings)

    from data_contracts.synthetic_credit import DemoIncident, DemoPoison, write_demo_data
    from pipelines.batch_inference import run_batch
    from pipelines.commands.versions import show_status
    from pipelines.lifecycle import lifecycle
    from tasks.registration.register import record_registration, register_candidate
    from tasks.stores import ledger_for, policy_for, registry_for

    warm_up_in_background()
    sz = SIZES[size]
    step = _Steps()
    registry, ledger = registry_for(settings), ledger_for(settings)
    run, resumed = start_run(settings, registry, ledger, size=size, days=days)
    if resumed:
        console.print(f"resuming the demo interrupted in {home} (run {run}): its versions are reused, not made again",
                      highlight=False)
    with step("generate synthetic credit-default data"):
        data = write_demo_data(
            settings.data_dir, n_train=sz.n_train, n_golden=sz.n_golden, n_days=days, rows_per_day=sz.rows_per_day,
            seed=7, start=date(2026, 11, 1), incident_from_day=max(days - 1, 0),
            incident=DemoIncident(covariate_drift=1.0, null_spike=0.01, unseen_categories=0.005),
            poison=DemoPoison(),  # known poison in the training data: the poisoning screen's findings (README)
        )
    api_ready = False

    def wait_for_api() -> None:  # once, before the first registration or flow
        nonlocal api_ready
        if not api_ready:
            with step("wait until Prefect's API answers"):
                ensure_api(settings)
            api_ready = True

    outcomes = []
    for i, candidate in enumerate(CANDIDATES):
        earlier = resume_point(registry.versions(settings.model_name), ledger.entries(model_name=settings.model_name),
                               run, candidate.label)
        if earlier.decision is not None:
            console.print(f"[green]✓[/] candidate '{candidate.label}': v{earlier.record.version} decided before the "
                          f"interruption ({earlier.decision.action}, ledger row #{earlier.decision.seq})",
                          highlight=False)
            continue
        description = f"demo candidate {candidate.label}"
        if earlier.record is None:
            with step(f"train candidate '{candidate.label}' (MLP {list(candidate.hidden_sizes)}, "
                      f"{candidate.epochs} epochs)"):
                files = train_candidate(candidate, data.train, home / "demo" / "candidates" / candidate.label, seed=i,
                                        batch_size=sz.batch_size)
            wait_for_api()  # before anything is registered: a demo that cannot reach Prefect leaves no version
            with step("register it in MLflow"):
                record = register_candidate(
                    registry, ledger, name=settings.model_name, arch="mlp", config_path=files[0],
                    params_path=files[1], reference_path=files[2], contract_name=CONTRACT, actor=settings.actor,
                    description=description, extra_tags={RUN_TAG: run, CANDIDATE_TAG: candidate.label},
                    policy=policy_for(settings),
                    poisoning=policy_for(settings).poisoning, golden_path=data.golden,
                )
            screen = record.tags.get("lockgate.registration.poisoning", "pass")
            if screen != "pass":
                found = record.tags.get("lockgate.registration.poisoning_findings")
                console.print(f"    poisoning screen at registration: {screen}, {found} finding(s) on the injected "
                              f"poison ({data.poison})", highlight=False)
        else:
            record = earlier.record
            wait_for_api()
            with step(f"reuse v{record.version} of candidate '{candidate.label}', registered before the interruption"):
                record_registration(registry, ledger, record, actor=settings.actor, description=description)
        with step(f"lifecycle flow for v{record.version}"):
            outcome = lifecycle(version=record.version, golden=str(data.golden), current=str(data.partitions[0].features))
        outcomes.append(outcome)
        console.print(f"    v{outcome.version}: [bold]{outcome.decision}[/]")
        for line in outcome.gates:
            console.print(f"      {line}", highlight=False)
    wait_for_api()
    before = max((e.seq for e in ledger.entries(limit=1)), default=0)
    with step(f"batch-inference flow over {len(data.partitions)} daily partitions"):
        scored = run_batch(settings, partitions=[str(p.features.parent) for p in data.partitions]).outcomes
    finish_run(settings, run)
    for o in scored:
        console.print(f"    {o.partition}: {o.status}, {o.message}", highlight=False)
    if any(o.monitor != "none" for o in scored):
        console.print("    the last day's incident is flagged by monitoring (policy monitoring: alert), see the status",
                      highlight=False)
    respond_to_incidents(settings, ledger, since_seq=before, outcomes=scored)

    console.rule("summary")
    show_status(settings, limit=8)
    champion = registry.aliases(settings.model_name).get("champion")
    last = next((o for o in reversed(outcomes) if o.version == champion), None)
    console.print(f"\n[bold]champion: v{champion}[/]" + (f" — {'; '.join(last.reasons)}" if last else ""), highlight=False)
    console.print(f"evidence: {settings.evidence_dir}\npredictions: {settings.predictions_dir}\n"
                  f"quarantine: {settings.quarantine_dir}\nMLflow: mlflow ui --backend-store-uri {settings.tracking_uri}")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; step times: {step.report()}", highlight=False)
    return 0


def respond_to_incidents(settings: Settings, ledger, *, since_seq: int, outcomes) -> None:
    """The demo's incident response: the incidents its batch run opened (the last day's drift), each resolved with
    what the response was, then listed with their time to detect and time to resolve."""
    from rich.markup import escape

    from pipelines.commands.incidents import resolve
    from tasks.governance.audit_incidents import duration
    from tasks.governance.incidents import incidents_from, opened_document, seconds_between

    opened = [i for i in incidents_from(ledger.entries(model_name=settings.model_name)) if i.opened_seq > since_seq]
    flagged = ", ".join(o.partition for o in outcomes if o.monitor != "none") or "none"
    for incident in opened:
        if incident.status != "open" or incident.kind not in ("monitoring-alert", "rollback", "scoring-block"):
            continue
        reason = (f"demo response: the breach in {flagged} is the demo's injected incident (covariate drift, a null "
                  f"spike, unseen categories: data_contracts/synthetic_credit.py DemoIncident); "
                  + ("the champion was rolled back and the partition re-scored" if incident.kind == "rollback" else
                     "the champion kept scoring under monitoring: alert, the evidence was reviewed")
                  + "; the upstream feed would be fixed and the day re-scored with --force")
        resolve(settings, incident.incident_id, reason=reason)
    for incident in incidents_from(ledger.entries(model_name=settings.model_name)):
        if incident.opened_seq <= since_seq and incident.status != "open":
            continue
        doc = opened_document(incident)
        detect = seconds_between(doc.trigger.data_at if doc else None, incident.opened_at)
        state = (f"resolved by {incident.resolved_by} after "
                 f"{duration(seconds_between(incident.opened_at, incident.resolved_at))}"
                 if incident.resolved_at else "OPEN (`lockgate incidents resolve ID --reason ...`)")
        console.print(escape(f"    incident {incident.incident_id} [{incident.kind}] v{incident.version}: detected "
                             f"{duration(detect)} after its data landed, {state}"), highlight=False, soft_wrap=True)


# -- an interrupted demo is resumed, not repeated ----------------------------------------------------------------------
# A demo killed part-way (a busy host, Ctrl-C, kill -9) leaves versions registered by its steps. The next demo with
# the same --size and --days carries on with them: a version whose lifecycle never ended (no decision row in the
# ledger) runs its lifecycle again, one that ended is kept as decided, and nothing is registered twice, so an
# interrupted first demo followed by a finished one still makes v1 and v2. The run is named in
# LOCKGATE_HOME/demo/run.json (written before anything is registered) and on every version it registers (tags), so
# a kill at any point leaves it findable; a finished demo marks it finished, and the next demo starts a new run.
RUN_TAG, CANDIDATE_TAG = "lockgate.demo_run", "lockgate.demo_candidate"


@dataclass(frozen=True)
class ResumePoint:
    record: ModelVersionRecord | None  # this run's version of the candidate, when it was registered
    decision: LedgerEntry | None  # the ledger row that ended its lifecycle, when one did


def resume_point(records: list[ModelVersionRecord], entries: list[LedgerEntry], run: str, label: str) -> ResumePoint:
    """Where candidate ``label`` of demo run ``run`` stands, from the model's versions and ledger rows."""
    from tasks.governance.promotion_state import decision_row

    mine = [r for r in records if r.tags.get(RUN_TAG) == run and r.tags.get(CANDIDATE_TAG) == label]
    if not mine:
        return ResumePoint(None, None)
    record = max(mine, key=lambda r: r.version)
    return ResumePoint(record, decision_row(entries, record.version))


def _run_file(settings: Settings) -> Path:
    return settings.home_dir / "demo" / "run.json"


def _write_run(settings: Settings, state: dict) -> None:
    path = _run_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)  # whole or not at all, even under kill -9


def start_run(settings: Settings, registry, ledger, *, size: str, days: int) -> tuple[str, bool]:
    """(run id, resumed): the interrupted demo's run when it had this size and days, else a new run. An interrupted
    run of another size or days is closed first: its undecided versions are rejected, so none is left half-made."""
    try:
        prior = json.loads(_run_file(settings).read_text())
        prior = prior if isinstance(prior, dict) and isinstance(prior.get("id"), str) else None
    except (OSError, ValueError):
        prior = None
    if prior is not None and not prior.get("finished"):
        if prior.get("size") == size and prior.get("days") == days:
            return prior["id"], True
        _close_run(settings, registry, ledger, prior["id"],
                   why=f"its demo (--size {prior.get('size')} --days {prior.get('days')}) was interrupted and a demo "
                   f"with --size {size} --days {days} started instead")
    run = uuid.uuid4().hex[:12]
    _write_run(settings, {"id": run, "size": size, "days": days, "finished": False})
    return run, False


def _close_run(settings: Settings, registry, ledger, run: str, *, why: str) -> None:
    from tasks.governance.promotion import reject
    from tasks.registration.register import record_registration

    name = settings.model_name
    entries = ledger.entries(model_name=name)
    for label in (c.label for c in CANDIDATES):
        point = resume_point(registry.versions(name), entries, run, label)
        if point.record is not None and point.decision is None:
            record_registration(registry, ledger, point.record, actor=settings.actor)
            reject(registry, ledger, name=name, version=point.record.version, actor=settings.actor,
                   reason=f"not judged: {why}", policy=None, evidence={}, flow_run_id=None)
            console.print(f"v{point.record.version} (candidate '{label}' of the interrupted demo) rejected: {why}",
                          highlight=False)


def finish_run(settings: Settings, run: str) -> None:
    state = json.loads(_run_file(settings).read_text())
    _write_run(settings, {**state, "finished": True})


def warm_up_in_background() -> None:
    """The slow imports (GE, Evidently) while data is generated and models train (the temporary API starts in
    its own process meanwhile): fixed costs of the first lifecycle run, off the critical path."""
    import threading

    def imports():
        import evidently  # noqa: F401
        import great_expectations  # noqa: F401

    threading.Thread(target=imports, name="warm-imports", daemon=True).start()


class _Steps:
    """Prints each demo step with a spinner and records how long it took."""

    def __init__(self):
        self.times: list[tuple[str, float]] = []

    def __call__(self, title: str):
        import contextlib

        @contextlib.contextmanager
        def run():
            t0 = time.perf_counter()
            with console.status(title):
                yield
            took = time.perf_counter() - t0
            self.times.append((title, took))
            console.print(f"[green]✓[/] {title} [dim]({took:.1f} s)[/]")

        return run()

    def report(self) -> str:
        return ", ".join(f"{t.split(' (')[0][:32]} {s:.1f}s" for t, s in self.times)
