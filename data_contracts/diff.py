"""What changed between two versions of a data contract, and whether it breaks.

:func:`contract_diff` compares two loaded contracts column by column and lists each
change with its kind, column and key path, old and new value, and whether it is
**breaking**. "Breaking" is read from the producer's side: a change is breaking when
data that satisfied the old contract can fail the new one (a batch that passed
yesterday is quarantined or fails today), or when a downstream role moves (label, id).
Loosening a rule is not breaking.

Rule table (old -> new):

==========================  ================================================  ========
kind                        change                                            breaking
==========================  ================================================  ========
column_removed              a column is gone                                  yes
column_added                a new column with required/primaryKey             yes
column_added                a new optional column                             no
type_changed                logicalType integer -> number (widening)          no
type_changed                any other logicalType change, or timestamp zone   yes
minimum / maximum           bound added, min raised, max lowered, or made     yes
                            exclusive at the same value (tightened)
minimum / maximum           bound removed, min lowered, max raised            no
min_length / max_length     as minimum / maximum                              yes / no
allowed_values              values removed, or a set added to a free column   yes
allowed_values              values only added, or the set removed             no
required                    turned on                                         yes
required                    turned off                                        no
unique                      turned on                                         yes
unique                      turned off                                        no
pattern                     added or changed (regex containment is undecidable)  yes
pattern                     removed                                           no
row_count                   bounds tightened / loosened                       yes / no
label_column / id_column    changed                                           yes
timestamp_column, features  changed (lineage/model inputs, not data validity)  no
==========================  ================================================  ========

The version bump (semver major.minor.patch) is reported with the diff; a breaking change
without a major bump is flagged in :attr:`ContractDiff.bump_sufficient` (not itself a change).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.contract import Contract, SchemaProperty, _is_required, _is_unique

ChangeKind = Literal[
    "column_removed", "column_added", "type_changed", "minimum", "maximum", "min_length", "max_length",
    "allowed_values", "required", "unique", "pattern", "row_count", "label_column", "id_column",
    "timestamp_column", "features",
]  # fmt: skip
VersionBump = Literal["major", "minor", "patch", "none", "downgrade", "unknown"]

# (old logicalType, new logicalType) -> breaking. Pairs not listed are breaking.
TYPE_CHANGE_BREAKING: dict[tuple[str, str], bool] = {
    ("integer", "number"): False,  # every int is a number; the dtype check admits ints for number
}


class ContractChange(BaseModel):
    """One difference between two contracts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ChangeKind = Field(description="What changed (see the module's rule table).")
    column: str | None = Field(None, description="Column, or None for table-level changes.")
    path: str = Field(description="Key path in the new contract (the old one for removed columns).")
    old: Any = Field(None, description="Old value (None: absent).")
    new: Any = Field(None, description="New value (None: absent).")
    breaking: bool = Field(description="Data valid under the old contract may fail the new one, or a role moved.")
    reason: str = Field(description="One line: why it is or is not breaking.")


