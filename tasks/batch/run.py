"""What one batch run did as a whole, and its verdict for a scheduler.

:class:`BatchRun` is the batch-inference flow's result: the partitions' outcomes, the rollback the monitoring made
during the run, and the monitoring state when the run started and when it ended. :func:`run_verdict` is pure: one
verdict, by precedence, and one line saying what happened:

    partitions_failed  some partition failed or is missing (its data needs looking at; re-run those dates)
  > blocked            a monitoring block kept partitions from being scored, or was raised during the run and
                       is still in force (nothing more is scored until `lockgate unblock` or a new champion)
  > rolled_back        the champion was rolled back during the run (the restored one scores from now on)
  > ok

The line names the verdict's event first and the others after it ("also ..."), so nothing that happened is hidden.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.batch.monitoring import MonitoringState
from tasks.batch.partition import PartitionOutcome

Verdict = Literal["ok", "partitions_failed", "blocked", "rolled_back"]
NAMES_SHOWN = 5


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_version: int
    to_version: int
    partitions: list[str] = Field(description="The breached partitions whose monitoring asked for the rollback.")
    rescored: bool = Field(description="Whether those partitions were scored again with the restored champion.")


class BatchRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcomes: list[PartitionOutcome] = Field(description="One per partition, in the order they were asked for.")
    rollback: Rollback | None = Field(None, description="The automatic rollback made during this run, if any.")
    monitoring_before: MonitoringState = Field(description="Monitoring state when the run started.")
    monitoring_after: MonitoringState = Field(description="Monitoring state when the run ended.")


class RunVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict
    line: str


def _names(outcomes: list[PartitionOutcome]) -> str:
    names = [o.partition for o in outcomes]
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return ", ".join(names[:NAMES_SHOWN]) + more


def _block(state: MonitoringState) -> str:
    return f"ledger #{state.block_seq}: {state.block_reason}"


def run_verdict(run: BatchRun) -> RunVerdict:
    """The run's verdict by precedence (module docstring) and one line naming what happened, most important first."""
    before, after, outcomes = run.monitoring_before, run.monitoring_after, run.outcomes
    failed = [o for o in outcomes if o.status in ("failed", "missing")]
    blocked = [o for o in outcomes if o.status == "blocked"]
    in_flight = [o for o in outcomes if o.status == "scored" and o.block_seq is not None]
    raised = after.blocked and after.block_seq != before.block_seq
    events: list[tuple[Verdict, str]] = []
    if failed:
        kinds = ", ".join(f"{sum(o.status == s for o in failed)} {s}" for s in ("failed", "missing")
                          if any(o.status == s for o in failed))
        events.append(("partitions_failed", f"{len(failed)} partition(s) failed or missing ({kinds}): "
                                            f"{_names(failed)}"))
    if blocked or raised:
        if blocked:
            seqs = sorted({o.block_seq for o in blocked if o.block_seq is not None})
            by = (_block(after) if after.blocked and seqs == [after.block_seq]
                  else ", ".join(f"ledger #{s}" for s in seqs) + (" (lifted since)" if not after.blocked else ""))
            text = (f"scoring blocked by monitoring ({by}): {len(blocked)} partition(s) not scored: "
                    f"{_names(blocked)}")
        else:
            text = f"a monitoring block was raised during this run ({_block(after)})"
        if in_flight:
            text += (f"; {len(in_flight)} partition(s) in flight when it was raised finished and are recorded "
                     f"scored: {_names(in_flight)}")
        if after.blocked:
            text += "; nothing more is scored until `lockgate unblock --reason ...` or a new champion"
        events.append(("blocked", text))
    if run.rollback is not None:
        rb = run.rollback
        text = (f"the champion was rolled back v{rb.from_version} -> v{rb.to_version} during this run "
                f"(monitoring breach in {', '.join(rb.partitions)})")
        if rb.rescored:
            text += f"; re-scored with v{rb.to_version}"
        events.append(("rolled_back", text))
    if not events:
        counts = ", ".join(f"{n} {s}" for s in ("scored", "skipped", "empty")
                           if (n := sum(o.status == s for o in outcomes)))
        return RunVerdict(verdict="ok", line=f"{len(outcomes)} partition(s): {counts or 'none'}")
    (verdict, first), rest = events[0], [text for _, text in events[1:]]
    return RunVerdict(verdict=verdict, line=first + "".join(f"; also {text}" for text in rest))
