"""A lifecycle on a 500-row golden set with the MLP, cold (first run of the day) and warm, and where its time goes.

`python -m benchmarks.everyday_lifecycle` prints one line per figure. Each side runs in its own child processes
against its own LOCKGATE_HOME (champion v1 made fast: register -> compile gate on cpu -> promote), sharing one
Prefect API started here (its start is not counted: `lockgate server` or the first command of the day pays it),
on the demo policy (3 targets x 4 buckets x 3 variants = 36 compiles; 1,000 resamples at most) with the canary's
margins and latency limits widened so both candidates pass every gate on 500 rows on a busy host (this times
the gates; it does not judge the models):

- cold, new architecture: a fresh process imports the flow and runs `lifecycle` for v2, an architecture never
  compiled in that home (every compile-report row compiled);
- warm: the same process then runs `lifecycle` for v3, the same architecture retrained;
- cold, known architecture (the usual first run of the day): another fresh process runs v4, the same architecture
  again, with what earlier runs left on disk (compile-report cache, JAX's compilation cache).

"before" is the old behaviour restored by settings, measured in the same run, alternating with "after":
``compilation.compile_workers: 2``, ``compilation.group_targets: false``, ``compilation.compile_early: false``,
``canary.bootstrap_stopping: fixed``
and LOCKGATE_JAX_COMPILATION_CACHE=false (the jitted reference model of the bucket check has no setting).
Phases are exclusive (a call inside a timed call counts once, for the inner phase), so they add up to the wall
time; "gate bodies" is what the gate tasks do outside the named phases (reading tables and files, features).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

try:
    from benchmarks.bench_everyday import Figure
except ImportError:  # the command-speed benchmark is another module; this one runs alone too

    @dataclass
    class Figure:
        name: str
        seconds: float
        goal_s: float | None = None
        floor_s: float | None = None
        note: str = ""
        verdict: str = ""


GOLDEN_ROWS = 500
COLD_GOAL_S, WARM_GOAL_S = 30.0, 15.0
PHASES = ("imports", "compile report", "export and bucket checks", "bootstrap", "latency", "shadow",
          "model loads and scoring", "mlflow logging", "prefect overhead", "drift", "validation", "reports",
          "signing", "gate bodies")
BENCH_POLICY = {"canary": {"margins": {"auc": 0.05, "log_loss": 0.05, "brier": 0.02, "ece": 0.06},
                           "slice_margin": 0.1, "shadow_decides": False, "max_p99_ratio": 10.0, "max_p99_ms": {}}}
SIDES = {
    "before": ({"compilation": {"compile_workers": 2, "group_targets": False, "compile_early": False},
                "canary": {"bootstrap_stopping": "fixed"}}, {"LOCKGATE_JAX_COMPILATION_CACHE": "false"}),
    "after": ({}, {}),
}


# ---------------------------------------------------------------------------------------------- phase timer
class PhaseTimer:
    """Exclusive wall time per phase: time spent in a timed call nested inside another goes to the inner one."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._local = threading.local()

    def _stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def wrap(self, phase: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            stack = self._stack()
            frame = [0.0]
            stack.append(frame)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                stack.pop()
                self.totals[phase] += elapsed - frame[0]
                if stack:
                    stack[-1][0] += elapsed
        timed.__wrapped_phase__ = phase
        return timed

    def patch(self, module, attr: str, phase: str) -> None:
        setattr(module, attr, self.wrap(phase, getattr(module, attr)))

    def reset(self) -> None:
        self.totals.clear()


def instrument(timer: PhaseTimer) -> None:
    """Wrap the calls each phase is made of (module attributes the gates look up when they run)."""
    import importlib

    from mlflow.tracking import MlflowClient

    from tasks import gates

    for name in [n for n in vars(MlflowClient) if not n.startswith("_") and callable(getattr(MlflowClient, n))]:
        setattr(MlflowClient, name, timer.wrap("mlflow logging", getattr(MlflowClient, name)))
    for task_name in ("mark_challenger", "check_contract", "validate_data", "compile_model", "evaluate_canary",
                      "detect_drift", "approve_automatically", "promote_model", "reject_candidate",
                      "publish_model_card"):
        task = getattr(gates, task_name)
        task.fn = timer.wrap("gate bodies", task.fn)
    for attr in ("_markdown_artifact", "_table_artifact", "publish_table"):
        if hasattr(gates, attr):
            timer.patch(gates, attr, "prefect overhead")
    table = [
        ("tasks.compilation.gate", "compile_report", "compile report"),
        ("tasks.compilation.gate", "compile_evidence", "export and bucket checks"),
        ("tasks.canary.stats", "bootstrap_deltas", "bootstrap"),
        ("tasks.canary.stats", "slice_metrics", "bootstrap"),
        ("tasks.canary.evidence", "latency_report", "latency"),
        ("tasks.canary.evidence", "shadow_report", "shadow"),
        ("tasks.canary.evidence", "canary_plots", "reports"),
        ("tasks.registration.inference", "load_compiled", "model loads and scoring"),
        ("tasks.registration.inference", "variant_scores", "model loads and scoring"),
        ("tasks.registration.pyfunc_logging", "log_version_pyfunc", "mlflow logging"),
        ("tasks.drift.gate", "drift_evidence", "drift"),
        ("tasks.validation.gate", "validate_dataset", "validation"),
        ("tasks.governance.model_card", "write_model_card", "reports"),
        ("tasks.governance.artifact_signature", "sign_version", "signing"),
        ("tasks.governance.artifact_signature", "verify_version", "signing"),
    ]
    for module, attr, phase in table:
        timer.patch(importlib.import_module(module), attr, phase)


# ---------------------------------------------------------------------------------------------- the home
def _write_candidate(folder: Path, *, hidden: tuple[int, ...], epochs: int, seed: int, n_train: int) -> dict:
    from datetime import date

    from data_contracts.contract import load_contract
    from data_contracts.synthetic_credit import generate_frame
    from models.config import MLPConfig
    from models.features import feature_matrix, fit_feature_spec
    from models.params_io import save_params
    from models.train import train_model

    contract = load_contract("credit_default")
    train = generate_frame(n_train, seed=seed, day=date(2026, 10, 1))
    spec = fit_feature_spec(train, contract.numeric_features, contract.categorical_features)
    config = MLPConfig(num_features=spec.num_features, hidden_sizes=hidden)
    params = train_model(feature_matrix(train, spec), train[contract.label_column].to_numpy(), config, epochs=epochs,
                         batch_size=64, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    save_params(params, folder / "params.msgpack")
    train.to_parquet(folder / "reference.parquet", index=False)
    return {"config": folder / "config.json", "params": folder / "params.msgpack",
            "reference": folder / "reference.parquet"}


def write_policy(path: Path, overrides: dict) -> Path:
    """The demo policy (36 compiles) with ``overrides`` merged section by section."""
    import yaml

    from tasks.settings import DEMO_POLICY

    doc = yaml.safe_load(Path(DEMO_POLICY).read_text())
    for layer in (BENCH_POLICY, overrides):
        for section, keys in layer.items():
            doc[section] = {**doc.get(section, {}), **keys}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def build_home(root: Path) -> None:
    """Golden set, v1 champion (small MLP, compiled on cpu only to keep the set-up short), v2 and v3 registered."""
    from datetime import date

    from data_contracts.synthetic_credit import generate_frame
    from tasks import gates
    from tasks.governance.promotion import promote
    from tasks.registration.register import register_candidate
    from tasks.settings import Settings
    from tasks.stores import ledger_for, new_lifecycle_dir, policy_for, registry_for

    settings = Settings()
    policy, registry, ledger = policy_for(settings), registry_for(settings), ledger_for(settings)
    generate_frame(GOLDEN_ROWS, seed=100, day=date(2026, 10, 2), id_offset=10**6).to_parquet(
        root / "golden.parquet", index=False)
    versions = []
    for label, hidden, epochs, seed, n in (("v1", (16,), 6, 1, 3000), ("v2", (32, 16), 6, 2, 3000),
                                           ("v3", (32, 16), 6, 3, 3000), ("v4", (32, 16), 6, 4, 3000)):
        files = _write_candidate(root / label, hidden=hidden, epochs=epochs, seed=seed, n_train=n)
        versions.append(register_candidate(registry, ledger, name=settings.model_name, arch="mlp",
                                           config_path=files["config"], params_path=files["params"],
                                           reference_path=files["reference"], contract_name="credit_default",
                                           actor="bench"))
    v1 = versions[0]
    cpu_only = policy.model_copy(update={"compilation": policy.compilation.model_copy(
        update={"targets": ["cpu"], "required_targets": ["cpu"]})})
    assert gates.compile_model.fn(settings, cpu_only, v1, str(root / "golden.parquet"),
                                  new_lifecycle_dir(settings, settings.model_name, v1.version)).passed
    promote(registry, ledger, name=settings.model_name, version=v1.version, actor="bench", reason="bench champion",
            policy=policy.name, evidence={}, flow_run_id=None, expected_champion=None)


# ---------------------------------------------------------------------------------------------- children
def _child_env(root: Path, api_url: str, env: dict) -> dict:
    shared = ("LOCKGATE_COMPILE_CACHE_DIR", "LOCKGATE_JAX_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")  # cold is cold
    return {**{k: v for k, v in os.environ.items() if k not in shared}, "LOCKGATE_HOME": str(root / "home"),
            "LOCKGATE_POLICY_FILE": str(root / "policy.yaml"), "LOCKGATE_ACTOR": "bench", "PREFECT_API_URL": api_url,
            "JAX_PLATFORMS": "cpu", **env}


RUNS = {"run": (("cold", 2), ("warm", 3)), "known": (("known", 4),)}
LABELS = {"cold": "cold, new architecture", "warm": "warm", "known": "cold, known architecture"}


def _run_lifecycles(root: Path, runs: tuple) -> dict:
    """In a fresh process: import the flow, run each (label, version) in turn; seconds and phases of each (the
    first counts the imports)."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    timer = PhaseTimer()
    from pipelines.lifecycle import lifecycle

    instrument(timer)
    imports = time.perf_counter() - t0
    golden = str(root / "golden.parquet")
    out = {}
    for i, (label, version) in enumerate(runs):
        extra = imports if i == 0 else 0.0
        timer.reset()
        t1, cpu1 = time.perf_counter(), (cpu0 if i == 0 else _cpu_seconds())
        outcome = lifecycle(version=version, golden=golden)
        wall = time.perf_counter() - t1 + extra
        cpu = _cpu_seconds() - cpu1
        phases = dict(timer.totals)
        phases["imports"] = extra
        # what the flow's own frame does outside every timed call: Prefect's task and flow runs, the flow's glue
        phases["prefect overhead"] = phases.get("prefect overhead", 0.0) + wall - sum(phases.values())
        out[label] = {"seconds": wall, "cpu_seconds": cpu, "phases": phases, "decision": outcome.decision,
                      "gates": outcome.gates}
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the compile children): on a busy shared machine the
    wall time stretches, the CPU time much less."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(mode: str, root: Path) -> None:
    if mode == "build":
        build_home(root)
        print(json.dumps({}))
    else:
        print(json.dumps(_run_lifecycles(root, RUNS[mode])))


def _spawn(mode: str, root: Path, api_url: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.everyday_lifecycle", "--child", mode, str(root)],
                          env=_child_env(root, api_url, env), capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _start_api(root: Path) -> tuple[str, object]:
    from pipelines.temporary_api import start_temporary_api
    from tasks.settings import Settings

    os.environ["LOCKGATE_HOME"] = str(root / "api-home")
    settings = Settings()
    api = start_temporary_api(settings)
    api.wait_ready()
    return os.environ["PREFECT_API_URL"], api


def measure(sides: dict[str, tuple[dict, dict]] | None = None) -> dict[str, dict]:
    """{side: {label: {"seconds", "phases", "decision", "gates"}}} for each side ((policy overrides, environment)),
    each in its own home; the sides' runs alternate so the shared machine's load hits them alike."""
    sides = sides if sides is not None else SIDES
    base = Path(tempfile.mkdtemp(prefix="lockgate-bench-lifecycle-"))
    api_url, _ = _start_api(base)
    for side, (overrides, env) in sides.items():
        (base / side).mkdir()
        write_policy(base / side / "policy.yaml", overrides)
        _spawn("build", base / side, api_url, env)
    results: dict[str, dict] = {side: {} for side in sides}
    for mode in RUNS:
        for side, (_, env) in sides.items():
            results[side].update(_spawn(mode, base / side, api_url, env))
    return results


def _verdict(seconds: float, goal: float | None) -> str:
    if goal is None:
        return ""
    return "meets goal" if seconds <= goal else "misses goal"


def figures(results: dict[str, dict] | None = None) -> list[Figure]:
    """The lifecycle's wall time cold (new and known architecture) and warm, after, with the before side in the
    note; then one line per phase and run."""
    results = results or measure()
    after, before = results["after"], results.get("before")
    load = "load average %.2f %.2f %.2f" % os.getloadavg()
    goals = {"cold": COLD_GOAL_S, "known": COLD_GOAL_S, "warm": WARM_GOAL_S}
    out = []
    for label in ("known", "cold", "warm"):
        s = after[label]["seconds"]
        note = f"{GOLDEN_ROWS}-row golden set, MLP; {after[label]['decision']}; CPU {after[label]['cpu_seconds']:.1f} s"
        if before:
            b = before[label]["seconds"]
            note += f"; before {b:.1f} s ({b / s:.2f}x), CPU {before[label]['cpu_seconds']:.1f} s"
        out.append(Figure(name=f"lifecycle {LABELS[label]}", seconds=round(s, 2), goal_s=goals[label],
                          note=f"{note}; {load}", verdict=_verdict(s, goals[label])))
    for label in ("known", "cold", "warm"):
        for phase in PHASES:
            s = after[label]["phases"].get(phase, 0.0)
            note = f"before {before[label]['phases'].get(phase, 0.0):.2f} s" if before else ""
            out.append(Figure(name=f"lifecycle {LABELS[label]}: {phase}", seconds=round(s, 2), note=note))
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]))
        return
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sides = {"after": SIDES["after"]} if "--after-only" in sys.argv else None
    results = measure(sides)
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
    for f in figures(results):
        goal = f" (goal {f.goal_s:g} s: {f.verdict})" if f.goal_s is not None else ""
        print(f"{f.name}: {f.seconds:.2f} s{goal}{'; ' + f.note if f.note else ''}", flush=True)


if __name__ == "__main__":
    main()
