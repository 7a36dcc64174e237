"""Evidence is write-once: every documented path (a re-run lifecycle, a --force re-score, an automatic rollback and
its re-score, a manual rollback, model cards, audit reports) leaves `audit verify` and `audit report` green, and a
one-byte edit to any evidence file a ledger row names turns both red, naming the file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.flow

POLICY = Path(__file__).with_name("audit_policy.yaml")


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    """This module's home; the audit tests' lean policy, with a drift breach rolling the champion back."""
    from tasks.settings import Settings

    home = tmp_path_factory.mktemp("home")
    doc = yaml.safe_load(POLICY.read_text())
    doc["name"] = "test-paths"
    doc["monitoring"] = {"on_drift_breach": "rollback", "on_quality_breach": "alert", "rescore_after_rollback": True}
    policy = home.parent / "paths_policy.yaml"
    policy.write_text(yaml.safe_dump(doc))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCKGATE_HOME", str(home))
        mp.setenv("LOCKGATE_POLICY_FILE", str(policy))
        mp.setenv("LOCKGATE_ACTOR", "tester")
        yield Settings()


def _day(root: Path, day: date, seed: int, **knobs) -> str:
    from data_contracts.synthetic_credit import generate_frame

    folder = root / f"date={day.isoformat()}"
    folder.mkdir(parents=True)
    generate_frame(600, seed=seed, day=day, id_offset=day.toordinal() * 10_000, **knobs).drop(
        columns=["defaulted"]).to_parquet(folder / "part-0.parquet", index=False)
    return str(folder)


@pytest.fixture(scope="module")
def paths(champion, module_settings, register, tmp_path_factory):
    """Every documented path, in the order a user meets them; returns the versions and partitions."""
    from pipelines.batch_inference import batch_inference
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_OK
    from pipelines.lifecycle import lifecycle
    from tasks.stores import registry_for

    first, files = champion
    assert first.decision == "champion", first.reasons
    second = lifecycle(version=register(files).version, golden=str(files.golden))
    assert second.decision == "champion", second.reasons
    again = lifecycle(version=second.version, golden=str(files.golden))  # the same version's lifecycle re-run
    assert again.decision == "champion", again.reasons
    stream = tmp_path_factory.mktemp("stream")
    clean = _day(stream, date(2026, 11, 1), seed=21)
    drifted = _day(stream, date(2026, 11, 5), seed=25, covariate_drift=1.0)
    assert [o.status for o in batch_inference(partitions=[clean]).outcomes] == ["scored"]
    assert [o.status for o in batch_inference(partitions=[clean], force=True).outcomes] == ["scored"]  # --force
    (rescored,) = batch_inference(partitions=[drifted]).outcomes  # breach: automatic rollback, then re-scored by v1
    name = module_settings.model_name
    assert rescored.model_version == first.version and registry_for(module_settings).aliases(name)["champion"] == 1
    assert main(["rollback", name, "--reason", "manual: v2 back", "--to-version", str(second.version)]) == EXIT_OK
    for _ in range(2):
        assert main(["model-card", f"{name}:{second.version}"]) == EXIT_OK
        assert main(["audit", "report"]) == EXIT_OK
    return {"v1": first.version, "v2": second.version, "clean": Path(clean).name, "drifted": Path(drifted).name}


def _named_files(settings) -> dict[str, tuple[int, str]]:
    """Every local file a ledger row names by path -> (the first row naming it, its role)."""
    from tasks.stores import ledger_for

    named: dict[str, tuple[int, str]] = {}
    for e in ledger_for(settings).entries():
        for role, where in (e.evidence_files or {}).items():
            if "://" not in where:
                named.setdefault(where, (e.seq, role))
    return named


def test_every_documented_path_leaves_the_audit_green(paths, module_settings, capsys):
    from pipelines.cli import main
    from pipelines.exit_codes import EXIT_OK
    from tasks.stores import ledger_for, lifecycle_dirs

    capsys.readouterr()
    assert main(["audit", "verify"]) == EXIT_OK, capsys.readouterr().out
    assert "hold the bytes the ledger recorded" in capsys.readouterr().out
    assert main(["audit", "report"]) == EXIT_OK, capsys.readouterr().out
    assert "every file matches" in capsys.readouterr().out

    entries = ledger_for(module_settings).entries()
    name = module_settings.model_name
    # the re-run wrote a second folder; the first run's files are as the ledger recorded them
    assert [p.name for p in lifecycle_dirs(module_settings, name, paths["v2"])] == ["lifecycle-1", "lifecycle-2"]
    approvals = [e for e in entries if e.action == "approval.auto" and e.version == paths["v2"] and
                 "canary" in e.evidence]
    assert len(approvals) == 2 and approvals[0].evidence_files["canary"] != approvals[1].evidence_files["canary"]
    # each scoring of a partition has its own files; the rows name them (path and sha256)
    scored = [e for e in entries if e.action == "partition.scored"]
    for partition, versions in ((paths["clean"], [2, 2]), (paths["drifted"], [2, 1])):
        rows = [e for e in scored if f"partition {partition}:" in e.reason]
        assert [e.version for e in rows] == versions
        for role in ("predictions", "validation.ge_result", "drift.result"):
            files = [e.evidence_files[role] for e in rows]
            assert len(set(files)) == len(files), (role, files)
    rollback = next(e for e in entries if e.action == "rollback.committed" and "monitoring breach" in e.reason)
    assert rollback.evidence_files and set(rollback.evidence_files) <= set(rollback.evidence)
    assert all(Path(p).is_file() for p in rollback.evidence_files.values())
    named = _named_files(module_settings)
    kinds = {role for _, role in named.values()}
    assert {"canary", "approval", "predictions", "drift.html", "validation.ge_result"} <= {
        k.split(".", 1)[1] if k.startswith(f"{paths['drifted']}.") else k for k in kinds}


def _flip_one_byte(path: Path) -> bytes:
    data = path.read_bytes()
    i = len(data) // 2
    path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    return data


def test_a_one_byte_edit_of_any_named_file_is_caught_by_verify_and_report(paths, module_settings, capsys, tmp_path):
    from pipelines.cli import main
    from pipelines.commands.ledger import _evidence_files
    from pipelines.exit_codes import EXIT_AUDIT_FAILED
    from tasks.stores import ledger_for, registry_for

    named = _named_files(module_settings)
    assert len(named) >= 30, named
    registry, ledger = registry_for(module_settings), ledger_for(module_settings)
    for where in named:  # every file: the verify check names it
        path = Path(where)
        original = _flip_one_byte(path)
        try:
            capsys.readouterr()
            assert not _evidence_files(module_settings, registry, ledger, None), where
            assert f"mismatch: {where}" in " ".join(capsys.readouterr().out.split())
        finally:
            path.write_bytes(original)
    # one file of each kind through both commands
    by_role = {}
    for where, (_, role) in named.items():
        by_role.setdefault(role.rsplit(".", 1)[-1] if role.startswith("date=") else role, where)
    for role, where in sorted(by_role.items()):
        path = Path(where)
        original = _flip_one_byte(path)
        try:
            capsys.readouterr()
            assert main(["audit", "verify"]) == EXIT_AUDIT_FAILED, where
            assert where in capsys.readouterr().out  # named, on one line
            assert main(["audit", "report", "--out", str(tmp_path / role)]) == EXIT_AUDIT_FAILED, where
            out = capsys.readouterr().out
            assert "missing or changed" in out and where in out
        finally:
            path.write_bytes(original)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0 and main(["audit", "report", "--out", str(tmp_path / "after")]) == 0
