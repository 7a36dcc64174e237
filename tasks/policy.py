"""The governance policy: gate thresholds and approval rules, from one YAML file.

Unknown keys are errors naming their path (``extra="forbid"`` everywhere), so a
typo in a threshold never silently falls back to a default. The file is read with the
strict loader (data_contracts/strict_yaml.py): a key given twice, an empty file, NaN or
infinity anywhere, a budget or bucket out of its range and an approver with no name are
errors naming the key, at load and in ``lockgate policy lint``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.strict_yaml import KeptByText, load_strict, yaml_problem
from tasks.errors import LockgateError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Margin = Annotated[float, Field(allow_inf_nan=False)]  # >= 0 checked with its reason (_non_negative_margins)
UserName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
MAX_EXPIRY = timedelta(days=90)


def _increasing_positive(name: str, v: tuple[int, ...]) -> tuple[int, ...]:
    if any(b <= 0 for b in v) or list(v) != sorted(set(v)):
        raise ValueError(f"{name} must be positive and strictly increasing, got {list(v)}")
    return v


class ValidationPolicy(_Strict):
    max_quarantine_share: float = Field(
        0.05, ge=0, le=1, description="Largest share of rows that may be quarantined before the batch fails."
    )
    allow_breaking_contract_change: bool = Field(
        False, description="Let a candidate whose data contract breaks the champion's through (recorded as breaking-allowed)."
    )
    data_docs: Literal["always", "on_failures"] = Field(
        "always", description="Which validations get GE's Data Docs page (about 0.08 CPU-s each, less than the "
        "validation it shows): every one, or only those with failing rows or a failed "
        "verdict. GE's validation result (JSON, from which Data Docs renders) is kept for every one."
    )


class CompilationPolicy(_Strict):
    platforms: tuple[Literal["cpu", "tpu", "cuda", "rocm"], ...] = Field(
        ("cpu", "tpu"), min_length=1, description="Platforms the jax.export artifact is lowered for."
    )
    batch_buckets: tuple[int, ...] = Field(
        (1, 64, 1024, 8192), min_length=1, description="Batch sizes the artifact is compiled and scored at (inputs padded up)."
    )

    targets: tuple[str, ...] = Field(
        ("cpu", "v5e-4", "v6e-4"), min_length=1,
        description="Deployment targets compiled ahead of time: 'cpu' (this host) and TPU slices from models/targets.py.",
    )
    required_targets: tuple[str, ...] = Field(
        ("cpu",), description="Targets the model must fit; any other target's verdict is reported but does not fail the gate."
    )
    variants: tuple[Literal["f32", "bf16", "int8", "prune-50", "prune-2of4", "prune-neurons"], ...] = Field(
        ("f32",), min_length=1,
        description="Precision and pruned variants compiled for every target and bucket (f32 always first).",
    )
    compile_timeout_seconds: float = Field(300, gt=0, description="Per-target limit for the compile child process.")
    compile_workers: PositiveInt | None = Field(
        None, description="Compile child processes running at once; default: this host's cores (os.cpu_count), at "
        "most one per target left to compile (rows of an unchanged model, shape, target and JAX come from the cache)."
    )
    group_targets: bool = Field(
        True, strict=True, description="Targets left to compile share one child per worker (one JAX/libtpu start-up "
        "each instead of one per target); a child that dies is retried one target per child, so a crash stays its "
        "own target's compile error. False: one child per target."
    )
    compile_early: bool = Field(
        True, strict=True, description="The lifecycle starts the compile report's children before the gates ahead "
        "of compilation (contract, validation, poisoning), which then run beside them; the compilation gate takes "
        "the finished report. False: the report starts with its gate."
    )
    hbm_headroom: float = Field(
        0.9, gt=0, le=1, description="Share of a device's HBM a compiled program may use and still 'fit'."
    )

    @field_validator("batch_buckets")
    @classmethod
    def _buckets(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing_positive("batch_buckets", v)

    @field_validator("targets", "required_targets")
    @classmethod
    def _known_targets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from models.targets import TARGETS

        unknown = [t for t in v if t not in TARGETS]
        if unknown:
            raise ValueError(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
        return v

    @field_validator("variants")
    @classmethod
    def _f32_first(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if v[0] != "f32" or len(set(v)) != len(v):
            raise ValueError(f"variants must start with f32 and not repeat, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _required_are_compiled(self) -> "CompilationPolicy":
        missing = [t for t in self.required_targets if t not in self.targets]
        if missing:
            raise ValueError(f"required_targets {missing} are not in targets {list(self.targets)}")
        return self


def _non_negative_margins(margins: dict[str, float]) -> dict[str, float]:
    negative = {k: v for k, v in margins.items() if v < 0}
    if negative:
        raise ValueError(f"margins must be >= 0 (a margin is how much worse the candidate may be), got {negative}")
    return margins


class RegressionCanaryPolicy(_Strict):
    """Canary rules for a regression model (model config ``task: regression``). Margins and limits are in the
    label's units unless noted; the defaults suit a label of about unit scale (e.g. a rate in [0, 1])."""

    min_r2: float = Field(
        0.0, le=1, description="Absolute floor for the candidate's R² on the golden set (scale-free; 0 means no better "
        "than predicting the golden set's mean). Held on every deployment, including the first."
    )
    max_rmse: float | None = Field(
        None, gt=0, description="Optional absolute ceiling for the candidate's RMSE on the golden set (label units)."
    )
    margins: dict[Literal["rmse", "mae"], Margin] = Field(
        default_factory=lambda: {"rmse": 0.01, "mae": 0.01}, min_length=1,
        description="Non-inferiority margin per metric (label units; both lower-is-better): the paired-bootstrap CI "
        "of (candidate - champion) must stay below +margin.",
    )
    slice_metric: Literal["rmse", "mae"] = Field("rmse", description="Metric compared per slice.")
    slice_margin: float = Field(0.02, ge=0, description="Non-inferiority margin of the slice metric in every slice.")
    max_mean_abs_shift: float | None = Field(
        None, gt=0, description="Shadow: largest mean |candidate - champion| prediction on the latest partition, "
        "overall and per slice (label units); unset: reported, not decided. Like PSI/JS of the predictions, it "
        "decides only with canary.shadow_decides: true."
    )
    variant_max_rmse_increase: float = Field(
        0.005, ge=0, description="Accuracy budget of a bf16/int8 variant: the upper CI bound of its RMSE delta "
        "against the full-precision candidate must stay below this."
    )
    variant_max_abs_diff: float = Field(
        0.05, gt=0, description="Largest per-row prediction difference a variant may show against f32 (label units)."
    )

    @field_validator("margins")
    @classmethod
    def _margins_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        return _non_negative_margins(v)


