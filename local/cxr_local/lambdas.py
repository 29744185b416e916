"""Loads Lambda handlers from their code folders and runs them, one request per loaded instance at a time."""
from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from .apigw import LambdaContext
from .template import FunctionSpec

_instance_numbers = itertools.count(1)
_import_lock = threading.Lock()


def load_handler(spec: FunctionSpec) -> Callable[[dict, Any], Any]:
    """Import <CodeUri>/<module>.py by file path under a unique module name (every function has an app.py)."""
    module_name, _, attribute = spec.handler.rpartition(".")
    source = Path(spec.code_dir) / (module_name.replace(".", "/") + ".py")
    unique = f"cxr_local_lambda_{spec.logical_id}_{next(_instance_numbers)}"
    with _import_lock:
        before = set(sys.modules)
        sys.path.insert(0, str(spec.code_dir))
        try:
            loader_spec = importlib.util.spec_from_file_location(unique, source)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {source}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[unique] = module
            loader_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(spec.code_dir))
            # sibling modules of this function folder stay private to this instance, as in its own sandbox
            for name in set(sys.modules) - before:
                origin = getattr(sys.modules[name], "__file__", None) or ""
                if name != unique and origin.startswith(str(spec.code_dir)):
                    del sys.modules[name]
    return getattr(module, attribute)


class FunctionPool:
    """Warm instances of one function; like Lambda, an instance serves one event at a time."""

    def __init__(self, spec: FunctionSpec, max_instances: int, region: str, account_id: str) -> None:
        self.spec = spec
        self.max_instances = max_instances
        self.region, self.account_id = region, account_id
        self._idle: list[Callable] = []
        self._count = 0
        self._available = threading.Condition()

    def warm(self) -> None:
        """Load one instance now, so import errors and cold-start time show at start-up."""
        handler = load_handler(self.spec)
        with self._available:
            self._count += 1
            self._idle.append(handler)

    def invoke(self, event: dict, request_id: str | None = None) -> Any:
        handler = self._acquire()
        try:
            context = LambdaContext(self.spec.name, self.spec.memory_mb, self.spec.timeout_s,
                                    self.region, self.account_id)
            if request_id:
                context.aws_request_id = request_id
            return handler(event, context)
        finally:
            with self._available:
                self._idle.append(handler)
                self._available.notify()

    def _acquire(self) -> Callable:
        with self._available:
            while not self._idle and self._count >= self.max_instances:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return load_handler(self.spec)
        except BaseException:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise
