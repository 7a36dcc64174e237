"""No accelerator noise: on a host with libtpu but no TPU, importing models keeps JAX on the CPU unless the user
chose a platform, so libtpu's probe errors never reach stderr; a user's JAX_PLATFORMS is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.platforms import TPU_ENV_VARS, default_jax_platforms, tpu_host

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose environment has no JAX_PLATFORMS or TPU_* (the test session sets
    JAX_PLATFORMS=cpu for itself, tests/conftest.py), plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS" and k not in TPU_ENV_VARS}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("environ, libtpu, devices, plugins, expected", [
    ({}, True, [], [], "cpu"),                                        # this machine: libtpu, no TPU
    ({"JAX_PLATFORMS": "tpu"}, True, [], [], None),                   # the user's choice wins
    ({"JAX_PLATFORMS": ""}, True, [], [], None),                      # even an empty one (JAX's own probing)
    ({}, False, [], [], None),                                        # no libtpu: nothing noisy to avoid
    ({}, True, ["/dev/accel0"], [], None),                            # a TPU v4 host
    ({}, True, ["/dev/vfio/0"], [], None),                            # a TPU v5e/v6e host
    ({"TPU_NAME": "my-tpu"}, True, [], [], None),                     # a TPU VM / pod by its environment
    ({"TPU_WORKER_HOSTNAMES": "10.0.0.2"}, True, [], [], None),
    ({"TPU_NAME": ""}, True, [], [], "cpu"),                          # set but empty says nothing
    ({}, True, [], ["xla_cuda12"], None),                             # a GPU plugin: CPU-only would hide the GPU
])
def test_default_jax_platforms(environ, libtpu, devices, plugins, expected):
    assert default_jax_platforms(environ, libtpu=libtpu, devices=devices, plugins=plugins) == expected
    assert tpu_host(environ, devices) == bool(devices or any(environ.get(v) for v in TPU_ENV_VARS))


@pytest.mark.skipif(tpu_host(), reason="this host has a TPU: JAX should use it")
@pytest.mark.parametrize("code", [
    "import models.export, jax; jax.numpy.ones(2).block_until_ready(); print(jax.default_backend())",
    # jax imported before models: its first use still stays off the TPU backend
    "import jax, models.train; jax.numpy.ones(2).block_until_ready(); print(jax.default_backend())",
])
def test_importing_models_without_jax_platforms_writes_no_tpu_errors(code):
    out = _child(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["cpu"]
    noise = [line for line in out.stderr.splitlines()
             if any(word in line for word in ("libtpu", "INVALID_ARGUMENT", "TPU", "InitGoogle"))]
    assert noise == []


def test_the_cli_runtime_sets_the_same_default():
    out = _child("import os, tempfile; from pathlib import Path; from pipelines.runtime import process_defaults; "
                 "process_defaults(Path(tempfile.mkdtemp())); print(os.environ.get('JAX_PLATFORMS'))")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(default_jax_platforms({}))]  # "cpu" on a host with libtpu and no TPU


@pytest.mark.parametrize("value", ["", "cpu,tpu"])
def test_an_explicit_jax_platforms_is_left_alone(value):
    out = _child("import os, sys, models; print(repr(os.environ['JAX_PLATFORMS']), 'jax' in sys.modules)",
                 JAX_PLATFORMS=value)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [repr(value), "False"]  # untouched, and importing models loaded no JAX
