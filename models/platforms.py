"""Which JAX platform to use when the user has not said: the CPU on a host with libtpu installed but no TPU.

With ``jax[tpu]`` installed, JAX's first use probes the TPU backend; on a host without a
TPU, libtpu then writes error lines to stderr (``INVALID_ARGUMENT: ... unexpected worker
hostname``, "could not determine TPU accelerator type"), and its log-level variables
(TPU_STDERR_LOG_LEVEL, TPU_MIN_LOG_LEVEL, TF_CPP_MIN_LOG_LEVEL) do not silence them
(tried, libtpu 0.0.42). Restricting JAX to the CPU does. Importing ``models`` (and
every lockgate command) therefore sets ``JAX_PLATFORMS=cpu`` when all of these hold:

- ``JAX_PLATFORMS`` is not in the environment (any value the user set, even empty, wins);
- libtpu is installed (without it JAX probes nothing noisy);
- this host shows no TPU: no TPU chip on its PCI bus (Google's vendor id with a TPU
  device id, as JAX's own check reads them), no ``/dev/accel*`` or ``/dev/vfio/<n>``
  device, and none of :data:`TPU_ENV_VARS` set (a TPU VM or a TPU pod's pods set them);
- no other PJRT plugin (a GPU's, in the ``jax_plugins`` namespace) is installed, whose
  device the CPU-only setting would hide.

Compiling for TPU topologies from this host is unaffected: compile-only devices come from
libtpu's topology description (``jax.experimental.topologies``), which works under
``JAX_PLATFORMS=cpu`` (the compile children of tasks.compilation set it themselves).
Only the standard library here: this runs before JAX is imported.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Mapping, MutableMapping

TPU_ENV_VARS = ("TPU_NAME", "TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID", "TPU_ACCELERATOR_TYPE", "TPU_HOST_BOUNDS",
                "TPU_CHIPS_PER_HOST_BOUNDS", "TPU_PROCESS_ADDRESSES", "TPU_VISIBLE_CHIPS")
TPU_DEVICE_GLOBS = ("/dev/accel*", "/dev/vfio/[0-9]*")
GOOGLE_PCI_VENDOR = "0x1ae0"
# PCI device ids of TPU chips v3 to TPU7x (jax._src.hardware_utils); Google's other devices (gVNIC) share the vendor.
TPU_PCI_DEVICE_IDS = frozenset({"0x0027", "0x0056", "0x005e", "0x0062", "0x0063", "0x006f", "0x0076"})


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def tpu_devices() -> list[str]:
    """TPU chips this host shows: device files (``/dev/accel*`` on v2-v4, ``/dev/vfio/<n>`` on v5e and later)
    and PCI devices with Google's vendor id and a TPU device id."""
    found = [path for pattern in TPU_DEVICE_GLOBS for path in glob.glob(pattern)]
    for vendor in glob.glob("/sys/bus/pci/devices/*/vendor"):
        folder = os.path.dirname(vendor)
        if _read(vendor) == GOOGLE_PCI_VENDOR and _read(os.path.join(folder, "device")) in TPU_PCI_DEVICE_IDS:
            found.append(folder)
    return found


def tpu_host(environ: Mapping[str, str] = os.environ, devices: list[str] | None = None) -> bool:
    """Whether this host shows a TPU: a TPU device file, or one of :data:`TPU_ENV_VARS` set (non-empty)."""
    return bool(tpu_devices() if devices is None else devices) or any(environ.get(v) for v in TPU_ENV_VARS)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def other_accelerator_plugins() -> list[str]:
    """PJRT plugins other than libtpu that JAX would load (modules of the ``jax_plugins`` namespace, e.g. CUDA's)."""
    try:
        spec = importlib.util.find_spec("jax_plugins")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations))


def default_jax_platforms(environ: Mapping[str, str] = os.environ, *, libtpu: bool | None = None,
                          devices: list[str] | None = None, plugins: list[str] | None = None) -> str | None:
    """``"cpu"`` when JAX should be kept off a TPU backend this host does not have (the rules in the module
    docstring), else None (leave JAX's own choice). The keyword arguments replace what is found on this host."""
    if "JAX_PLATFORMS" in environ:
        return None
    if not (_installed("libtpu") if libtpu is None else libtpu):
        return None
    if tpu_host(environ, devices):
        return None
    if other_accelerator_plugins() if plugins is None else plugins:
        return None
    return "cpu"


def prefer_cpu_without_tpu(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set ``JAX_PLATFORMS`` per :func:`default_jax_platforms`; returns what was set (None: nothing).

    Before JAX is imported the variable is all it takes (child processes inherit it). If JAX was already
    imported by then and its platforms are not configured, ``jax_platforms`` is set too, so its first use still
    does not probe the TPU backend (once JAX has initialised its backends, this changes nothing)."""
    value = default_jax_platforms(environ)
    if value is None:
        return None
    environ["JAX_PLATFORMS"] = value
    config = getattr(sys.modules.get("jax"), "config", None) if environ is os.environ else None
    if config is not None and getattr(config, "jax_platforms", "") is None:
        config.update("jax_platforms", value)
    return value
