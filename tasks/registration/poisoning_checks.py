"""The four poisoning checks as pure functions over encoded features (f32[n, d]) and labels.

Each returns the findings it makes (:class:`Finding`, empty when the data look clean) and the
measured values behind them; tasks/registration/poisoning.py turns frames into these arrays,
applies the policy's modes and decides. Distances are Euclidean over the contract's encoded
features (models/features.py: standardized numerics, one-hot categories), so one standard
deviation of a numeric column and half a category change (sqrt(2)/2) weigh about the same.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

MAX_LISTED_IDS = 1000  # row ids listed per finding (the count is always the full one)


class Finding(BaseModel):
    """One thing the screen found: which check, which rows, the numbers and the thresholds behind it."""

    model_config = ConfigDict(extra="forbid")

    check: str = Field(description="label_flips, duplicates, far_cluster or label_balance.")
    mode: str = Field("warn", description="The policy's mode for the check: warn or fail.")
    summary: str = Field(description="One line naming the check, the counts, values and thresholds.")
    row_ids: list[str] = Field(default_factory=list, description=f"Row ids (the contract's id column), at most "
                               f"{MAX_LISTED_IDS}; counts.rows is the full number.")
    counts: dict[str, int] = Field(default_factory=dict, description="Counts behind the finding (rows, suspects, ...).")
    values: dict[str, float | str] = Field(default_factory=dict, description="Measured values (z, ratio, shares, ...).")
    thresholds: dict[str, float] = Field(default_factory=dict, description="The policy's thresholds they were held to.")


def _ids(ids: np.ndarray, rows: np.ndarray) -> list[str]:
    return [str(v) for v in ids[np.sort(rows)][:MAX_LISTED_IDS]]


def nearest_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances f64[n, k], indices int[n, k]) of every row's k nearest other rows, nearest first."""
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    k = min(k, n - 1)
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    # a row is its own nearest neighbour, except among exact duplicates, where it may come later: drop it wherever it is
    own = idx == np.arange(n)[:, None]
    keep = ~own
    keep[~own.any(axis=1), -1] = False  # its own row not returned (ties): drop the farthest instead
    return dist[keep].reshape(n, k), idx[keep].reshape(n, k)


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected component label per node of an undirected graph given as int[m, 2] edges."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    return connected_components(graph, directed=False)[1]


def label_flip_findings(y: np.ndarray, idx: np.ndarray, ids: np.ndarray, slices: dict[str, np.ndarray], *,
                        min_disagreement: float, min_z: float, min_ratio: float, min_suspects: int
                        ) -> tuple[list[Finding], dict[str, float]]:
    """Slices whose rows disagree with their neighbours' labels far beyond the base rate.

    A row's disagreement is the share of its neighbours (``idx``, int[n, k]) carrying another label; it is a suspect
    at ``min_disagreement`` or more. How much disagreement a slice should show depends on its neighbourhoods' label mix
    (a positive among mostly negative neighbours disagrees, so a low-risk slice's few defaults do naturally): rows are
    grouped by their neighbours' label counts, and a slice's expected disagreement is, row by row, the mean
    disagreement of the rows in the same group outside the slice (a stratified comparison, Cochran-Mantel-Haenszel
    style). Reported when the slice has >= ``min_suspects`` suspects, z = (observed - expected) / sqrt(sum of the
    groups' variances) >= ``min_z`` and observed / expected >= ``min_ratio``; the finding lists the slice's suspects.

    Args:
      y: int[n] class labels. ids: the rows' ids. slices: name ('column=value') -> bool[n] membership.
    """
    neighbour_labels = y[idx]
    disagreement = (neighbour_labels != y[:, None]).mean(axis=1)
    suspect = disagreement >= min_disagreement
    classes = np.unique(y)
    counts = np.stack([(neighbour_labels == c).sum(axis=1) for c in classes], axis=1)
    _, group = np.unique(counts, axis=0, return_inverse=True)
    group = group.reshape(-1)
    n_groups = int(group.max()) + 1 if len(group) else 0

    def sums(member):
        return (np.bincount(group[member], minlength=n_groups),
                np.bincount(group[member], weights=disagreement[member], minlength=n_groups),
                np.bincount(group[member], weights=disagreement[member] ** 2, minlength=n_groups))

    everyone = np.ones(len(y), bool)
    all_n, all_s, all_q = sums(everyone)
    findings, measured = [], {"suspects": int(suspect.sum()), "suspect_share": float(suspect.mean()) if len(y) else 0.0,
                              "mean_disagreement": float(disagreement.mean()) if len(y) else 0.0, "max_slice_z": 0.0}
    for name, member in slices.items():
        in_n, in_s, _ = sums(member)
        out_n, out_s, out_q = all_n - in_n, all_s - in_s, all_q - sums(member)[2]
        base_n, base_s, base_q = (np.where(out_n > 0, out_n, all_n), np.where(out_n > 0, out_s, all_s),
                                  np.where(out_n > 0, out_q, all_q))
        mean = base_s / np.maximum(base_n, 1)
        var = np.maximum(base_q / np.maximum(base_n, 1) - mean ** 2, 0.0)
        expected, observed = float((in_n * mean).sum()), float(in_s.sum())
        sd = float(np.sqrt((in_n * var).sum()))
        z = (observed - expected) / sd if sd > 0 else 0.0
        ratio = observed / expected if expected > 0 else (np.inf if observed else 1.0)
        n_in, n_suspects = int(member.sum()), int((member & suspect).sum())
        measured["max_slice_z"] = max(measured["max_slice_z"], float(z))
        if n_suspects >= min_suspects and z >= min_z and ratio >= min_ratio:
            rows = np.flatnonzero(member & suspect)
            findings.append(Finding(
                check="label_flips",
                summary=f"label_flips: slice {name}: mean disagreement with the {idx.shape[1]} nearest neighbours' "
                        f"labels {observed / n_in:.3f} vs {expected / n_in:.3f} expected from rows of the same "
                        f"neighbourhood mix outside it (z {z:.1f} >= {min_z:g}, ratio {ratio:.2f} >= {min_ratio:g}); "
                        f"{n_suspects} of {n_in} rows disagree with >= {min_disagreement:.0%} of their neighbours",
                row_ids=_ids(ids, rows), counts={"rows": n_suspects, "slice_rows": n_in},
                values={"slice": name, "mean_disagreement": round(observed / n_in, 5),
                        "expected_disagreement": round(expected / n_in, 5), "z": round(float(z), 3),
                        "ratio": round(float(ratio), 4)},
                thresholds={"min_disagreement": min_disagreement, "min_z": min_z, "min_ratio": min_ratio,
                            "min_suspects": min_suspects}))
    return findings, measured


