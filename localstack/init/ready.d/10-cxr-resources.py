"""LocalStack ready hook: create template.yaml's resources, then check them against the template.

LocalStack runs ready.d Python scripts inside its own interpreter (which has boto3, PyYAML and the SAM translator),
so this raises on failure (LocalStack marks the script ERROR) rather than calling sys.exit. CXR_ROOT is where
docker-compose.yml mounts the repository's template.yaml and local/cxr_local (on the container's PYTHONPATH).
"""
import os

root = os.environ.get("CXR_ROOT", "/opt/cxr")
os.environ.setdefault("CXR_TEMPLATE", f"{root}/template.yaml")
os.environ.setdefault("CXR_ENDPOINT", "http://localhost:4566")
from cxr_local.endpoint import main  # noqa: E402 - after the settings it reads

if main([]) != 0:
    raise RuntimeError("cxr: LocalStack resources differ from template.yaml (details above)")
