"""The CLI's commands, one module per command group (imported only after argument parsing).

:func:`dispatch` maps a parsed command to its group's function. Groups import
pipelines/exit_codes.py and the console, never pipelines/cli.py.
"""

from __future__ import annotations

import argparse

from tasks.errors import LockgateError
from tasks.settings import Settings


def project_default(value, setting, option: str):
    """A command's explicit ``value``, else the project's ``setting`` (lockgate.yaml, or its LOCKGATE_* variable),
    else a one-line error naming ``option``."""
    if value is not None:
        return value
    if setting is not None:
        return setting
    raise LockgateError(f"{option} is required here: no project file (lockgate.yaml) names one; pass {option}, or run "
                        "in a project folder (`lockgate init DIR --from DATA --label COLUMN`, then --project DIR)")


def _fill_project_defaults(args: argparse.Namespace, settings: Settings) -> None:
    """Options a project's lockgate.yaml provides, filled where the command line left them out."""
    command = args.command
    if command == "register":
        args.contract = project_default(args.contract, settings.contract, "--contract")
        args.reference = project_default(args.reference, settings.reference, "--reference")
        if args.model is None and args.arch is None:  # the project's model entry point (lockgate.yaml `model:`)
            args.model = project_default(None, settings.model, "--model or --arch")
    elif command == "run" and args.flow == "lifecycle":
        args.golden = project_default(args.golden, settings.golden, "--golden")
    elif command == "validate":
        args.contract = project_default(args.contract, settings.contract, "CONTRACT")
    elif command == "drift" and args.contract is None:
        args.contract = settings.contract


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command; its exit code (pipelines/exit_codes.py)."""
    _fill_project_defaults(args, settings)
    command = args.command
    if command == "demo":
        from pipelines.commands.demo import run_demo

        return run_demo(settings, size=args.size, days=args.days)
    if command in ("register", "compile", "status"):
        from pipelines.commands import versions

        if command == "register":
            return versions.register(settings, args)
        if command == "compile":
            return versions.compile_command(settings, args.model, targets=args.target, buckets=args.bucket,
                                            variants=args.variant)
        return versions.status_command(settings, limit=args.limit)
    if command in ("run", "backfill", "serve", "unblock"):
        from pipelines.commands import runs

        return runs.dispatch(args, settings)
    if command in ("server", "pending", "approve", "reject"):
        from pipelines.commands import approval

        if command == "server":
            return approval.server_command(settings, args)
        if command == "pending":
            return approval.pending_command(settings)
        return approval.respond_command(settings, args, command)
    if command == "rollback" or (command == "audit" and args.audit_command == "verify"):
        from pipelines.commands import ledger

        if command == "rollback":
            return ledger.rollback_command(settings, args.model or settings.model_name, reason=args.reason,
                                           to_version=args.to_version)
        return ledger.audit_verify(settings, model=args.model, recover_first=args.recover)
    if command in ("contract", "validate"):
        from pipelines.commands import contract

        if command == "validate":
            return contract.validate_command(settings, args.contract, args.data, include_label=args.include_label)
        if args.contract_command == "lint":
            return contract.contract_lint(project_default(args.file, settings.contract, "FILE"), build_suites=args.ge)
        return contract.contract_diff_command(args.old, args.new)
    if command == "policy":
        from pipelines.commands.policy import policy_lint

        return policy_lint(args.file or settings.policy_file)
    if command == "drift":
        from pipelines.commands.drift import drift_command

        return drift_command(settings, args.reference, args.current, contract_ref=args.contract,
                             prediction=args.prediction, out=args.out)
    if command == "incidents":
        from pipelines.commands.incidents import incidents_dispatch

        return incidents_dispatch(args, settings)
    if command in ("audit", "model-card"):
        from pipelines.commands.audit import audit_dispatch

        return audit_dispatch(args, settings)
    raise LockgateError(f"unknown command {command}")