class ContractDiff(BaseModel):
    """Changes from ``old`` to ``new`` with version information."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Contract name (the new one's).")
    old_version: str = Field(description="Old contract version.")
    new_version: str = Field(description="New contract version.")
    old_fingerprint: str = Field(description="sha256 of the old contract.")
    new_fingerprint: str = Field(description="sha256 of the new contract.")
    version_bump: VersionBump = Field(description="Semver bump from old to new version.")
    changes: list[ContractChange] = Field(default_factory=list, description="Every change, contract order.")

    @property
    def breaking_changes(self) -> list[ContractChange]:
        return [c for c in self.changes if c.breaking]

    @property
    def is_breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    @property
    def bump_sufficient(self) -> bool:
        """A breaking change needs a major bump; any change needs some bump."""
        if self.is_breaking:
            return self.version_bump == "major"
        if self.changes:
            return self.version_bump in ("major", "minor", "patch")
        return True

    def summary_line(self) -> str:
        n_break = len(self.breaking_changes)
        bump = f"{self.old_version} -> {self.new_version} ({self.version_bump} bump)"
        verdict = f"{n_break} breaking of {len(self.changes)} changes" if self.changes else "no changes"
        note = "" if self.bump_sufficient else "; version bump too small for these changes"
        return f"{self.name} {bump}: {verdict}{note}"


def contract_diff(old: Contract, new: Contract) -> ContractDiff:
    """List the changes from ``old`` to ``new`` (pure; both contracts already loaded and checked)."""
    changes: list[ContractChange] = []
    tpath = f"schema[0]({new.table.name})"
    old_props = {p.name: p for p in old.table.properties}
    new_props = {p.name: (i, p) for i, p in enumerate(new.table.properties)}

    for i, p in enumerate(old.table.properties):
        if p.name not in new_props:
            changes.append(ContractChange(
                kind="column_removed", column=p.name, path=f"schema[0]({old.table.name}).properties[{i}]({p.name})",
                old=p.logicalType, new=None, breaking=True, reason="a column the old contract had is gone",
            ))  # fmt: skip
    for name, (i, p) in new_props.items():
        ppath = f"{tpath}.properties[{i}]({name})"
        if name not in old_props:
            required = _is_required(p)
            changes.append(ContractChange(
                kind="column_added", column=name, path=ppath, old=None, new=p.logicalType, breaking=required,
                reason="new required column: old data lacks it" if required else "new optional column",
            ))  # fmt: skip
            continue
        changes += _column_changes(old_props[name], p, old, new, ppath)

    changes += _row_count_changes(old, new, f"{tpath}.quality")
    changes += _role_changes(old, new)
    return ContractDiff(
        name=new.name,
        old_version=str(old.version),
        new_version=str(new.version),
        old_fingerprint=old.fingerprint,
        new_fingerprint=new.fingerprint,
        version_bump=version_bump(str(old.version), str(new.version)),
        changes=changes,
    )


def version_bump(old: str, new: str) -> VersionBump:
    """Semver bump from ``old`` to ``new`` (``unknown`` if either is not ``X.Y.Z``)."""
    a, b = _semver(old), _semver(new)
    if a is None or b is None:
        return "unknown"
    if b == a:
        return "none"
    if b < a:
        return "downgrade"
    return "major" if b[0] > a[0] else "minor" if b[1] > a[1] else "patch"


def _semver(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


# ---------------------------------------------------------------------- columns


def _type_of(p: SchemaProperty) -> str:
    if p.logicalType == "timestamp":
        opts = p.options()
        return f"timestamp[tz={opts.defaultTimezone}]" if opts.timezone else "timestamp"
    return str(p.logicalType)


def _column_changes(
    op: SchemaProperty, np_: SchemaProperty, old: Contract, new: Contract, ppath: str
) -> list[ContractChange]:
    col = np_.name
    out: list[ContractChange] = []

    def add(kind: str, o: Any, n: Any, breaking: bool, reason: str, path: str = ppath) -> None:
        out.append(ContractChange(kind=kind, column=col, path=path, old=o, new=n, breaking=breaking, reason=reason))

    ot, nt = _type_of(op), _type_of(np_)
    if ot != nt:
        breaking = TYPE_CHANGE_BREAKING.get((ot, nt), True)
        add("type_changed", ot, nt, breaking, "type widened" if not breaking else "type narrowed or changed",
            f"{ppath}.logicalType")
    # Bounds only compare within a numeric type (a type change is already reported).
    oo, no = op.options(), np_.options()
    opath = f"{ppath}.logicalTypeOptions"
    if op.logicalType in ("integer", "number") and np_.logicalType in ("integer", "number"):
        for kind, key, bound in (("minimum", "minimum", "lower_bound"), ("maximum", "maximum", "upper_bound")):
            ob, nb = _numeric(getattr(oo, bound)()), _numeric(getattr(no, bound)())
            if ob != nb:
                tight = _tighter(ob, nb, lower=(kind == "minimum"))
                add(kind, _show_bound(ob), _show_bound(nb), tight, "range tightened" if tight else "range loosened",
                    f"{opath}.{key}")
    for kind, key in (("min_length", "minLength"), ("max_length", "maxLength")):
        ob, nb = _bound(getattr(oo, key), False), _bound(getattr(no, key), False)
        if ob != nb:
            tight = _tighter(ob, nb, lower=(kind == "min_length"))
            add(kind, getattr(oo, key), getattr(no, key), tight, "length range tightened" if tight else
                "length range loosened", f"{opath}.{key}")

    oa, na = old.allowed_values(col), new.allowed_values(col)
    if _norm_set(oa) != _norm_set(na):
        if na is None:
            add("allowed_values", oa, None, False, "allowed set removed")
        elif oa is None:
            add("allowed_values", None, na, True, "allowed set added to an unrestricted column")
        else:
            removed = [v for v in oa if v not in na]
            added = [v for v in na if v not in oa]
            reason = (f"values removed: {removed}" if removed else "") + (
                ("; " if removed and added else "") + f"values added: {added}" if added else "")
            add("allowed_values", oa, na, bool(removed), f"allowed set {'shrunk' if removed else 'grown'} ({reason})")

    for kind, fn in (("required", _is_required), ("unique", _is_unique)):
        o, n = fn(op), fn(np_)
        if o != n:
            add(kind, o, n, n, f"{kind} turned {'on' if n else 'off'}", f"{ppath}.{kind}")

    op_pat, np_pat = _patterns(op), _patterns(np_)
    if op_pat != np_pat:
        removed_only = np_pat < op_pat
        add("pattern", sorted(op_pat) or None, sorted(np_pat) or None, not removed_only,
            "pattern removed" if removed_only else "pattern added or changed")
    return out


def _bound(value: Any, exclusive: Any) -> tuple[float, bool] | None:
    return None if value is None else (float(value), bool(exclusive))


def _numeric(bound: tuple[Any, bool] | None) -> tuple[float, bool] | None:
    return None if bound is None else (float(bound[0]), bound[1])


def _show_bound(b: tuple[float, bool] | None) -> Any:
    if b is None:
        return None
    value = int(b[0]) if b[0].is_integer() else b[0]
    return f"{value} (exclusive)" if b[1] else value


def _tighter(old: tuple[float, bool] | None, new: tuple[float, bool] | None, *, lower: bool) -> bool:
    """Whether the new bound admits less than the old one (a lower bound if ``lower``)."""
    if new is None:
        return False
    if old is None:
        return True
    if old[0] != new[0]:
        return new[0] > old[0] if lower else new[0] < old[0]
    return new[1] and not old[1]


def _norm_set(values: list[Any] | None) -> frozenset | None:
    return None if values is None else frozenset(repr(v) for v in values)


def _patterns(p: SchemaProperty) -> frozenset[str]:
    found = {p.options().pattern} if p.options().pattern is not None else set()
    for rule in p.quality_rules():
        if rule.kind == "library" and rule.metric_name == "invalidValues" and "pattern" in (rule.arguments or {}):
            found.add(rule.arguments["pattern"])
    return frozenset(found)


# ------------------------------------------------------------------ table level


def _row_count(contract: Contract) -> tuple[int | None, int | None] | None:
    from data_contracts.ge_suite import expectation_specs

    for spec in expectation_specs(contract, include_label=True):
        if spec.ge_type == "ExpectTableRowCountToBeBetween":
            return spec.kwargs["min_value"], spec.kwargs["max_value"]
    return None


def _row_count_changes(old: Contract, new: Contract, path: str) -> list[ContractChange]:
    o, n = _row_count(old), _row_count(new)
    if o == n:
        return []
    ol, oh = o or (None, None)
    nl, nh = n or (None, None)
    tight = _tighter(_bound(ol, False), _bound(nl, False), lower=True) or _tighter(
        _bound(oh, False), _bound(nh, False), lower=False
    )
    return [ContractChange(kind="row_count", column=None, path=path, old=list(o) if o else None,
                           new=list(n) if n else None, breaking=tight,
                           reason="row count bounds tightened" if tight else "row count bounds loosened")]


def _role_changes(old: Contract, new: Contract) -> list[ContractChange]:
    out = []
    for kind, attr, breaking in (
        ("label_column", "label_column", True),
        ("id_column", "id_column", True),
        ("timestamp_column", "timestamp_column", False),
        ("features", "feature_columns", False),
    ):
        o, n = getattr(old, attr), getattr(new, attr)
        if o != n:
            why = "role moved: consumers join or train on it" if breaking else "lineage/model inputs, not data validity"
            out.append(ContractChange(kind=kind, column=None, path="customProperties", old=o, new=n,
                                      breaking=breaking, reason=why))
    return out