def duplicate_findings(x: np.ndarray, y: np.ndarray, ids: np.ndarray, dist: np.ndarray, idx: np.ndarray, *,
                       near_distance: float, max_conflicting_rows: int, conflict) -> tuple[list[Finding], dict[str, float]]:
    """Exact duplicates (equal encoded features) and near duplicates (a neighbour within ``near_distance``) whose labels
    conflict (``conflict(a, b) -> bool[m]``). One finding when more than ``max_conflicting_rows`` rows are in such
    groups; it lists them, with the number of groups."""
    _, exact = np.unique(np.ascontiguousarray(x), axis=0, return_inverse=True)
    exact = exact.reshape(-1)
    order = np.argsort(exact, kind="stable")
    same = exact[order][1:] == exact[order][:-1]
    exact_pairs = np.stack([order[:-1][same], order[1:][same]], axis=1)  # consecutive members of a group
    rows, cols = np.nonzero(dist <= near_distance)
    near_pairs = np.stack([rows, idx[rows, cols]], axis=1)
    pairs = np.concatenate([exact_pairs, near_pairs]) if len(near_pairs) else exact_pairs
    label = _components(len(x), pairs)
    # a group conflicts when its labels are not all alike: compare each member with the group's first member
    first = np.full(label.max() + 1 if len(label) else 0, -1)
    first[label[::-1]] = np.arange(len(label))[::-1]
    bad_group = np.zeros(len(first), bool)
    np.logical_or.at(bad_group, label, conflict(y, y[first[label]]))
    sizes = np.bincount(label)
    in_bad = bad_group[label] & (sizes[label] > 1)
    n_bad = int(in_bad.sum())
    n_exact_rows = int(np.isin(exact, exact[exact_pairs.reshape(-1)]).sum()) if len(exact_pairs) else 0
    measured = {"conflicting_duplicate_rows": n_bad, "duplicate_rows": int((sizes[label] > 1).sum()),
                "exact_duplicate_rows": n_exact_rows}
    if n_bad <= max_conflicting_rows:
        return [], measured
    rows = np.flatnonzero(in_bad)
    n_groups = len(np.unique(label[rows]))
    return [Finding(
        check="duplicates",
        summary=f"duplicates: {n_bad} rows in {n_groups} groups of exact or near duplicates (encoded distance <= "
                f"{near_distance:g}) carry conflicting labels (allowed {max_conflicting_rows})",
        row_ids=_ids(ids, rows), counts={"rows": n_bad, "groups": n_groups},
        values={"exact_duplicate_rows": n_exact_rows},
        thresholds={"near_distance": near_distance, "max_conflicting_rows": max_conflicting_rows})], measured


