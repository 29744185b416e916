"""The one failure the build step reports: weights or an export that must not be served."""
from __future__ import annotations


class BuildError(RuntimeError):
    pass
