"""The HTTP API's functions: a pool of execution environments each, and one more for long polls (?wait=N)."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from .lambdas import FunctionPool
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
        return self.pool(function, event).invoke(event, request_id)

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
