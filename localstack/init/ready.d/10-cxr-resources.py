"""LocalStack ready hook: create template.yaml's resources (runs with LocalStack's Python, which has boto3 + PyYAML)."""
import os
import runpy

os.environ.setdefault("CXR_TEMPLATE", "/opt/cxr/template.yaml")
os.environ.setdefault("CXR_LOCAL_PACKAGE", "/opt/cxr/local/cxr_local")
os.environ.setdefault("CXR_ENDPOINT", "http://localhost:4566")
runpy.run_path("/opt/cxr/localstack/create_resources.py", run_name="__main__")
