"""lockgate's Python API, for notebooks and scripts: the CLI's commands as functions returning the typed results the
CLI prints.

    import lockgate

    made = lockgate.init("wine-project", "wine.parquet", label="target")     # ProjectInit
    v = lockgate.register(config="cfg.json", params="p.msgpack", arch="mlp", project="wine-project")
    outcome = lockgate.lifecycle(v.version, project="wine-project")          # LifecycleOutcome
    lockgate.status(project="wine-project").champion                         # ModelStatus

Each function takes ``project=`` (a folder holding lockgate.yaml, or that file), like ``lockgate --project``;
without it the current folder's lockgate.yaml is used when there is one, then the ``LOCKGATE_*`` variables and
defaults, exactly as for the CLI (tasks/settings.py). An explicit argument beats the project's value. Bad input
raises ``tasks.errors.LockgateError`` (or ``data_contracts.contract.ContractError``) with the CLI's one-line message.

Like the CLI, a call sets the process's defaults for JAX, MLflow and GE (``JAX_PLATFORMS=cpu`` on a host without a
TPU, ...) before their first import, and ``lifecycle`` / ``score`` use a Prefect API: ``PREFECT_API_URL``, a running
``lockgate server``, or a temporary one started for this process. Nothing heavy (JAX, Great Expectations,
Evidently, Prefect, MLflow) is imported by ``import lockgate`` itself.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from pipelines.lifecycle import LifecycleOutcome
    from pipelines.status import ModelStatus
    from tasks.batch.run import BatchRun
    from tasks.drift.results import DriftResult
    from tasks.governance.incidents import Incident
    from tasks.project_init import ProjectInit
    from tasks.registry import ModelVersionRecord
    from tasks.settings import Settings
    from tasks.validation.gate import ValidationResult

__all__ = ["init", "register", "lifecycle", "validate", "drift", "score", "status", "incidents", "resolve_incident"]
PathLike = str | os.PathLike


def init(directory: PathLike, data: PathLike, *, label: str, golden: PathLike | None = None,
         name: str | None = None, id_column: str | None = None) -> ProjectInit:
    """``lockgate init DIRECTORY --from DATA --label LABEL``: write a project folder (draft contract inferred from
    ``data`` and ``golden``, commented policy, lockgate.yaml, copies of the data under data/). Never overwrites."""
    from tasks.project_init import init_project

    return init_project(directory, data, label=label, golden=golden, name=name, id_column=id_column)


def register(*, config: PathLike, params: PathLike, reference: PathLike | None = None,
             contract: str | PathLike | None = None, arch: str | None = None, model: str | None = None,
             description: str = "", intended_use: str = "", limitations: str = "",
             project: PathLike | None = None) -> ModelVersionRecord:
    """``lockgate register``: a new version of the project's model from a config JSON and a params file.

    Args:
      config, params: the model config (JSON) and params (a flax msgpack file or an orbax checkpoint folder).
      reference: training data snapshot; default the project's ``reference``.
      contract: contract name or YAML path; default the project's.
      arch: a built-in architecture (``mlp``, ``ft_transformer``, ``moe``).
      model: your model's entry point ``MODULE:ATTR``; default the project's ``model`` when ``arch`` is not given.
        Passed to registration only when set.
    """
    with _session(project) as settings:
        from tasks.registration.register import register_candidate
        from tasks.stores import ledger_for, policy_for, registry_for

        model = model if model is not None or arch is not None else settings.model
        if arch is None and model is None:
            from tasks.errors import LockgateError

            raise LockgateError("register needs arch= (a built-in architecture, e.g. 'mlp') or model= (your "
                                "MODULE:ATTR), or `model:` in the project's lockgate.yaml")
        chosen = {**({"arch": arch} if arch is not None else {}), **({"model": model} if model is not None else {})}
        if model is not None and arch is None:  # the user's package is looked up under the project folder
            from tasks.project import find_project

            found = find_project(settings.project)
            chosen["code_root"] = found.folder if found is not None else Path.cwd()
        return register_candidate(
            registry_for(settings), ledger_for(settings), name=settings.model_name, config_path=Path(config),
            params_path=Path(params), reference_path=Path(_given(reference, settings.reference, "reference")),
            contract_name=_contract_ref(_given(contract, settings.contract, "contract")), actor=settings.actor,
            description=description, intended_use=intended_use, limitations=limitations,
            policy=policy_for(settings), poisoning=policy_for(settings).poisoning, golden_path=settings.golden,
            **chosen)


def lifecycle(version: int, *, golden: PathLike | None = None, current: PathLike | None = None,
              project: PathLike | None = None) -> LifecycleOutcome:
    """``lockgate run lifecycle --version VERSION``: every gate, then champion or rejected.

    ``golden`` defaults to the project's; ``current`` (latest production data for drift) to the golden set."""
    with _session(project, flows=True) as settings:
        from pipelines.commands.runs import lifecycle_outcome

        return lifecycle_outcome(settings, version, Path(_given(golden, settings.golden, "golden")),
                                 Path(current) if current is not None else None)


