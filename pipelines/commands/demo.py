"""`lockgate demo`: the whole lifecycle on embedded defaults, end to end.

Generates synthetic credit-default data, trains a small first candidate and makes
it champion through the `lifecycle` flow, trains a bigger second candidate and runs
`lifecycle` again (promoted or rejected on the evidence), then scores the daily
partitions with `batch-inference` and prints where everything is.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.commands.console import console
from tasks.settings import Settings
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
    from data_contracts.synthetic_credit import DemoIncident, write_demo_data
    from pipelines.batch_inference import run_batch
    from pipelines.commands.versions import show_status
    from pipelines.lifecycle import lifecycle
    from tasks.registration.register import register_candidate
    from tasks.stores import ledger_for, registry_for

    from pipelines.temporary_api import ensure_api, start_temporary_api

    started = time.perf_counter()
    home = settings.ensure_home()
    start_temporary_api(settings)  # from this (the main) thread: the server dies with the command
    warm_up_in_background()
    sz = SIZES[size]
    step = _Steps()
    with step("generate synthetic credit-default data"):
        data = write_demo_data(
            settings.data_dir, n_train=sz.n_train, n_golden=sz.n_golden, n_days=days, rows_per_day=sz.rows_per_day,
            seed=7, start=date(2026, 11, 1), incident_from_day=max(days - 1, 0),
            incident=DemoIncident(covariate_drift=1.0, null_spike=0.01, unseen_categories=0.005),
        )
    registry, ledger = registry_for(settings), ledger_for(settings)
    outcomes = []
    for i, candidate in enumerate(CANDIDATES):
        with step(f"train candidate '{candidate.label}' (MLP {list(candidate.hidden_sizes)}, {candidate.epochs} epochs)"):
            files = train_candidate(candidate, data.train, home / "demo" / "candidates" / candidate.label, seed=i,
                                    batch_size=sz.batch_size)
        with step("register it in MLflow"):
            record = register_candidate(
                registry, ledger, name=settings.model_name, arch="mlp", config_path=files[0], params_path=files[1],
                reference_path=files[2], contract_name=CONTRACT, actor=settings.actor,
                description=f"demo candidate {candidate.label}",
            )
        if i == 0:
            with step("wait until Prefect's temporary API answers"):
                ensure_api(settings)
        with step(f"lifecycle flow for v{record.version}"):
            outcome = lifecycle(version=record.version, golden=str(data.golden), current=str(data.partitions[0].features))
        outcomes.append(outcome)
        console.print(f"    v{outcome.version}: [bold]{outcome.decision}[/]")
        for line in outcome.gates:
            console.print(f"      {line}", highlight=False)
    with step(f"batch-inference flow over {len(data.partitions)} daily partitions"):
        scored = run_batch(settings, partitions=[str(p.features.parent) for p in data.partitions]).outcomes
    for o in scored:
        console.print(f"    {o.partition}: {o.status}, {o.message}", highlight=False)
    if any(o.monitor != "none" for o in scored):
        console.print("    the last day's incident is flagged by monitoring (policy monitoring: alert), see the status",
                      highlight=False)

    console.rule("summary")
    show_status(settings, limit=8)
    champion = registry.aliases(settings.model_name).get("champion")
    last = next((o for o in reversed(outcomes) if o.version == champion), None)
    console.print(f"\n[bold]champion: v{champion}[/]" + (f" — {'; '.join(last.reasons)}" if last else ""), highlight=False)
    console.print(f"evidence: {settings.evidence_dir}\npredictions: {settings.predictions_dir}\n"
                  f"quarantine: {settings.quarantine_dir}\nMLflow: mlflow ui --backend-store-uri {settings.tracking_uri}")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; step times: {step.report()}", highlight=False)
    return 0


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
