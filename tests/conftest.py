"""Every test, and every process a test starts, builds model artifacts without the network (no public URL)."""
import os

os.environ["CXR_WEIGHTS_OFFLINE"] = "1"
