"""Flax architectures, feature encoding, params IO, training and the export artifact.

Plain functions, no orchestration imports. Kept import-light: importing ``models``
loads no JAX; submodules (``models.mlp``, ``models.train``, ``models.export``,
``models.params_io``) import it when used.
"""

from models.architectures import ARCHITECTURES, build_model
from models.config import MLPConfig

__all__ = ["ARCHITECTURES", "MLPConfig", "build_model"]
