"""Wait on a condition with a deadline: the one polling loop the stack's launcher, the tests and the benches share."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], deadline_s: float, interval_s: float = 0.05, what: str = "") -> T:
    """Call predicate every interval_s until it returns something truthy, and return that; past deadline_s seconds,
    raise TimeoutError naming `what` (a callable is called for the message, e.g. to show the last state seen).
    An exception from the predicate ends the wait at once."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise TimeoutError(f"not within {deadline_s:g} s: {detail or getattr(predicate, '__name__', 'condition')}")
        time.sleep(interval_s)
