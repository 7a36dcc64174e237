"""The `lockgate` command. Heavy libraries (Prefect, MLflow, JAX, GE, Evidently) load only inside commands,
so `lockgate --help` is instant.

Exit codes: 0 done; 2 bad input or configuration (one-line error), or contract lint errors,
or a run that is not awaiting approval (`approve`, `reject`); 3 candidate rejected, a
required compile target does not fit, a breaking contract change (`contract diff`), a
failed batch (`validate`), a drift breach (`drift`) or a response the paused run refused
(`approve`, `reject`); 4 some partitions failed; 1 unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_NOT_PROMOTED, EXIT_PARTITIONS_FAILED = 0, 1, 2, 3, 4
EXIT_BREAKING = EXIT_VALIDATION_FAILED = EXIT_DRIFT_BREACH = EXIT_NOT_PROMOTED  # 3: "not let through"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate",
        description="Governed deployment lifecycle for JAX/Flax models: validate, compile, canary, drift, approve, "
        "promote, score. Settings come from LOCKGATE_* environment variables (LOCKGATE_HOME, default ./.lockgate).",
        epilog="Exit codes: 0 ok, 2 bad input (or contract lint errors), 3 candidate not promoted / required target "
        "does not fit / breaking contract change / batch failed validation / drift breach / approval refused, 4 "
        "partitions failed, 1 unexpected error.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show Prefect's INFO logs on the console")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="generate demo data, train two candidates, run the lifecycle twice, score days",
                          description="End to end on the embedded defaults: synthetic credit-default data, two Flax MLP "
                          "candidates, lifecycle for each, batch inference over daily partitions, and a summary.")
    demo.add_argument("--size", choices=["small", "default"], default="default", help="data size (small is for tests)")
    demo.add_argument("--days", type=_positive_int, default=5, help="daily production partitions to generate and score")

    reg = sub.add_parser("register", help="register your own candidate as a new model version",
                         description="Create a model version from an architecture, its config, a params file, the "
                         "reference (training) data and the data contract name.")
    reg.add_argument("--arch", required=True, help="architecture in models/ (e.g. mlp)")
    reg.add_argument("--config", required=True, type=Path, help="model config JSON (e.g. {\"num_features\": 27})")
    reg.add_argument("--params", required=True, type=Path, help="params file written by flax.serialization (msgpack)")
    reg.add_argument("--reference", required=True, type=Path, help="reference/training data parquet")
    reg.add_argument("--contract", required=True, help="data contract name in data_contracts/ (e.g. credit_default)")
    reg.add_argument("--description", default="", help="free text recorded with the version")

    run = sub.add_parser("run", help="run a flow", description="Run a lockgate flow (on Prefect) now.")
    flows = run.add_subparsers(dest="flow", required=True, metavar="FLOW")
    lc = flows.add_parser("lifecycle", help="take a version through every gate to champion or rejection",
                          description="validate -> compile -> canary -> drift -> approval -> promote or reject")
    lc.add_argument("--version", required=True, type=int, help="registered model version")
    lc.add_argument("--golden", required=True, type=Path, help="labeled golden set parquet")
    lc.add_argument("--current", type=Path, help="latest production data for drift (default: the golden set)")
    bi = flows.add_parser("batch-inference", help="score partitions with the champion",
                          description="Validate, quarantine, score and monitor each partition with the champion.")
    bi.add_argument("partitions", nargs="+", type=Path, help="parquet files or hive partition folders")
    bi.add_argument("--force", action="store_true", help="re-score partitions already scored by this version")

    comp = sub.add_parser("compile", help="AOT-compile a version for deployment targets and print the report",
                          description="Compile MODEL[:VERSION] (or MODEL@ALIAS) ahead of time for each target x bucket x "
                          "variant (TPU slices compile from this host through libtpu) and print compile time, peak "
                          "memory per device against HBM, GFLOP, estimated latency and a verdict per target. Targets, "
                          "buckets and variants default to the policy's.")
    comp.add_argument("model", metavar="MODEL[:VERSION]", help="e.g. credit-default, credit-default:3, credit-default@champion "
                      "(default version: the latest)")
    comp.add_argument("--target", action="append", help="deployment target (repeatable), e.g. cpu, v5e-4, v6e-8")
    comp.add_argument("--bucket", action="append", type=int, help="batch bucket (repeatable), e.g. 1, 1024")
    comp.add_argument("--variant", action="append", choices=["f32", "bf16", "int8"], help="precision variant (repeatable)")

    con = sub.add_parser("contract", help="check a data contract or compare two versions",
                         description="Data contract tools (ODCS v3 YAML, see data_contracts/).")
    cons = con.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    lint = cons.add_parser("lint", help="check a contract file (exit 0 clean or warnings only, 2 on errors)",
                           description="Load the contract and build its Great Expectations suite with and without the "
                           "label; print errors and warnings (no owner, column without description). Exit 0 when "
                           "there are no errors, 2 when there are.")
    lint.add_argument("file", metavar="FILE", help="contract YAML path or a contract name in data_contracts/")
    cdiff = cons.add_parser("diff", help="list changes between two contracts (exit 3 if any is breaking)",
                            description="Compare OLD with NEW column by column: removed/added columns, type, range, "
                            "allowed set, required, unique, pattern, row count, label/id columns, version bump. "
                            "Exit 0 when no change is breaking, 3 when one is.")
    cdiff.add_argument("old", metavar="OLD", help="old contract (path or name)")
    cdiff.add_argument("new", metavar="NEW", help="new contract (path or name)")

    val = sub.add_parser("validate", help="validate a dataset against a contract (exit 3 if the batch fails)",
                         description="Validate DATA against CONTRACT with the contract's Great Expectations suite and "
                         "the policy's validation limits. Verdict pass / quarantine / fail; invalid rows go to a "
                         "quarantine parquet with their failed expectations, the GE result to JSON, both under "
                         "LOCKGATE_HOME/validation/<contract>/<data name>/. The input is never modified. Exit 0 on "
                         "pass or on quarantine within the policy's limit, 3 on fail, 2 on unreadable input.")
    val.add_argument("contract", metavar="CONTRACT", help="contract name in data_contracts/ or a YAML path")
    val.add_argument("data", metavar="DATA", help="parquet file or hive-partitioned folder, local or a pyarrow "
                     "filesystem URI (s3://..., gs://..., file:///...)")
    val.add_argument("--include-label", action="store_true", help="expect the label column too (training/golden data)")

    dr = sub.add_parser("drift", help="compare CURRENT with REFERENCE column by column (exit 3 on a breach)",
                        description="Measure drift per column with Evidently's stattests: method and threshold from "
                        "the contract (else Evidently's own choice, made on the full data), exact from mergeable "
                        "per-partition summaries or within a stated bound, at any size with flat memory. Prints the "
                        "table (method, score, threshold, verdict, null/unseen/out-of-range shares) and the policy's "
                        "decision; writes Evidently's HTML report and JSON snapshot and drift.json. Exit 0 on ok or "
                        "warn, 3 on breach, 2 on unreadable input or different schemas.")
    dr.add_argument("reference", metavar="REFERENCE", help="reference data: parquet file, hive folder or URI (s3://...)")
    dr.add_argument("current", metavar="CURRENT", help="current data, same forms")
    dr.add_argument("--contract", metavar="NAME", help="data contract (name or YAML path): its features and drift "
                    "methods; default: every numeric and string column of the reference, Evidently's methods")
    dr.add_argument("--prediction", metavar="COLUMN", help="the model's score column, measured as prediction drift")
    dr.add_argument("--out", type=Path, help="report folder (default LOCKGATE_HOME/drift/<current name>)")

    srv = sub.add_parser("server", help="start, stop or check a local Prefect server (approvals, schedules)",
                         description="A Prefect server on 127.0.0.1 in the background, its SQLite database under "
                         "LOCKGATE_HOME/prefect-server. While it runs, lockgate commands without PREFECT_API_URL use "
                         "it, so a run paused for approval can be approved from another terminal or its UI. "
                         "Production sets PREFECT_API_URL to a shared server instead.")
    srvs = srv.add_subparsers(dest="server_command", required=True, metavar="ACTION")
    sstart = srvs.add_parser("start", help="start the server and wait until it answers (15-30 s)",
                             description="Start `prefect server start --host 127.0.0.1` in the background, wait for "
                             "its health check, record its pid and URL. Does nothing if it already runs.")
    sstart.add_argument("--port", type=_positive_int, default=4200, help="port on 127.0.0.1 (default 4200)")
    srvs.add_parser("stop", help="stop the server started by `lockgate server start`",
                    description="Stop the server recorded for this LOCKGATE_HOME (its database is kept).")
    srvs.add_parser("status", help="whether the server runs, its URL and pid",
                    description="Print whether this LOCKGATE_HOME's server runs, with its URL, pid and log.")

    sub.add_parser("pending", help="runs paused for approval, with their evidence summary",
                   description="List lifecycle runs paused for a human decision: run id, model, version, who "
                   "requested it and when, when it expires, approvals so far and the gate decisions.")
    for verb, noun in (("approve", "an approval"), ("reject", "a rejection")):
        resp = sub.add_parser(verb, help=f"{verb} a run paused for approval",
                              description=f"Resume paused run RUN with {noun}. The run authorises the response "
                              "against the policy (named approvers, separation of duties, distinct approvers, "
                              "expiry) and records it in the ledger; this command prints that verdict. Exit 0 when "
                              "it counted, 3 when the run refused it, 2 when RUN is not awaiting approval.")
        resp.add_argument("run", metavar="RUN", help="flow run id (see `lockgate pending`)")
        resp.add_argument("--reason", required=True, help="why; recorded in the ledger")
        resp.add_argument("--as", dest="approver", metavar="USER",
                          help="approver name (default: LOCKGATE_ACTOR or the login name)")
        resp.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                          help="how long to wait for the run's verdict (default 30)")

    st = sub.add_parser("status", help="champion, challenger, versions and the last decisions with reasons")
    st.add_argument("--limit", type=int, default=10, help="ledger entries to show")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = os.environ.get("LOCKGATE_DEBUG") == "1"
    try:
        from pydantic import ValidationError

        from tasks.errors import LockgateError

        try:
            from tasks.settings import Settings

            settings = Settings()
        except ValidationError as e:
            raise LockgateError(f"invalid LOCKGATE_* setting: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
        from pipelines.runtime import prepare_runtime

        prepare_runtime(settings, verbose=args.verbose)
        from pipelines import commands

        return commands.dispatch(args, settings)
    except KeyboardInterrupt:
        print("lockgate: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from data_contracts.contract import ContractError
        from tasks.errors import LockgateError

        if debug:
            raise
        if isinstance(e, (LockgateError, ContractError)):
            print(f"lockgate: error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"lockgate: unexpected error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
              "(set LOCKGATE_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
