"""The statement every output carries."""
RESEARCH_USE_ONLY = "Research use only, not a medical device: not for diagnosis or treatment."
