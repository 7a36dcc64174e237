"""The `lockgate` command: the argument parser and `main`. Heavy libraries (Prefect, MLflow, JAX, GE,
Evidently) load only inside commands (pipelines/commands/), so `lockgate --help` is instant.
Exit codes: pipelines/exit_codes.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipelines.exit_codes import EXIT_INTERRUPTED, EXIT_UNEXPECTED, EXIT_USAGE


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lockgate",
        description="Governed deployment lifecycle for JAX/Flax models: validate, compile, canary, drift, approve, "
        "promote, score. Settings come from LOCKGATE_* environment variables (LOCKGATE_HOME, default ./.lockgate), "
        "then from the project file lockgate.yaml of the current folder (or --project DIR; `lockgate init` writes one).",
        epilog="Exit codes: 0 ok, 2 bad input (or contract lint errors), 3 candidate not promoted / required target "
        "does not fit / breaking contract change / batch failed validation / drift breach / approval refused / "
        "rollback reverted / ledger does not verify / audit found missing or changed evidence, 1 unexpected error. "
        "A batch run (run batch-inference, backfill) exits with the first that applies: 4 partitions failed or "
        "missing, 6 scoring blocked by monitoring (partitions not scored, or a block raised during the run still in "
        "force), 5 champion rolled back during the run, else 0; its last line says which.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show Prefect's INFO logs on the console")
    p.add_argument("--project", type=Path, metavar="DIR", help="project folder whose lockgate.yaml names the model, "
                   "contract, policy and data (default: the current folder's lockgate.yaml, if any; "
                   "LOCKGATE_PROJECT); LOCKGATE_* variables and command flags override it")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _init_parser(sub)

    demo = sub.add_parser("demo", help="generate demo data, train two candidates, run the lifecycle twice, score days",
                          description="End to end on the embedded defaults: synthetic credit-default data, two Flax MLP "
                          "candidates, lifecycle for each, batch inference over daily partitions, and a summary.")
    demo.add_argument("--size", choices=["small", "default"], default="default", help="data size (small is for tests)")
    demo.add_argument("--days", type=_positive_int, default=5, help="daily production partitions to generate and score")

    reg = sub.add_parser("register", help="register your own candidate as a new model version",
                         description="Create a model version from your model's code (or a built-in architecture), "
                         "its config, a params file, the reference (training) data and the data contract name. "
                         "Your module's package is stored with the version and the model is built from that copy.")
    which = reg.add_mutually_exclusive_group()  # one of them, or the project's `model:` (lockgate.yaml)
    which.add_argument("--model", metavar="MODULE:ATTR", help="your model: a Flax module class, a factory "
                       "build(config) -> nn.Module, or a function f(params, x) -> y (e.g. mypkg.net:build)")
    which.add_argument("--arch", help="a built-in architecture (mlp, ft_transformer, moe): --model "
                       "models.architectures:NAME")
    reg.add_argument("--code-root", type=Path, default=None, help="folder holding --model's top-level package or "
                     "module file (default: the current folder)")
    reg.add_argument("--config", required=True, type=Path, help="model config JSON object, given to your code "
                     "(lockgate reads \"task\": classification|regression, \"num_features\" and \"inputs\": "
                     "{column: dtype} for a model taking raw columns)")
    reg.add_argument("--params", required=True, type=Path,
                     help="params: a flax.serialization msgpack file or an orbax checkpoint folder")
    reg.add_argument("--reference", type=Path, help="reference/training data parquet (default: the project's)")
    reg.add_argument("--contract", help="data contract name in data_contracts/ (e.g. credit_default) or a YAML path "
                     "(default: the project's)")
    reg.add_argument("--golden", type=Path, help="labeled golden set the reference data's poisoning screen is held "
                     "against (default: the project's; without one the golden-set checks are skipped)")
    reg.add_argument("--description", default="", help="free text recorded with the version")
    reg.add_argument("--intended-use", default="", help="what the model is for, shown on its model card")
    reg.add_argument("--limitations", default="", help="known limits, ';'-separated, listed first on its model card")

    run = sub.add_parser("run", help="run a flow", description="Run a lockgate flow (on Prefect) now.")
    flows = run.add_subparsers(dest="flow", required=True, metavar="FLOW")
    lc = flows.add_parser("lifecycle", help="take a version through every gate to champion or rejection",
                          description="validate -> compile -> canary -> drift -> approval -> promote or reject")
    lc.add_argument("--version", required=True, type=int, help="registered model version")
    lc.add_argument("--golden", type=Path, help="labeled golden set parquet (default: the project's)")
    lc.add_argument("--current", type=Path, help="latest production data for drift (default: the golden set)")
    bi = flows.add_parser("batch-inference", help="score partitions with the champion",
                          description="Validate, quarantine, score and monitor each partition with the champion. "
                          "Exit codes as for backfill: 0, else 4 failed/missing > 6 blocked > 5 rolled back.")
    bi.add_argument("partitions", nargs="+", help="parquet files or hive partition folders, local or pyarrow "
                    "filesystem URIs (s3://..., gs://...)")
    bi.add_argument("--force", action="store_true", help="re-score partitions already scored by this version")

    bf = sub.add_parser("backfill", help="score every date partition in a range with the champion",
                        description="Score the partitions date=YYYY-MM-DD under the input root (LOCKGATE_INPUT_ROOT, "
                        "default LOCKGATE_HOME/data/stream) for every date from --from to --to, both included, in one "
                        "batch-inference run fanned out over the task runner (LOCKGATE_TASK_RUNNER=threads|dask). "
                        "Partitions already scored by the champion's version are skipped unless --force; a missing "
                        "date is reported as 'missing'. Exit 0 when all are scored, skipped or empty; else the first "
                        "that applies: 4 any failed or is missing, 6 scoring blocked by monitoring, 5 the champion "
                        "was rolled back during the run.")
    bf.add_argument("--from", dest="start", required=True, metavar="DATE", help="first date, YYYY-MM-DD")
    bf.add_argument("--to", dest="end", required=True, metavar="DATE", help="last date, YYYY-MM-DD (included)")
    bf.add_argument("--force", action="store_true", help="re-score partitions already scored by this version")

    sv = sub.add_parser("serve", help="serve the batch-inference deployment on its cron schedule (Ctrl-C to stop)",
                        description="Serve the batch-inference flow as a Prefect deployment with the cron schedule of "
                        "prefect.yaml (flow.serve): each scheduled run scores the partition of its scheduled date "
                        "minus LOCKGATE_SCHEDULE_OFFSET_DAYS (default 1: yesterday). Needs a Prefect server "
                        "(PREFECT_API_URL; the temporary API has no scheduler). Prefect's own serve pauses the "
                        "deployment's schedule when the process gets SIGTERM, so nothing runs until someone resumes "
                        "it; lockgate serves with pause-on-shutdown off and resumes the schedule at start, so SIGTERM "
                        "or Ctrl-C stop cleanly (in-flight runs are cancelled and can be re-run: outputs are atomic) "
                        "and the schedule stays active. A schedule paused by another process is resumed with "
                        "`prefect deployment resume batch-inference/NAME`.")
    sv.add_argument("--name", default="daily", help="deployment name (default: daily)")
    sv.add_argument("--cron", help="cron schedule (default: prefect.yaml's, 0 2 * * *)")
    sv.add_argument("--timezone", help="timezone of the cron schedule (default: prefect.yaml's, UTC)")

    ub = sub.add_parser("unblock", help="clear a monitoring block and the open alerts (recorded in the ledger)",
                        description="A monitoring policy of 'block' stops batch inference after a breach until this "
                        "command (or a new champion) clears it: partitions not yet writing predictions are recorded "
                        "'blocked', those already writing finish. It also clears the alert flag of `lockgate status`. "
                        "The reason is recorded in the ledger.")
    ub.add_argument("--reason", required=True, help="why scoring may go on (recorded)")

    comp = sub.add_parser("compile", help="AOT-compile a version for deployment targets and print the report",
                          description="Compile MODEL[:VERSION] (or MODEL@ALIAS) ahead of time for each target x bucket x "
                          "variant (TPU slices compile from this host through libtpu) and print compile time, peak "
                          "memory per device against HBM, GFLOP, estimated latency and a verdict per target. Targets, "
                          "buckets and variants default to the policy's.")
    comp.add_argument("model", metavar="MODEL[:VERSION]", help="e.g. credit-default, credit-default:3, credit-default@champion "
                      "(default version: the latest)")
    comp.add_argument("--target", action="append", help="deployment target (repeatable), e.g. cpu, v5e-4, v6e-8")
    comp.add_argument("--bucket", action="append", type=int, help="batch bucket (repeatable), e.g. 1, 1024")
    comp.add_argument("--variant", action="append", choices=["f32", "bf16", "int8", "prune-50", "prune-2of4", "prune-neurons"],
                      help="precision or pruned variant (repeatable)")

    con = sub.add_parser("contract", help="check a data contract or compare two versions",
                         description="Data contract tools (ODCS v3 YAML, see data_contracts/).")
    cons = con.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    lint = cons.add_parser("lint", help="check a contract file (exit 0 clean or warnings only, 2 on errors)",
                           description="Load the contract and map every rule to its Great Expectations expectation, "
                           "with and without the label (without importing GE; --ge also builds the GE suites); print "
                           "errors and warnings (no owner, column without description). Exit 0 when there are no "
                           "errors, 2 when there are.")
    lint.add_argument("file", metavar="FILE", nargs="?", help="contract YAML path or a contract name in "
                      "data_contracts/ (default: the project's)")
    lint.add_argument("--ge", action="store_true", help="also build the Great Expectations suites (imports GE, "
                      "~10 s more)")
    cdiff = cons.add_parser("diff", help="list changes between two contracts (exit 3 if any is breaking)",
                            description="Compare OLD with NEW column by column: removed/added columns, type, range, "
                            "allowed set, required, unique, pattern, row count, label/id columns, version bump. "
                            "Exit 0 when no change is breaking, 3 when one is.")
    cdiff.add_argument("old", metavar="OLD", help="old contract (path or name)")
    cdiff.add_argument("new", metavar="NEW", help="new contract (path or name)")

    pol = sub.add_parser("policy", help="check a governance policy file",
                         description="Governance policy tools (the YAML of gate thresholds and approval rules).")
    pols = pol.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    plint = pols.add_parser("lint", help="check a policy file (exit 0 ok, 2 with every problem named)",
                            description="Load the policy with the same checks every run applies: unknown or repeated "
                            "keys, NaN/inf, budgets, margins and buckets out of range, approvers with no name or "
                            "unknown groups, expiry beyond 90d, an empty file. Nothing is written.")
    plint.add_argument("file", metavar="FILE", nargs="?", help="policy YAML path (default: LOCKGATE_POLICY_FILE)")
    val = sub.add_parser("validate", help="validate a dataset against a contract (exit 3 if the batch fails)",
                         description="Validate DATA against CONTRACT with the contract's Great Expectations suite and "
                         "the policy's validation limits. Verdict pass / quarantine / fail; invalid rows go to a "
                         "quarantine parquet with their failed expectations, the GE result to JSON, both under "
                         "LOCKGATE_HOME/validation/<contract>/<data name>/. The input is never modified. Exit 0 on "
                         "pass or on quarantine within the policy's limit, 3 on fail, 2 on unreadable input.")
    val.add_argument("contract", metavar="CONTRACT", nargs="?", help="contract name in data_contracts/ or a YAML "
                     "path (default: the project's)")
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
                    "methods; default: the project's, else every numeric and string column of the reference, "
                    "Evidently's methods")
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
                          help="approver name (default: LOCKGATE_ACTOR or the login name); where the policy says "
                          "identity: signed, a name alone is refused: add --key")
        resp.add_argument("--key", metavar="PATH",
                          help="your Ed25519 private key (e.g. ~/.ssh/id_ed25519, unencrypted): signs the request "
                          "you were shown (run, version, artifact, evidence, expiry) and your response; the policy's "
                          "approval.public_keys must list its public key for you")
        resp.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                          help="how long to wait for the run's verdict (default 30)")

    st = sub.add_parser("status", help="champion, challenger, monitoring flag, versions and the last decisions",
                        description="Aliases, versions, the last ledger entries, the ledger check and whether the "
                        "registry agrees with it; an interrupted promotion or rollback is recovered first.")
    st.add_argument("--limit", type=int, default=10, help="ledger entries to show")

    rb = sub.add_parser("rollback", help="put the previous champion (or an earlier one) back, in one step",
                        description="Move champion back to the previous champion (or --to-version, any earlier "
                        "champion) through the promotion path: under the model's lock, ledger rows before and after, "
                        "the target smoke-tested through the alias (artifact sha256 verified, rows scored). When the "
                        "policy needs human approval for rollback in LOCKGATE_ENVIRONMENT, the rollback runs as a "
                        "Prefect flow that waits for reviewers (`lockgate pending`, `lockgate approve`; needs "
                        "`lockgate server start`). Exit 0 rolled back, 3 not approved or the target failed its smoke "
                        "test (aliases unchanged, the ledger says why), 2 nothing to roll back to.")
    rb.add_argument("model", nargs="?", metavar="MODEL", help="registered model (default: LOCKGATE_MODEL_NAME)")
    rb.add_argument("--reason", required=True, help="why, recorded in the ledger (e.g. 'drift breach on 2026-10-05')")
    rb.add_argument("--to-version", type=_positive_int, metavar="N", help="an earlier champion instead of the previous")
    _audit_parsers(sub)
    _incidents_parser(sub)
    return p


def _incidents_parser(sub) -> None:
    inc = sub.add_parser("incidents", help="open incidents (alerts, blocks, rollbacks, rejections); resolve one",
                         description="List the incidents monitoring alerts and blocks, automatic rollbacks and "
                         "rejected promotions opened (id, kind, model, version, opened at, evidence), open ones "
                         "unless --all; `incidents resolve ID --reason TEXT` closes one (recorded in the ledger).")
    inc.add_argument("--all", action="store_true", help="include resolved incidents")
    inc.add_argument("--model", metavar="NAME", help="only this model's (default: every model in the ledger)")
    actions = inc.add_subparsers(dest="incidents_command", metavar="ACTION")
    res = actions.add_parser("resolve", help="close an open incident with a reason (exit 2: unknown or resolved)",
                             description="Close incident ID: a ledger row naming who and why, then the webhook and "
                             "the Prefect event. Who may resolve follows the approval rules of LOCKGATE_ENVIRONMENT: "
                             "its approvers where it needs human approval, signed (--key) where it says identity: "
                             "signed. Exit 0 resolved, 2 unknown or already resolved id, or a refused resolver.")
    res.add_argument("incident_id", metavar="ID", help="the incident id (INC-YYYYMMDD-xxxxxx, see `lockgate incidents`)")
    res.add_argument("--reason", required=True, help="what was done about it; recorded in the ledger")
    res.add_argument("--as", dest="resolver", metavar="USER", help="who resolves (default: LOCKGATE_ACTOR or the "
                     "login name)")
    res.add_argument("--key", metavar="PATH", help="your Ed25519 private key: signs the resolution (required where "
                     "the policy says identity: signed)")


def _init_parser(sub) -> None:
    init = sub.add_parser("init", help="make a project folder: draft contract from your data, policy, lockgate.yaml",
                          description="Write DIR/contract.yaml (a draft ODCS contract inferred from DATA: types, "
                          "nullability, ranges widened by 10%, allowed sets of columns with few values, label, id, "
                          "features, slices, drift methods), DIR/policy.yaml (every threshold commented) and "
                          "DIR/lockgate.yaml (model name, entry point, contract, policy, reference and golden data), "
                          "and copy DATA (and --golden) under DIR/data/. Commands run in DIR (or with --project DIR) "
                          "then use them. DATA is only read; an existing project file is never overwritten (exit 2).")
    init.add_argument("folder", metavar="DIR", type=Path, help="the project folder (created if needed)")
    init.add_argument("--from", dest="data", required=True, type=Path, metavar="DATA",
                      help="parquet file or hive folder with the label: the reference (training) data")
    init.add_argument("--label", required=True, metavar="COLUMN", help="the label column")
    init.add_argument("--golden", type=Path, metavar="GOLDEN", help="labeled holdout with the same columns: read for "
                      "the contract too, and named as the golden set")
    init.add_argument("--name", help="model and contract name (default: DIR's name)")
    init.add_argument("--id", dest="id_column", metavar="COLUMN", help="the column naming rows (default: a unique, "
                      "non-null column named id or *_id)")


def _audit_parsers(sub) -> None:
    """`audit verify`, `audit report` and `model-card`: governance checks and views over the ledger, the registry and
    the evidence."""
    audit = sub.add_parser("audit", help="verify the ledger; governance reports over ledger, registry and evidence",
                           description="Answer 'which model scored this batch, trained on what, approved by whom, on "
                           "what evidence?' from the hash-chained ledger, the MLflow registry and the stored evidence.")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="verify the hash chain and that the registry's aliases agree with it",
                                description="Walk the ledger's hash chain (an edited, deleted, inserted or reordered "
                                "row is named), hold its last row to the anchor file, and compare each model's "
                                "aliases in the registry with the ledger's. Read-only unless --recover. Exit 0 when "
                                "all holds, 3 naming the first bad row or disagreement.")
    verify.add_argument("--model", metavar="NAME", help="check this model's aliases only (default: every model the "
                        "ledger has aliases for)")
    verify.add_argument("--recover", action="store_true", help="first bring the registry back to the ledger's "
                        "state after an interrupted promotion or an outside change (recorded in the ledger)")
    rep = actions.add_parser("report", help="write the audit report (HTML + JSON) for a time range",
                             description="Every champion change with its evidence and links, approvals, rejections, "
                             "rollbacks, contracts and their versions, which version scored which partition, and "
                             "plots (champion timeline, canary metrics with CIs, drift and rows per partition). Each "
                             "evidence file is re-hashed against the ledger; a missing or changed file is flagged. "
                             "Exit 0 when the ledger chain is intact and every evidence file matches, 3 otherwise "
                             "(the report is written either way), 2 on bad options.")
    rep.add_argument("--since", metavar="WHEN", help="ISO date or date-time (UTC when no offset); default: the first "
                     "ledger entry")
    rep.add_argument("--until", metavar="WHEN", help="ISO date (inclusive) or date-time; default: now")
    rep.add_argument("--model", metavar="NAME", help="only this registered model (default: every model in the ledger)")
    rep.add_argument("--out", type=Path, help="report folder (default LOCKGATE_HOME/audit/<timestamp>)")
    card = sub.add_parser("model-card", help="write a version's model card (markdown + HTML) from its evidence",
                          description="Build the model card of MODEL[:VERSION] (or MODEL@ALIAS) from its registration "
                          "metadata, gate evidence and ledger entries; write model_card.md/.html/.json and log them to "
                          "the version's MLflow run under model_card/<folder>/. The lifecycle writes one at the end of every run; a "
                          "card is never replaced (a folder holding one is refused).")
    card.add_argument("model", metavar="MODEL[:VERSION]", help="e.g. credit-default:2 or credit-default@champion "
                      "(default version: the latest)")
    card.add_argument("--out", type=Path, help="a folder without a card (default: a new LOCKGATE_HOME/evidence/<model>/v<version>/model_card/<UTC time>)")


def main(argv: list[str] | None = None) -> int:
    from pipelines.gc_thresholds import tune_gc

    tune_gc()  # before anything heavy is imported (pipelines/gc_thresholds.py)
    args = _parser().parse_args(argv)
    debug = os.environ.get("LOCKGATE_DEBUG") == "1"
    try:
        from pydantic import ValidationError

        from tasks.errors import LockgateError

        if args.command == "init":  # makes a project: no settings, no LOCKGATE_HOME yet
            from pipelines.commands.project import init_command

            return init_command(args)
        if args.project is not None:
            os.environ["LOCKGATE_PROJECT"] = str(args.project)
        try:
            from tasks.settings import Settings

            settings = Settings()
        except ValidationError as e:
            raise LockgateError(f"invalid LOCKGATE_* setting: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
        if settings.project is not None:  # flows and child processes read it, from any working folder
            os.environ["LOCKGATE_PROJECT"] = str(settings.project)
        from pipelines.runtime import prepare_runtime

        prepare_runtime(settings, verbose=args.verbose)
        from pipelines import commands

        return commands.dispatch(args, settings)
    except KeyboardInterrupt:
        print("lockgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
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