class CanaryPolicy(_Strict):
    min_auc: float = Field(0.6, ge=0, le=1, description="Absolute floor for the candidate's AUC-ROC on the golden set.")
    margins: dict[Literal["auc", "log_loss", "brier", "accuracy", "precision", "recall", "ece"], Margin] = Field(
        default_factory=lambda: {"auc": 0.01, "log_loss": 0.02, "brier": 0.01, "ece": 0.03},
        description="Non-inferiority margin per metric: the paired-bootstrap CI of (candidate - champion) must stay "
        "above -margin (higher-is-better metrics) or below +margin (lower-is-better).",
    )
    slice_metric: Literal["auc", "log_loss", "brier", "accuracy", "ece"] = Field(
        "auc", description="Metric compared per slice (the contract's slice columns)."
    )
    slice_margin: float = Field(0.05, ge=0, description="Non-inferiority margin of the slice metric in every slice.")
    min_slice_size: int = Field(200, ge=1, description="Slices with fewer rows are reported as 'too small', never decide.")
    shadow_decides: bool = Field(
        False, strict=True, description="Whether the shadow checks (decision flips, PSI and JS of the scores on the "
        "latest partition, overall and by slice) can fail the canary. False (default): they are measured, held to "
        "their limits and reported as informational; a model that is better will score differently from the one "
        "it replaces, so a shift alone is no reason to reject it. True: a shadow limit broken fails the canary."
    )
    max_flip_share: float = Field(0.2, ge=0, le=1, description="Shadow: largest share of rows whose decision flips.")
    slice_max_flip_share: float = Field(0.3, ge=0, le=1, description="Shadow: the same limit within each slice.")
    max_psi: float = Field(0.25, ge=0, description="Shadow: largest PSI between candidate and champion scores.")
    max_js: float = Field(0.2, ge=0, le=1, description="Shadow: largest Jensen-Shannon distance (base 2) of the scores.")
    latency_buckets: tuple[int, ...] = Field((1, 64, 1024), min_length=1, description="Batch sizes timed on this host.")
    latency_repeats: int = Field(20, ge=3, description="Timed repeats per bucket (after warm-up), interleaved.")
    max_p99_ratio: float = Field(3.0, gt=0, description="Candidate p99 <= this x champion p99, at every timed bucket.")
    latency_floor_ms: float = Field(
        1.0, ge=0, description="The p99 ratio is not judged at a bucket where both models' p99 is under this many ms "
        "(recorded as a check saying so): a ratio of two sub-millisecond timings measures the host's noise, not the "
        "model. Absolute budgets (max_p99_ms) still apply. 0 judges every bucket."
    )
    latency_retimes: int = Field(
        1, ge=0, le=5, description="Times a bucket over its latency budget is timed again (both models, interleaved, "
        "with 5x latency_repeats). It fails only if it fails every timing: one stall of a busy host does not reject a "
        "candidate, a real slowdown still does. 0 decides on the first timing."
    )
    latency_clock: Literal["auto", "wall", "busy"] = Field(
        "auto", description="How a call is timed: 'wall' (the wall clock, the host's stalls included), 'busy' (the "
        "smaller of the wall time and the process's CPU time meanwhile: the time a busy host ran other processes is "
        "left out; right only where a call's work is all CPU in this process), or 'auto': busy on JAX's CPU "
        "backend, wall on an accelerator. The budgets and ratios judge this clock; the evidence keeps the wall p99.")
    max_p99_ms: dict[PositiveInt, PositiveFloat] = Field(
        default_factory=dict, description="Absolute p99 budget in ms per bucket (buckets not listed are unbudgeted)."
    )
    decision_threshold: float = Field(0.5, gt=0, lt=1, description="Score above which a row is predicted positive.")
    variant_max_auc_drop: float = Field(
        0.005, ge=0, description="Accuracy budget of a bf16/int8 variant: the lower CI bound of its AUC delta against "
        "the full-precision candidate must stay above -this."
    )
    variant_max_abs_diff: float = Field(
        0.1, gt=0, le=1, description="Largest per-row probability difference a variant may show against f32."
    )
    bootstrap_resamples: int = Field(200, ge=20, description="Paired bootstrap resamples for confidence intervals "
                                     "(the most drawn, with sequential stopping).")
    bootstrap_stopping: Literal["sequential", "fixed"] = Field(
        "sequential", description="sequential: resamples are drawn bootstrap_batch at a time and stop once every "
        "margin's CI bound is clearly on one side (the band its quantile could still move within lies wholly on one "
        "side of the margin), so a decisive golden set needs a few hundred; fixed: always bootstrap_resamples."
    )
    bootstrap_batch: int = Field(100, ge=20, description="Resamples drawn between two sequential-stopping checks.")
    confidence_level: float = Field(0.95, gt=0.5, lt=1, description="Two-sided confidence level of the intervals.")
    seed: int = Field(0, description="Seed of the bootstrap resamples (same resamples for both models).")
    plots: Literal["always", "on_failures"] = Field(
        "always", description="Which canary gates draw their PNG plots (ROC and calibration, or scatter and residuals; "
        "latency; slice deltas: about 0.5 CPU-s, a third of a small canary): every one, or only those that fail. The "
        "HTML report (every check with its value, CI and threshold) and the checks are written for every one.")
    regression: RegressionCanaryPolicy = Field(
        default_factory=RegressionCanaryPolicy,
        description="Rules used instead of the classification ones above when the model is a regressor; the "
        "bootstrap, slice size, PSI/JS and latency settings above apply to both tasks.",
    )

    @field_validator("margins")
    @classmethod
    def _margins_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        return _non_negative_margins(v)

    @field_validator("latency_buckets")
    @classmethod
    def _latency_buckets(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing_positive("latency_buckets", v)

    def draws_plots(self, passed: bool) -> bool:
        """Whether a canary that ``passed`` (or not) draws its PNG plots under ``plots``."""
        return self.plots == "always" or not passed

    def margins_for(self, task: str) -> dict[str, float]:
        """Non-inferiority margin per metric for a model of ``task`` ("classification" or "regression")."""
        return dict(self.regression.margins if task == "regression" else self.margins)

    def bootstrap_stop(self, margins: dict[str, float]) -> dict:
        """Keyword arguments of ``tasks.canary.stats.bootstrap_deltas`` for stopping per this policy."""
        sequential = self.bootstrap_stopping == "sequential"
        return {"stop_margins": dict(margins) if sequential else None, "batch": self.bootstrap_batch}

    def slice_rule(self, task: str) -> tuple[str, float]:
        """(metric, margin) compared in every slice for a model of ``task``."""
        if task == "regression":
            return self.regression.slice_metric, self.regression.slice_margin
        return self.slice_metric, self.slice_margin


class DriftPolicy(_Strict):
    max_drifted_share: float = Field(
        0.3, ge=0, le=1, description="Share of drifted columns at or above which drift is a breach."
    )
    warn_drifted_share: float = Field(
        0.1, ge=0, le=1, description="Share of drifted columns at or above which drift is a warning."
    )
    block_on_breach: bool = Field(True, description="Whether a drift breach at canary time rejects the candidate.")
    max_null_share_increase: float = Field(
        0.05, ge=0, le=1, description="Quality breach when a column's null share grows by at least this much."
    )
    max_unseen_share: float = Field(
        0.01, ge=0, le=1, description="Quality breach when this share of rows has categories the reference never had."
    )
    max_out_of_range_share: float = Field(
        0.05, ge=0, le=1, description="Quality breach when this share of rows falls outside the reference's range."
    )
    report_rows: int = Field(
        20_000, ge=100, description="Rows per side in Evidently's HTML report (a seeded sample above this; methods "
        "pinned so the sample does not switch tests)."
    )
    sample_rows: int = Field(
        1_000_000, ge=1000, description="Rows per side given to stattests without a mergeable form (ks, anderson, ...)."
    )
    evidently_report: Literal["always", "warn_or_breach"] = Field(
        "always", description="Which lifecycles' drift gates write Evidently's report (HTML and snapshot: about half "
        "of a small lifecycle's drift gate, 2-3 CPU-s): every one, or only those whose drift decision is warn or "
        "breach. The gate's decision never depends on it: lockgate's own measurements (drift.json: score, method, "
        "threshold and verdict per column, quality signals) are the evidence it decides on, kept for every one."
    )

    @model_validator(mode="after")
    def _warn_below_breach(self) -> "DriftPolicy":
        if self.warn_drifted_share > self.max_drifted_share:
            raise ValueError(
                f"warn_drifted_share ({self.warn_drifted_share}) must not exceed max_drifted_share ({self.max_drifted_share})"
            )
        return self


MonitorAction = Literal["alert", "block", "rollback"]


class MonitoringPolicy(_Strict):
    """What a drift or data-quality breach found while scoring a partition does (batch-inference's monitor step)."""

    on_drift_breach: MonitorAction = Field(
        "alert", description="Drifted share of columns >= drift.max_drifted_share: 'alert' (Prefect artifact, log, "
        "ledger row, flag in `lockgate status`), 'block' (alert, and no partition is scored until `lockgate unblock` "
        "or a new champion), or 'rollback' (alert, and the champion goes back to previous-champion).")
    on_quality_breach: MonitorAction = Field(
        "alert", description="A data-quality limit of the drift policy broken (null share increase, unseen "
        "categories, out-of-range share): the same choices.")
    alert_on_warn: bool = Field(False, description="Also raise an alert on a drift warning (no block, no rollback).")
    rescore_after_rollback: bool = Field(
        True, description="After an automatic rollback, score the breached partitions again with the restored "
        "champion (their predictions are replaced; the re-score can alert but never rolls back again).")
    evidently_report: Literal["every_partition", "warn_or_breach"] = Field(
        "every_partition", description="Which scored partitions get Evidently's drift report (HTML and snapshot, "
        "about two thirds of a small partition's time): every one, or only those whose drift decision is warn or breach. "
        "Every partition keeps lockgate's own measurements as evidence (drift/drift.json: score, method, threshold "
        "and verdict per column, quality signals, the decision), which are what the monitor decides on.")


PoisoningMode = Literal["warn", "fail", "off"]
_MODE = ("What a finding of this check does: 'warn' (recorded as evidence, registration and the lifecycle go on), "
         "'fail' (registration is refused / the lifecycle rejects the candidate) or 'off' (not run).")


class LabelFlipCheck(_Strict):
    """Label-flip suspects: rows whose label disagrees with most of their k nearest neighbours, counted per slice."""

    mode: PoisoningMode = Field("warn", description=_MODE)
    min_disagreement: float = Field(
        0.8, gt=0.5, le=1, description="A row is a suspect when at least this share of its k nearest neighbours "
        "(poisoning.neighbours) carry another label.")
    min_z: float = Field(
        4.0, gt=0, description="A slice is reported when its suspects exceed the count expected from the rows "
        "outside it with the same neighbour label mix by at least this many standard deviations (binomial z) ...")
    min_ratio: float = Field(1.1, ge=1, description="... and by at least this ratio (observed / expected suspects).")
    min_suspects: int = Field(5, ge=1, description="... and the slice has at least this many suspects.")


class DuplicateCheck(_Strict):
    """Exact and near duplicates (on the encoded features) whose labels conflict."""

    mode: PoisoningMode = Field("warn", description=_MODE)
    near_distance: float = Field(
        0.05, ge=0, description="Two rows are near duplicates when their encoded features (standardized numerics, "
        "one-hot categories) are within this Euclidean distance; 0 checks exact duplicates only.")
    max_conflicting_rows: int = Field(
        0, ge=0, description="Rows in conflicting (near) duplicate groups allowed before it is a finding.")
    regression_label_tolerance: float = Field(
        0.5, gt=0, description="Regression: two labels conflict when they differ by more than this many standard "
        "deviations of the label.")


class FarClusterCheck(_Strict):
    """A cluster of training rows far from the golden set's distribution."""

    mode: PoisoningMode = Field("warn", description=_MODE)
    golden_quantile: float = Field(
        0.99, gt=0.5, lt=1, description="A training row is far when its distance to the nearest golden row is "
        "beyond this quantile of the golden rows' distances to their nearest other golden row.")
    min_rows: int = Field(
        10, ge=2, description="Far rows linked within the golden rows' median nearest-neighbour distance form a "
        "cluster; a cluster of at least this many rows is a finding.")


class LabelBalanceCheck(_Strict):
    """The training set's label balance against the golden set's."""

    mode: PoisoningMode = Field("warn", description=_MODE)
    max_share_diff: float = Field(
        0.05, ge=0, le=1, description="Classification: a finding when a class's share differs by more than this "
        "between training and golden data (absolute) ...")
    min_z: float = Field(3.0, ge=0, description="... and the two-proportion z test gives at least this z. "
                         "Regression: the labels' means differ by more than max_share_diff golden standard deviations "
                         "with a Welch z of at least this.")


class PoisoningPolicy(_Strict):
    """The poisoning screen of training/reference data, at registration and in the lifecycle (README, "Poisoning
    screen"). Each check is warn, fail or off; the golden-set checks need a golden set."""

    neighbours: int = Field(10, ge=2, le=100, description="k of the k-nearest-neighbour checks.")
    max_rows: int = Field(
        50_000, ge=100, description="Rows screened per dataset: a seeded sample above this (rows outside it are not "
        "screened, and the result says so).")
    seed: int = Field(0, description="Seed of that sample.")
    label_flips: LabelFlipCheck = Field(default_factory=LabelFlipCheck, description=LabelFlipCheck.__doc__)
    duplicates: DuplicateCheck = Field(default_factory=DuplicateCheck, description=DuplicateCheck.__doc__)
    far_cluster: FarClusterCheck = Field(default_factory=FarClusterCheck, description=FarClusterCheck.__doc__)
    label_balance: LabelBalanceCheck = Field(default_factory=LabelBalanceCheck, description=LabelBalanceCheck.__doc__)

    def modes(self) -> dict[str, str]:
        """Check name -> its mode."""
        return {name: getattr(self, name).mode for name in ("label_flips", "duplicates", "far_cluster", "label_balance")}


Transition = Literal["promote", "rollback"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Approvers(_Strict):
    users: tuple[UserName, ...] = Field((), description="Named users who may approve.")
    groups: tuple[UserName, ...] = Field((), description="Groups (from approval.groups) whose members may approve.")

    @field_validator("users", "groups")
    @classmethod
    def _no_repeats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"names must not repeat, got {list(v)}")
        return v


class EnvironmentApproval(_Strict):
    """Approval rules of one environment (LOCKGATE_ENVIRONMENT picks the one that applies)."""

    transitions: tuple[Transition, ...] = Field(
        (), description="Transitions that need human approval here: promote (to champion) and/or rollback. "
        "Empty: every transition is auto-approved and the ledger says so."
    )
    approvers: Approvers = Field(default_factory=Approvers, description="Who may approve or reject.")
    min_approvals: int = Field(1, ge=1, description="Distinct authorised approvers needed (one authorised reject ends it).")
    separation_of_duties: bool = Field(
        True, description="Whoever registered the version or requested the transition cannot approve it."
    )
    identity: Literal["asserted", "signed"] = Field(
        "asserted", description="How an approver is known: 'asserted' takes the name given (`--as`, LOCKGATE_ACTOR; "
        "dev and demos), 'signed' requires a signature (`lockgate approve --key`) over the request by a key "
        "approval.public_keys lists for that approver; an unsigned or wrongly signed response is refused."
    )
    expiry: timedelta = Field(
        timedelta(hours=24), description="How long a request stays open, e.g. '24h', '90m', '45s', '2d'; also the "
        "Prefect pause timeout. Responses after it are refused and the request is recorded as expired."
    )

    @field_validator("expiry", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        if isinstance(v, str):
            match = _DURATION.match(v)
            if not match:
                raise ValueError(f"expiry must be a number with a unit s, m, h or d (e.g. '24h'), got {v!r}")
            seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
            if seconds > MAX_EXPIRY.total_seconds():
                raise ValueError(f"expiry must be at most {MAX_EXPIRY.days}d (a request open longer is stale), got {v!r}")
            return timedelta(seconds=seconds)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f"expiry needs a unit, e.g. '{v}h' or '{v}m', got {v!r}")
        return v

    @field_validator("expiry")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() <= 0:
            raise ValueError(f"expiry must be positive, got {v}")
        return v

    @field_validator("transitions")
    @classmethod
    def _no_repeats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"transitions must not repeat, got {list(v)}")
        return v


