"""The HTTP API's functions: a pool of execution environments each, and one more for long polls (?wait=N)."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from .lambdas import FunctionPool, PoolBusy
from .template import FunctionSpec

LONG_POLL_ROUTE = "GET /v1/jobs/{id}"


class HttpFunctions:
    def __init__(self, functions: dict[str, FunctionSpec], routes: list, overrides: dict[str, str],
                 max_instances: int, max_waiting_polls: int, region: str, account_id: str) -> None:
        self.pools = {name: FunctionPool(replace(functions[name],
                                                 environment={**functions[name].environment, **overrides}),
                                         max_instances, region, account_id)
                      for name in sorted({route.function for route in routes})}
        # GET /v1/jobs/{id}?wait=N holds an environment for up to N s: started lazily, one per waiting poll
        self.waiting_pools = {route.function: FunctionPool(self.pools[route.function].spec, max_waiting_polls,
                                                           region, account_id)
                              for route in routes if route.route_key == LONG_POLL_ROUTE}
        self._warming: list[threading.Thread] = []

    def start_warming(self) -> None:
        self._warming = [threading.Thread(target=pool.warm) for pool in self.pools.values()]
        for thread in self._warming:
            thread.start()

    def wait_warm(self) -> None:
        for thread in self._warming:
            thread.join()

    def check_started(self) -> None:
        for name, pool in self.pools.items():
            if pool.init_error:
                raise RuntimeError(f"{name} could not start: {pool.init_error}")

    def invoke(self, function: str, event: dict, request_id: str) -> Any:
        pool = self.pool(function, event)
        if pool is self.pools.get(function):
            return pool.invoke(event, request_id)
        # a long poll waits no longer than its ?wait: the time spent queued for an environment comes off the wait,
        # and one that found none in time answers with the job's state at once (the long-poll contract allows it)
        began = time.monotonic()
        wait = _wait_seconds(event)
        if wait is None:  # not a valid wait: the function answers 400 itself
            return pool.invoke(event, request_id)

        def what_is_left(queued: dict) -> dict:
            left = wait - (time.monotonic() - began)
            return queued if left >= wait - 0.05 else _with_wait(queued, left if left >= 0.05 else None)

        try:
            return pool.invoke(event, request_id, acquire_timeout_s=wait, adjust=what_is_left)
        except PoolBusy:
            return self.pools[function].invoke(_with_wait(event, None), request_id)

    def pool(self, function: str, event: dict) -> FunctionPool:
        waiting = event.get("routeKey") == LONG_POLL_ROUTE and "wait" in (event.get("queryStringParameters") or {})
        return self.waiting_pools[function] if waiting and function in self.waiting_pools else self.pools[function]

    def longest_timeout_s(self) -> float | None:
        return max(pool.spec.timeout_s for pool in self.pools.values()) if self.pools else None

    def close(self) -> None:
        for pool in [*self.pools.values(), *self.waiting_pools.values()]:
            pool.close()


def merged_environment(functions: dict[str, FunctionSpec], routes: list) -> dict[str, str]:
    """The union of the HTTP functions' settings, for this process's own cxr_core use (API key registration);
    each function's sandbox gets exactly its own environment."""
    merged: dict[str, str] = {}
    for environment in [functions[name].environment for name in {route.function for route in routes}]:
        for key, value in environment.items():
            merged.setdefault(key, value)
    return merged


def _wait_seconds(event: dict) -> float | None:
    try:
        wait = float((event.get("queryStringParameters") or {}).get("wait", ""))
    except ValueError:
        return None
    return wait if 0 < wait <= 20 else None


def _with_wait(event: dict, seconds: float | None) -> dict:
    """The event with ?wait shortened to `seconds` (None: removed), in the parsed and the raw query string."""
    params = {k: v for k, v in (event.get("queryStringParameters") or {}).items() if k != "wait"}
    if seconds is not None:
        params["wait"] = f"{seconds:.2f}"
    return {**event, "queryStringParameters": params or None, "rawQueryString": urlencode(params)}
