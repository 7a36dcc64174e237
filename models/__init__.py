"""Flax architectures, feature encoding, params IO, training and the export artifact.

Plain functions, no orchestration imports. Kept import-light: importing ``models``
loads no JAX; submodules (``models.mlp``, ``models.train``, ``models.export``,
``models.params_io``) import it when used.
"""

from models.platforms import prefer_cpu_without_tpu

# Before any submodule imports JAX: on a host with libtpu but no TPU, keep JAX off the TPU backend (whose probe
# prints libtpu errors) unless JAX_PLATFORMS is set; see models/platforms.py.
prefer_cpu_without_tpu()

from models.architectures import ARCHITECTURES, build_model  # noqa: E402
from models.config import MLPConfig  # noqa: E402

__all__ = ["ARCHITECTURES", "MLPConfig", "build_model"]
