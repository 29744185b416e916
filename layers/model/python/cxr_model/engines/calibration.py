"""torchxrayvision's op_norm in NumPy, float32 like the library."""
from __future__ import annotations

import numpy as np


def op_norm(probs: np.ndarray, op_threshs: np.ndarray) -> np.ndarray:
    """Rescale sigmoid outputs so each label's operating point maps to 0.5 (NaN thresholds give 0.5)."""
    probs = probs.astype(np.float32, copy=False)
    threshs = np.broadcast_to(op_threshs.astype(np.float32), probs.shape)
    valid = ~np.isnan(threshs)
    below = (probs < threshs) & valid
    above = ~(probs < threshs) & valid
    out = np.full(probs.shape, 0.5, dtype=np.float32)
    out[below] = probs[below] / (threshs[below] * 2)
    out[above] = 1.0 - ((1.0 - probs[above]) / ((1 - threshs[above]) * 2))
    return out