class ApprovalPolicy(_Strict):
    """Which transitions need a human, per environment, and who may approve them."""

    groups: dict[UserName, tuple[UserName, ...]] = Field(
        default_factory=dict, description="Group name -> its users; environments name groups as approvers."
    )
    public_keys: dict[UserName, tuple[str, ...]] = Field(
        default_factory=dict, description="Approver -> their public keys, one OpenSSH line each ('ssh-ed25519 AAAA... "
        "comment', as in ~/.ssh/id_ed25519.pub). Every approver of an environment with identity: signed needs one."
    )
    environments: dict[str, EnvironmentApproval] = Field(
        default_factory=lambda: {"dev": EnvironmentApproval()}, min_length=1,
        description="Rules per environment (LOCKGATE_ENVIRONMENT, default dev). An environment not listed is an "
        "error, so a typo never skips approval.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data: object) -> object:
        if isinstance(data, dict) and {"required", "approvers"} & set(data):
            old = ", ".join(f"approval.{k}" for k in ("required", "approvers") if k in data)
            raise ValueError(
                f"{old}: replaced by per-environment rules; write e.g. approval: {{environments: {{prod: "
                "{transitions: [promote, rollback], approvers: {users: [alice]}, min_approvals: 1, expiry: 24h}, "
                "dev: {transitions: []}}}} (required: false is an environment with transitions: [])"
            )
        return data

    @field_validator("public_keys")
    @classmethod
    def _ed25519_keys(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        from tasks.signatures import check_public_key

        for user, lines in v.items():
            if not lines:
                raise ValueError(f"{user}: list at least one public key")
            for i, line in enumerate(lines):
                try:
                    check_public_key(line)
                except ValueError as e:
                    raise ValueError(f"{user}[{i}]: {e}") from None
        return v

    @model_validator(mode="after")
    def _approvers_exist(self) -> "ApprovalPolicy":
        for env, rules in self.environments.items():
            path = f"environments.{env}"
            unknown = [g for g in rules.approvers.groups if g not in self.groups]
            if unknown:
                raise ValueError(f"{path}.approvers.groups: unknown group(s) {unknown}; groups: {sorted(self.groups)}")
            named = self.approver_names(env)
            keyless = [u for u in named if u not in self.public_keys]
            if rules.identity == "signed" and keyless:
                raise ValueError(f"{path}: identity signed but approval.public_keys lists no public key for "
                                 f"{', '.join(keyless)}")
            if rules.transitions and len(named) < rules.min_approvals:
                raise ValueError(
                    f"{path}: min_approvals {rules.min_approvals} but only {len(named)} approver(s) named "
                    f"({', '.join(named) or 'none'}) for transitions {list(rules.transitions)}"
                )
        return self

    def approver_names(self, environment: str) -> tuple[str, ...]:
        """Every user who may approve in ``environment``: the named users and the members of the named groups."""
        approvers = self.environments[environment].approvers
        names = list(approvers.users) + [u for g in approvers.groups for u in self.groups.get(g, ())]
        return tuple(dict.fromkeys(names))


class GovernancePolicy(_Strict):
    """Documentation duties checked before anything is registered (data_contracts/provenance.py)."""

    require_dataset_licence: bool = Field(
        False, description="Registration refuses a reference dataset whose data contract records no licence "
        "(customProperties `license`, an SPDX id; `unknown` counts as none), naming the contract and this key.")


class Policy(_Strict):
    """Everything the gates are held to. Loaded from YAML with :func:`load_policy`."""

    name: UserName = Field("default", description="Policy name, recorded with every decision.")
    validation: ValidationPolicy = ValidationPolicy()
    compilation: CompilationPolicy = CompilationPolicy()
    canary: CanaryPolicy = CanaryPolicy()
    drift: DriftPolicy = DriftPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    approval: ApprovalPolicy = ApprovalPolicy()
    governance: GovernancePolicy = GovernancePolicy()
    poisoning: PoisoningPolicy = PoisoningPolicy()


_VALID: KeptByText[Policy] = KeptByText()


def policy_problems(path: str | Path) -> tuple[Policy | None, list[str]]:
    """(the policy, []) or (None, one line per problem, each naming the key): what lint shows and load refuses.

    The file is read every time; a text found valid before in this process (every gate of a lifecycle reads the
    policy) is not parsed and validated again: each call gets its own deep copy. A text with problems is never kept."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, [f"policy file not found: {path}"]
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"policy file {path} cannot be read: {getattr(e, 'strerror', None) or e}"]
    kept = _VALID.get(text)
    if kept is None:
        kept, problems = _text_problems(text)
        if kept is None:
            return None, problems
        _VALID.keep(text, kept)
    return kept.model_copy(deep=True), []


def _text_problems(text: str) -> tuple[Policy | None, list[str]]:
    try:
        raw = load_strict(text)
    except yaml.YAMLError as e:
        return None, [f"not valid YAML: {yaml_problem(e)}"]
    if raw is None:
        return None, ["the file is empty: write at least `name: <policy name>` (every other key has a documented default)"]
    if not isinstance(raw, dict):
        return None, [f"expected a mapping of sections at the top level, got {type(raw).__name__}"]
    try:
        return Policy.model_validate(raw), []
    except ValidationError as e:
        return None, [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
                      + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"]) for err in e.errors()]


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raise a one-line LockgateError on any problem."""
    policy, problems = policy_problems(path)
    if policy is None:
        if problems[0].startswith("policy file"):
            raise LockgateError(problems[0])
        if problems[0].startswith("not valid YAML"):
            raise LockgateError(f"policy file {path} is {problems[0]}")
        raise LockgateError(f"policy file {path} is invalid: {'; '.join(problems)}")
    return policy