def validate(data: PathLike, *, contract: str | PathLike | None = None, include_label: bool = False,
             project: PathLike | None = None) -> ValidationResult:
    """``lockgate validate [CONTRACT] DATA``: the validation GateResult (``decision`` pass / quarantine / fail,
    ``passed``, failing rows per expectation, evidence under LOCKGATE_HOME/validation/). ``data`` is only read."""
    with _session(project) as settings:
        from pipelines.commands.contract import validation_of

        return validation_of(settings, _contract_ref(_given(contract, settings.contract, "contract")), str(data),
                             include_label=include_label)


def drift(reference: PathLike, current: PathLike, *, contract: str | PathLike | None = None,
          prediction: str | None = None, out: PathLike | None = None,
          project: PathLike | None = None) -> DriftResult:
    """``lockgate drift REFERENCE CURRENT``: drift per column with the contract's methods (default the project's
    contract; without one, the reference schema's columns and Evidently's choices): the DriftResult (``decision``
    ok / warn / breach, a row per column in ``table()``), reports under ``out``."""
    with _session(project) as settings:
        from pipelines.commands.drift import drift_of

        ref = contract if contract is not None else settings.contract
        return drift_of(settings, str(reference), str(current), contract_ref=None if ref is None else _contract_ref(ref),
                        prediction=prediction, out=None if out is None else Path(out)).result


def score(partitions: list[PathLike] | None = None, *, dates: list[str] | None = None, force: bool = False,
          project: PathLike | None = None) -> BatchRun:
    """``lockgate run batch-inference PARTITION...`` (or, with ``dates``, ``lockgate backfill``: the date=YYYY-MM-DD
    folders under the input root): the champion scores each partition; the BatchRun (``outcomes`` per partition,
    rollback, monitoring before and after)."""
    with _session(project, flows=True) as settings:
        from pipelines.commands.runs import batch_outcome

        return batch_outcome(settings, partitions=[str(p) for p in partitions] if partitions else None,
                             dates=list(dates) if dates else None, force=force)


def status(*, limit: int = 10, project: PathLike | None = None) -> ModelStatus:
    """``lockgate status``: aliases, monitoring, versions, the last ``limit`` ledger entries, ledger and registry
    checks (an interrupted promotion or rollback is recovered first)."""
    with _session(project) as settings:
        from pipelines.status import model_status

        return model_status(settings, limit=limit)


def incidents(*, include_resolved: bool = False, model: str | None = None,
              project: PathLike | None = None) -> list[Incident]:
    """``lockgate incidents [--all] [--model NAME]``: the open incidents (``include_resolved``: resolved ones too),
    oldest first; each with its id, kind, model, version, opened_at, evidence (role -> path) and, once resolved, who and why."""
    with _session(project) as settings:
        from pipelines.commands.incidents import incident_list

        return incident_list(settings, include_resolved=include_resolved, model=model)


def resolve_incident(incident_id: str, *, reason: str, resolver: str | None = None, key: PathLike | None = None,
                     project: PathLike | None = None) -> Incident:
    """``lockgate incidents resolve ID --reason TEXT [--as USER] [--key PATH]``: the resolved Incident; an unknown or
    already resolved id, or a resolver the environment's approval rules refuse, raises LockgateError."""
    with _session(project) as settings:
        from pipelines.commands.incidents import resolve

        return resolve(settings, incident_id, reason=reason, resolver=resolver,
                       key=None if key is None else str(key))[0]


@contextmanager
def _session(project: PathLike | None, *, flows: bool = False) -> Iterator[Settings]:
    """The settings of ``project`` (else the current folder's), with LOCKGATE_PROJECT naming it for the duration of
    the call (flows read their settings themselves), and the process set up like the CLI's."""
    from pydantic import ValidationError

    from tasks.errors import LockgateError
    from tasks.settings import Settings

    before = os.environ.get("LOCKGATE_PROJECT")
    if project is not None:
        os.environ["LOCKGATE_PROJECT"] = str(Path(project).expanduser().resolve())
    try:
        try:
            settings = Settings()
        except ValidationError as e:
            err = e.errors()[0]
            raise LockgateError(f"invalid setting: {err['loc'][0] if err['loc'] else ''}: {err['msg']}") from None
        if flows:
            from pipelines.runtime import prepare_runtime

            prepare_runtime(settings)
        else:
            from pipelines.runtime import process_defaults

            settings.ensure_home()
            process_defaults(settings.jax_cache_path)
        yield settings
    finally:
        if before is None:
            os.environ.pop("LOCKGATE_PROJECT", None)
        else:
            os.environ["LOCKGATE_PROJECT"] = before


def _given(value, setting, what: str):
    if value is not None:
        return value
    if setting is not None:
        return setting
    from tasks.errors import LockgateError

    raise LockgateError(f"{what}= is required here: no project file (lockgate.yaml) names one; pass {what}=, or "
                        "project= a folder made by lockgate.init")


def _contract_ref(value) -> str:
    """A contract name stays a name; a path becomes an absolute path string (load_contract's two forms)."""
    return str(Path(value).expanduser().resolve()) if isinstance(value, os.PathLike) else str(value)
