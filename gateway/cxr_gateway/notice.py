"""The statement every output carries, as the service words it once (cxr_model.notice)."""
from cxr_model.notice import INTENDED_USE as RESEARCH_USE_ONLY

__all__ = ["RESEARCH_USE_ONLY"]
