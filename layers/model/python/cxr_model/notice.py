"""The standing statement every output carries (results, the page, the CLI, the SR); worded here and nowhere else."""
from __future__ import annotations

INTENDED_USE = "Research use only, not a medical device."
