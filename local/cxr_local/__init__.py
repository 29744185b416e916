"""Embedded local stack: moto on loopback, resources from template.yaml, an API Gateway adapter, infer workers."""