def far_cluster_findings(x: np.ndarray, golden: np.ndarray, ids: np.ndarray, *, golden_quantile: float, min_rows: int
                         ) -> tuple[list[Finding], dict[str, float]]:
    """Clusters of training rows far from every golden row.

    A row is far when its distance to the nearest golden row exceeds ``golden_quantile`` of the golden rows'
    distances to their nearest other golden row (so about 1 - golden_quantile of clean rows are far, scattered).
    Far rows within that same distance of each other are linked; a connected group of at least ``min_rows`` is a
    finding listing its rows."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=2).fit(golden)
    golden_nn = index.kneighbors(golden)[0][:, 1]
    limit = float(np.quantile(golden_nn, golden_quantile))
    to_golden = index.kneighbors(x, n_neighbors=1)[0][:, 0]
    far = np.flatnonzero(to_golden > limit)
    measured = {"far_rows": int(len(far)), "far_share": float(len(far) / max(len(x), 1)), "far_distance": limit,
                "largest_far_cluster": 0}
    if len(far) < min_rows:
        return [], measured
    graph = NearestNeighbors(radius=limit).fit(x[far]).radius_neighbors_graph(x[far]).tocoo()
    label = _components(len(far), np.stack([graph.row, graph.col], axis=1))
    sizes = np.bincount(label)
    measured["largest_far_cluster"] = int(sizes.max())
    findings = []
    for c in np.flatnonzero(sizes >= min_rows)[np.argsort(-sizes[sizes >= min_rows], kind="stable")]:
        rows = far[label == c]
        findings.append(Finding(
            check="far_cluster",
            summary=f"far_cluster: {len(rows)} training rows lie together, each farther from every golden row than "
                    f"{limit:.3g} (the golden rows' {golden_quantile:.0%} nearest-neighbour distance); "
                    f"cluster of >= {min_rows} rows ({len(far)} far rows in all, "
                    f"{(1 - golden_quantile) * len(x):.0f} expected scattered)",
            row_ids=_ids(ids, rows), counts={"rows": len(rows), "far_rows": len(far)},
            values={"median_distance_to_golden": round(float(np.median(to_golden[rows])), 4),
                    "far_distance": round(limit, 4)},
            thresholds={"golden_quantile": golden_quantile, "min_rows": min_rows}))
    return findings, measured


def label_balance_findings(y: np.ndarray, golden_y: np.ndarray, *, max_share_diff: float, min_z: float
                           ) -> tuple[list[Finding], dict[str, float]]:
    """Classes whose share differs between training and golden labels by more than ``max_share_diff`` with a pooled
    two-proportion |z| >= ``min_z`` (for two classes, only the larger one's label is reported: they mirror)."""
    classes = np.unique(np.concatenate([y, golden_y]))
    findings, measured = [], {"max_share_diff": 0.0}
    for c in classes[1:] if len(classes) == 2 else classes:
        p1, p2 = float((y == c).mean()), float((golden_y == c).mean())
        pooled = (p1 * len(y) + p2 * len(golden_y)) / (len(y) + len(golden_y))
        se = np.sqrt(pooled * (1 - pooled) * (1 / len(y) + 1 / len(golden_y)))
        z = (p1 - p2) / se if se > 0 else 0.0
        measured["max_share_diff"] = max(measured["max_share_diff"], abs(p1 - p2))
        measured[f"share_train:{c}"], measured[f"share_golden:{c}"] = p1, p2
        if abs(p1 - p2) > max_share_diff and abs(z) >= min_z:
            findings.append(Finding(
                check="label_balance",
                summary=f"label_balance: label {c} is {p1:.1%} of {len(y)} training rows vs {p2:.1%} of "
                        f"{len(golden_y)} golden rows (difference {p1 - p2:+.1%}, limit {max_share_diff:.1%}; "
                        f"z {z:.1f}, limit {min_z:g})",
                counts={"rows": 0, "training_rows": len(y), "golden_rows": len(golden_y),
                        "training_with_label": int((y == c).sum()), "golden_with_label": int((golden_y == c).sum())},
                values={"label": str(c), "share_train": round(p1, 5), "share_golden": round(p2, 5),
                        "z": round(float(z), 3)},
                thresholds={"max_share_diff": max_share_diff, "min_z": min_z}))
    return findings, measured


def label_mean_findings(y: np.ndarray, golden_y: np.ndarray, *, max_share_diff: float, min_z: float
                        ) -> tuple[list[Finding], dict[str, float]]:
    """Regression's label balance: the training mean against the golden mean, in golden standard deviations
    (> ``max_share_diff``) with a Welch |z| >= ``min_z``."""
    sd = float(golden_y.std()) or 1.0
    diff = (float(y.mean()) - float(golden_y.mean())) / sd
    se = np.sqrt(y.var() / len(y) + golden_y.var() / len(golden_y))
    z = (float(y.mean()) - float(golden_y.mean())) / se if se > 0 else 0.0
    measured = {"standardized_mean_diff": diff}
    if abs(diff) <= max_share_diff or abs(z) < min_z:
        return [], measured
    return [Finding(
        check="label_balance",
        summary=f"label_balance: the training label's mean {y.mean():.4g} differs from the golden mean "
                f"{golden_y.mean():.4g} by {diff:+.2f} golden standard deviations (limit {max_share_diff:g}; z {z:.1f}, "
                f"limit {min_z:g})",
        counts={"rows": 0, "training_rows": len(y), "golden_rows": len(golden_y)},
        values={"standardized_mean_diff": round(diff, 4), "z": round(float(z), 3)},
        thresholds={"max_share_diff": max_share_diff, "min_z": min_z})], measured
