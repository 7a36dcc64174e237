"""Sharded batch scoring: 8 forced CPU devices in a child process equal the single-device scores.

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` only takes effect before jax
initialises its backends, and this session already has, so the 8-device check runs
in a fresh interpreter and reports back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.export import export_inference, load_exported, score_bucketed
from models.sharded import score_sharded, sharded_buckets

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json
import jax
import numpy as np
from models.config import MLPConfig
from models.export import export_inference, load_exported, score_bucketed
from models.sharded import _sharded_call, data_mesh, score_sharded
from models.train import init_params

config = MLPConfig(num_features=6, hidden_sizes=(16, 8))
params = init_params(config, seed=3)
exported = load_exported(export_inference(config, params))  # cpu+tpu, as the compile gate exports
buckets = (1, 64, 1024)
rng = np.random.default_rng(0)
report = {"device_count": jax.device_count(), "cases": []}
for n in (1, 7, 1000, 10_001):
    x = rng.normal(size=(n, 6)).astype(np.float32) * 3
    one = score_bucketed(exported, params, x, buckets=buckets)
    for k in (8, 3):
        got = score_sharded(exported, params, x, buckets=buckets, devices=jax.devices()[:k])
        report["cases"].append({"n": n, "devices": k, "shape": list(got.shape), "dtype": str(got.dtype),
                                "max_abs_diff": float(np.max(np.abs(got - one)))})
# Each device computes its own rows: an output of bucket 64 is 8 shards of 8 rows.
call, replicated, rows = _sharded_call(exported, data_mesh())
y = call(jax.device_put(params, replicated), jax.device_put(np.zeros((64, 6), np.float32), rows))
report["shards"] = sorted([[s.device.id, list(s.data.shape)] for s in y.addressable_shards])
# on_output sees every chunk's output: 2500 rows are chunks of 1024, 1024 and 452 (padded to 1024) rows
seen = []
score_sharded(exported, params, rng.normal(size=(2500, 6)).astype(np.float32), buckets=buckets, on_output=seen.append)
report["observed"] = [sorted({s.device.id for s in out.addressable_shards}) for out in seen]
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    flags = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]))
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_child_really_had_eight_devices(eight_devices):
    assert eight_devices["device_count"] == 8
    assert eight_devices["shards"] == [[i, [8]] for i in range(8)]
    assert eight_devices["observed"] == [list(range(8))] * 3  # every chunk's output spans the 8 devices


@pytest.mark.parametrize("n", [1, 7, 1000, 10_001])
@pytest.mark.parametrize("devices", [8, 3])
def test_sharded_scores_equal_single_device(eight_devices, n, devices):
    (case,) = [c for c in eight_devices["cases"] if c["n"] == n and c["devices"] == devices]
    assert case["shape"] == [n] and case["dtype"] == "float32"
    assert case["max_abs_diff"] <= 1e-6


@pytest.mark.parametrize(
    "buckets,k,expected",
    [
        ((1, 64, 1024, 8192), 8, (8, 64, 1024, 8192)),
        ((1, 64, 1000), 3, (3, 66, 1002)),
        ((1, 2, 3), 4, (4,)),  # rounding can merge buckets
        ((5,), 1, (5,)),
    ],
)
def test_sharded_buckets_are_device_multiples(buckets, k, expected):
    assert sharded_buckets(buckets, k) == expected


@pytest.fixture(scope="module")
def artifact(small_config, trained_params):
    return load_exported(export_inference(small_config, trained_params, platforms=("cpu",)))


def test_one_device_in_process_equals_score_bucketed(artifact, trained_params, make_data):
    x, _ = make_data(300)
    np.testing.assert_allclose(score_sharded(artifact, trained_params, x, buckets=(1, 64)),
                               score_bucketed(artifact, trained_params, x, buckets=(1, 64)), rtol=0, atol=1e-6)
    assert score_sharded(artifact, trained_params, x[:0]).shape == (0,)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(x=np.zeros((4, 5), np.float32)), "x must be [n, 6]"),
        (dict(buckets=(64, 1)), "strictly increasing"),
        (dict(buckets=(0, 8)), "positive ints"),
        (dict(devices=[]), "devices must not be empty"),
    ],
)
def test_bad_input_is_a_clear_error(artifact, trained_params, make_data, kwargs, fragment):
    args = dict(x=make_data(8)[0], buckets=(1, 64), devices=None) | kwargs
    with pytest.raises(ValueError) as e:
        score_sharded(artifact, trained_params, args.pop("x"), **args)
    assert fragment in str(e.value)
