"""Benchmarks and load tests of the service, the seed's figures beside ours: `python -m bench --list`."""
