"""Fixtures for fault tests: a fresh moto + API + fault proxy per test (workers are started by the tests)."""
from __future__ import annotations

import pytest

from tests.faults.harness import start_fault_stack


@pytest.fixture
def fault_stack(tmp_path):
    stack = start_fault_stack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
