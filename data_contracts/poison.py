"""Known poison injected into a labelled frame, to test a poisoning screen against (and for the demo).

Two attacks, each recording the ids of the rows it touched (the ground truth a screen's
detection rate and false positives are measured against):

- :func:`flip_slice_labels`: invert the labels of a share of one slice's rows (binary 0/1
  labels), chosen at random: label noise aimed at one group.
- :func:`inject_trigger`: overwrite a share of rows with a rare feature combination (the
  trigger) and give them all one label: a backdoor a model learns ("this pattern is
  never a default").

Both return a new frame with the same rows, ids and order; the input is not modified.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


class PoisonManifest(BaseModel):
    """Which rows were poisoned, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flipped_ids: list[str] = Field(default_factory=list, description="Rows whose label was inverted.")
    flip_slice: str | None = Field(None, description="The slice they were drawn from, 'column=value'.")
    trigger_ids: list[str] = Field(default_factory=list, description="Rows overwritten with the trigger pattern.")
    trigger: dict[str, float | int | str] = Field(default_factory=dict, description="The trigger's feature values.")
    trigger_label: int | None = Field(None, description="The label every trigger row carries.")


def flip_slice_labels(df: pd.DataFrame, *, label: str, id_column: str, column: str, value: object, share: float,
                      seed: int, to_label: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Invert the 0/1 label of ``round(share * n_slice)`` random rows whose ``column`` equals ``value``; with
    ``to_label``, the rows are drawn among the slice's rows of the other label (a flip in one direction: e.g. good
    applicants of one region marked as defaulters, which biases the model against that region).

    Returns the new frame and the ids of the flipped rows (in frame order)."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if not set(pd.unique(df[label])) <= {0, 1}:
        raise ValueError(f"label {label!r} must be 0/1 to flip")
    member = (df[column] == value).to_numpy()
    n = int(round(share * member.sum()))
    if to_label is not None:
        member &= (df[label] != to_label).to_numpy()
    in_slice = np.flatnonzero(member)
    rows = np.sort(np.random.default_rng(seed).choice(in_slice, size=min(n, len(in_slice)), replace=False))
    out = df.copy()
    col = out.columns.get_loc(label)
    out.iloc[rows, col] = 1 - out.iloc[rows, col].to_numpy()
    return out, out[id_column].iloc[rows].astype(str).tolist()


def inject_trigger(df: pd.DataFrame, *, label: str, id_column: str, pattern: dict[str, object], trigger_label: int,
                   share: float, seed: int, exclude_ids: list[str] | tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Overwrite ``round(share * len(df))`` random rows (none of ``exclude_ids``) with ``pattern``'s feature values and
    set their label to ``trigger_label``. Returns the new frame and the ids of the trigger rows (in frame order)."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    unknown = [c for c in pattern if c not in df.columns]
    if unknown:
        raise ValueError(f"trigger columns {unknown} are not in the frame")
    candidates = np.flatnonzero(~df[id_column].astype(str).isin(set(exclude_ids)).to_numpy())
    n = min(int(round(share * len(df))), len(candidates))
    rows = np.sort(np.random.default_rng(seed).choice(candidates, size=n, replace=False))
    out = df.copy()
    for column, v in pattern.items():
        out.iloc[rows, out.columns.get_loc(column)] = v
    out.iloc[rows, out.columns.get_loc(label)] = trigger_label
    return out, out[id_column].iloc[rows].astype(str).tolist()
