import pytest

from tasks.errors import LockgateError
from tasks.policy import Policy, load_policy
from tasks.settings import DEMO_POLICY


def test_demo_policy_loads():
    policy = load_policy(DEMO_POLICY)
    assert policy.name == "demo" and policy.approval.environments["dev"].transitions == ()
    assert policy.approval.environments["prod"].transitions == ("promote", "rollback")
    assert policy.approval.approver_names("prod") == ("ml-lead", "risk-officer-1", "risk-officer-2")
    assert policy.governance.require_dataset_licence  # the demo's contract records its licence
    assert not Policy().governance.require_dataset_licence  # off unless a policy asks for it


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("canary:\n  min_aux: 0.5\n", "canary.min_aux: unknown key"),
        ("typo_section: {}\n", "typo_section: unknown key"),
        ("drift:\n  max_drifted_share: 2\n", "drift.max_drifted_share"),
        ("validation: [1, 2\n", "not valid YAML"),
        ("compilation:\n  platforms: [cpu, abacus]\n", "compilation.platforms.1"),
        ("compilation:\n  batch_buckets: [64, 1]\n", "strictly increasing"),
        ("drift:\n  warn_drifted_share: 0.5\n  max_drifted_share: 0.3\n", "must not exceed"),
        ("compilation:\n  targets: [cpu, v9z-4]\n", "unknown target(s) ['v9z-4']; known: ['cpu', 'tpu7x-8'"),
        ("compilation:\n  targets: [cpu]\n  required_targets: [v5e-4]\n", "not in targets"),
        ("compilation:\n  batch_buckets: [0, 8]\n", "positive"),
        ("compilation:\n  variants: [int8]\n", "start with f32"),
        ("validation:\n  data_docs: sometimes\n", "validation.data_docs"),
        ("monitoring:\n  evidently_report: never\n", "monitoring.evidently_report"),
        ("canary:\n  plots: sometimes\n", "canary.plots"),
        ("canary:\n  latency_retimes: -1\n", "canary.latency_retimes"),
        ("governance:\n  require_dataset_license: true\n", "governance.require_dataset_license: unknown key"),
        ("governance:\n  require_dataset_licence: sometimes\n", "governance.require_dataset_licence"),
        # malformed in the ways a careless edit makes: refused at load, naming the key
        ("validation:\n  max_quarantine_share: 0.05\n  max_quarantine_share: 1.0\n",
         "duplicate key 'max_quarantine_share' (first at line 2) at line 3"),
        ("canary:\n  margins: {auc: .nan}\n", "canary.margins.auc: Input should be a finite number"),
        ("canary:\n  min_auc: .inf\n", "canary.min_auc"),
        ("canary:\n  max_p99_ms: {1: -20}\n", "canary.max_p99_ms.1: Input should be greater than 0"),
        ("canary:\n  max_p99_ms: {0: 20}\n", "canary.max_p99_ms.0.[key]"),
        ("canary:\n  latency_buckets: [0, -1]\n", "latency_buckets must be positive and strictly increasing"),
        ("approval:\n  environments:\n    prod:\n      approvers: {users: ['']}\n",
         "approval.environments.prod.approvers.users.0: String should have at least 1 character"),
        ("approval:\n  environments:\n    prod:\n      approvers: {users: [' ml-lead']}\n",
         "approval.environments.prod.approvers.users.0: String should match pattern"),
        ("approval:\n  environments:\n    prod:\n      approvers: {users: [a, a]}\n", "names must not repeat"),
        ("approval:\n  groups: {risk: ['']}\n  environments: {dev: {}}\n", "approval.groups.risk.0"),
        ("approval:\n  environments:\n    prod:\n      expiry: 99999999999d\n", "expiry must be at most 90d"),
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("[1, 2]\n", "expected a mapping of sections at the top level, got list"),
        ("name: ''\n", "name: String should have at least 1 character"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "nesting deeper than 64 levels"),
        ("x: &a [*a]\n", "YAML aliases (*name) are not allowed"),
        ("a: &a [1, 2]\nb: [*a, *a, *a]\n", "YAML aliases (*name) are not allowed"),
    ],
)
def test_bad_policy_is_one_line_error_naming_the_key(tmp_path, text, fragment):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(LockgateError) as e:
        load_policy(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert path.read_text() == text  # input untouched


def test_missing_policy_file(tmp_path):
    with pytest.raises(LockgateError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_a_policy_text_valid_before_is_not_parsed_again_and_a_changed_or_bad_file_is(tmp_path, monkeypatch):
    from tasks import policy as module

    checks = []
    real = module._text_problems
    monkeypatch.setattr(module, "_text_problems", lambda text: checks.append(text) or real(text))
    first_text = "name: kept-once\ncanary:\n  min_auc: 0.61\n"  # a text no other test loads
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(first_text)
    b.write_text(first_text)
    first, second, other = load_policy(a), load_policy(a), load_policy(b)
    assert first == second == other and first is not second and first.canary.min_auc == 0.61
    assert checks == [first_text]  # one parse for the three loads, the same text in another file included
    a.write_text(first_text.replace("0.61", "0.62"))  # the file is read every time: a change is seen
    assert load_policy(a).canary.min_auc == 0.62 and len(checks) == 2
    a.write_text(first_text.replace("min_auc", "min_aux"))
    for _ in range(2):  # a bad text is never kept: refused each time, naming the key
        with pytest.raises(LockgateError, match="canary.min_aux: unknown key"):
            load_policy(a)
    assert len(checks) == 4


def test_policy_is_frozen():
    with pytest.raises(Exception):
        Policy().canary.min_auc = 0.1


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("canary:\n  regression:\n    margins: {rmse: -0.1}\n", "canary.regression.margins: Value error, margins must be >= 0"),
        ("canary:\n  regression:\n    margins: {}\n", "canary.regression.margins: Dictionary should have at least 1"),
        ("canary:\n  regression:\n    margins: {auc: 0.01}\n", "canary.regression.margins.auc.[key]"),
        ("canary:\n  regression:\n    slice_metric: auc\n", "canary.regression.slice_metric"),
        ("canary:\n  regression:\n    max_rmse: 0\n", "canary.regression.max_rmse"),
        ("canary:\n  regression:\n    min_rsquared: 0.1\n", "canary.regression.min_rsquared: unknown key"),
        ("canary:\n  margins: {brier: -0.01}\n", "canary.margins: Value error, margins must be >= 0"),
    ],
)
def test_bad_regression_canary_policy_is_one_line_error_naming_the_key(tmp_path, text, fragment):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(LockgateError) as e:
        load_policy(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_canary_rules_per_task(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("canary:\n  margins: {auc: 0.02}\n  regression:\n    margins: {rmse: 0.5}\n    slice_margin: 0.7\n")
    canary = load_policy(path).canary
    assert canary.margins_for("classification") == {"auc": 0.02} and canary.margins_for("regression") == {"rmse": 0.5}
    assert canary.slice_rule("classification") == ("auc", 0.05) and canary.slice_rule("regression") == ("rmse", 0.7)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("approval:\n  required: true\n  approvers: [carol]\n",
         "approval: Value error, approval.required, approval.approvers: replaced by per-environment rules"),
        ("approval:\n  environments:\n    prod:\n      transitions: [promote]\n      aprovers: {users: [a]}\n",
         "approval.environments.prod.aprovers: unknown key"),
        ("approval:\n  environments:\n    prod:\n      approvers: {users: [a], teams: [x]}\n",
         "approval.environments.prod.approvers.teams: unknown key"),
        ("approval:\n  environments:\n    prod:\n      transitions: [deploy]\n",
         "approval.environments.prod.transitions.0"),
        ("approval:\n  environments:\n    prod:\n      transitions: [promote, promote]\n      approvers: {users: [a]}\n",
         "must not repeat"),
        ("approval:\n  environments:\n    prod:\n      expiry: 24\n", "approval.environments.prod.expiry: Value error, "
         "expiry needs a unit, e.g. '24h'"),
        ("approval:\n  environments:\n    prod:\n      expiry: 1 week\n", "approval.environments.prod.expiry"),
        ("approval:\n  environments:\n    prod:\n      expiry: 0m\n", "expiry must be positive"),
        ("approval:\n  environments:\n    prod:\n      min_approvals: 0\n", "approval.environments.prod.min_approvals"),
        ("approval:\n  environments:\n    prod:\n      approvers: {groups: [risk]}\n",
         "environments.prod.approvers.groups: unknown group(s) ['risk']"),
        ("approval:\n  groups: {risk: [a]}\n  environments:\n    prod:\n      transitions: [promote]\n"
         "      approvers: {users: [a], groups: [risk]}\n      min_approvals: 2\n",
         "environments.prod: min_approvals 2 but only 1 approver(s) named (a)"),
        ("approval:\n  environments: {}\n", "approval.environments: Dictionary should have at least 1"),
    ],
)
def test_bad_approval_policy_is_one_line_error_naming_the_key(tmp_path, text, fragment):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(LockgateError) as e:
        load_policy(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_approval_policy_per_environment(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("approval:\n  groups: {risk: [carol, dave], ops: [dave, erin]}\n  environments:\n"
                    "    staging: {transitions: [rollback], approvers: {users: [bob]}, expiry: 90m}\n"
                    "    prod: {transitions: [promote, rollback], approvers: {users: [erin], groups: [risk, ops]},\n"
                    "           min_approvals: 3, separation_of_duties: false, expiry: 1.5d}\n")
    approval = load_policy(path).approval
    assert approval.approver_names("prod") == ("erin", "carol", "dave")  # each user once, in order
    assert approval.environments["staging"].expiry.total_seconds() == 90 * 60
    assert approval.environments["prod"].expiry.total_seconds() == 1.5 * 86400
    assert approval.environments["prod"].separation_of_duties is False
    assert Policy().approval.environments["dev"].transitions == ()  # no approval section: dev auto-approves


def test_policy_problems_lists_every_problem(tmp_path):
    from tasks.policy import policy_problems

    path = tmp_path / "policy.yaml"
    path.write_text("canary:\n  margins: {auc: .nan}\n  latency_buckets: [0]\ndrift: {max_drifted_share: 2}\n")
    policy, problems = policy_problems(path)
    assert policy is None and len(problems) == 3
    assert [p.split(":")[0] for p in problems] == ["canary.margins.auc", "canary.latency_buckets",
                                                  "drift.max_drifted_share"]


def test_canary_fairness_defaults_and_the_demo_sets_them_explicitly():
    """A user's policy: shadow checks inform, latency ratios under 1 ms are not judged; the demo says what it does."""
    canary = Policy().canary
    assert canary.shadow_decides is False and canary.latency_floor_ms == 1.0
    demo = load_policy(DEMO_POLICY).canary
    assert demo.shadow_decides is True and demo.latency_floor_ms == 1.0
    demo_text = DEMO_POLICY.read_text()
    assert "shadow_decides: true" in demo_text and "latency_floor_ms:" in demo_text  # explicit, not by default


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("canary:\n  shadow_decides: maybe\n", "canary.shadow_decides: Input should be a valid boolean"),
        ("canary:\n  shadow_decides: 1\n", "canary.shadow_decides: Input should be a valid boolean"),
        ("canary:\n  shadow_decides: 'true'\n", "canary.shadow_decides: Input should be a valid boolean"),
        ("canary:\n  shadow_decide: true\n", "canary.shadow_decide: unknown key"),
        ("canary:\n  latency_floor_ms: -1\n", "canary.latency_floor_ms: Input should be greater than or equal to 0"),
        ("canary:\n  latency_floor_ms: fast\n", "canary.latency_floor_ms: Input should be a valid number"),
        ("canary:\n  latency_floor_ms: .inf\n", "canary.latency_floor_ms"),
        ("canary:\n  latency_floor: 1\n", "canary.latency_floor: unknown key"),
    ],
)
def test_bad_canary_fairness_keys_are_refused_naming_the_key(tmp_path, text, fragment):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(LockgateError) as e:
        load_policy(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_canary_fairness_keys_load(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("canary:\n  shadow_decides: true\n  latency_floor_ms: 0\n")
    canary = load_policy(path).canary
    assert canary.shadow_decides is True and canary.latency_floor_ms == 0


def test_canary_plots_are_drawn_always_or_only_for_a_failed_canary():
    from tasks.policy import CanaryPolicy

    assert [CanaryPolicy().draws_plots(passed) for passed in (True, False)] == [True, True]
    assert [CanaryPolicy(plots="on_failures").draws_plots(passed) for passed in (True, False)] == [False, True]
