"""LocalStack ready hook: create template.yaml's resources, then check them against the template.

LocalStack runs ready.d Python scripts inside its own interpreter (which has boto3 and PyYAML), so this
raises on failure (LocalStack marks the script ERROR) rather than calling sys.exit. CXR_ROOT is where
docker-compose.yml mounts the repository's template.yaml, local/cxr_local and localstack/create_resources.py.
"""
import os
import runpy

root = os.environ.get("CXR_ROOT", "/opt/cxr")
os.environ.setdefault("CXR_TEMPLATE", f"{root}/template.yaml")
os.environ.setdefault("CXR_LOCAL_PACKAGE", f"{root}/local/cxr_local")
os.environ.setdefault("CXR_ENDPOINT", "http://localhost:4566")
create_resources = runpy.run_path(f"{root}/localstack/create_resources.py", run_name="cxr_create_resources")
if create_resources["main"]([]) != 0:
    raise RuntimeError("cxr: LocalStack resources differ from template.yaml (details above)")
