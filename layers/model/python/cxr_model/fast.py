"""Fast preprocessing (issue 9); until it lands, 'fast' is the exact pipeline."""
from __future__ import annotations

import numpy as np


def preprocess_fast(data: bytes, size: int = 224) -> np.ndarray:
    from .preprocess import preprocess_exact

    return preprocess_exact(data, size)
