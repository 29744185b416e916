"""`cxr`: a command-line client for the cxr-serverless chest X-ray API."""
