"""Deployment targets: the local CPU and named TPU slices, with their published per-chip figures.

The figures are the vendors' published peak numbers (dense bf16 FLOP/s, HBM capacity and
bandwidth per chip); they feed the memory-fit verdict and the roofline latency estimate,
never a measured claim. ``topology`` and ``chips_per_host_bounds`` are what
``jax.experimental.topologies.get_topology_desc`` needs to give compile-only devices
on a CPU-only host (libtpu from ``jax[tpu]``).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class Chip:
    kind: str
    hbm_bytes: int  # per chip
    peak_flops: float  # dense bf16 FLOP/s per chip
    hbm_bandwidth: float  # bytes/s per chip


V4 = Chip("TPU v4", 32 * GIB, 275e12, 1228e9)
V5E = Chip("TPU v5e", 16 * GIB, 197e12, 819e9)
V5P = Chip("TPU v5p", 95 * GIB, 459e12, 2765e9)
V6E = Chip("TPU v6e", 32 * GIB, 918e12, 1640e9)
TPU7X = Chip("TPU7x (Ironwood)", 192 * GIB, 2307e12, 7370e9)


@dataclass(frozen=True)
class Target:
    """A deployment target. For TPU slices, ``chips`` chips in ``topology``; JAX may expose several devices per chip."""

    name: str
    platform: str  # "cpu" or "tpu"
    chips: int = 1
    chip: Chip | None = None
    topology: str | None = None
    chips_per_host_bounds: tuple[int, int, int] | None = None

    def describe(self) -> str:
        if self.platform == "cpu":
            return "local CPU (this host)"
        return f"{self.chips} x {self.chip.kind} ({self.topology})"


TARGETS: dict[str, Target] = {
    "cpu": Target("cpu", "cpu"),
    "v4-8": Target("v4-8", "tpu", 4, V4, "v4:2x2x1", (2, 2, 1)),
    "v5e-4": Target("v5e-4", "tpu", 4, V5E, "v5e:2x2", (2, 2, 1)),
    "v5e-8": Target("v5e-8", "tpu", 8, V5E, "v5e:2x4", (2, 4, 1)),
    "v5p-8": Target("v5p-8", "tpu", 4, V5P, "v5p:2x2x1", (2, 2, 1)),
    "v6e-4": Target("v6e-4", "tpu", 4, V6E, "v6e:2x2", (2, 2, 1)),
    "v6e-8": Target("v6e-8", "tpu", 8, V6E, "v6e:2x4", (2, 4, 1)),
    "tpu7x-8": Target("tpu7x-8", "tpu", 4, TPU7X, "tpu7x:2x2x1", (2, 2, 1)),
}


def get_target(name: str) -> Target:
    """The target called ``name``; ValueError listing the known names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown deployment target {name!r}; known: {sorted(TARGETS)}") from None


def roofline_seconds(flops: float, bytes_accessed: float, peak_flops: float, bandwidth: float) -> float:
    """Lower bound on latency: the slower of compute at peak FLOP/s and memory traffic at peak bandwidth."""
    return max(flops / peak_flops if peak_flops else 0.0, bytes_accessed / bandwidth if bandwidth else 0.0)
