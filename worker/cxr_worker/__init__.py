"""The EC2 infer worker (not shipped in any Lambda): a supervisor of long-polling processes, its health check and
its Auto Scaling termination hook."""
