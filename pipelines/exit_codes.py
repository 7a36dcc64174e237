"""The CLI's exit codes, in one place; imports nothing, so every command can import it.

0 done; 2 bad input or configuration (one-line error, also: nothing to roll back to, or a
run that is not awaiting approval for `approve`/`reject`), or contract lint errors;
3 candidate rejected, a required compile target does not fit, a breaking contract change
(`contract diff`), a failed batch (`validate`), a drift breach (`drift`), a response the
paused run refused (`approve`, `reject`), a rollback whose target failed its smoke test
(`rollback`, aliases unchanged), a ledger that does not verify (`audit verify`) or evidence
missing/changed (`audit report`); 1 unexpected error; 130 interrupted.

A batch run (`run batch-inference`, `backfill`) exits with one code, by precedence:
4 some partitions failed or were missing > 6 scoring blocked: a monitoring block kept
partitions from being scored, or was raised during the run and is still in force >
5 the champion was rolled back during the run > 0. The summary's last line says which
(and what else happened), e.g. "exit 5: the champion was rolled back v2 -> v1 ...".
"""

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_NOT_PROMOTED, EXIT_PARTITIONS_FAILED = 0, 1, 2, 3, 4
EXIT_ROLLED_BACK, EXIT_SCORING_BLOCKED = 5, 6
EXIT_BREAKING = EXIT_VALIDATION_FAILED = EXIT_DRIFT_BREACH = EXIT_NOT_PROMOTED  # 3: "not let through"
EXIT_ROLLBACK_FAILED = EXIT_AUDIT_FAILED = EXIT_NOT_PROMOTED
EXIT_INTERRUPTED = 130
