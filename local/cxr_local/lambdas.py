"""Lambda execution environments for the HTTP functions: one process per warm instance, one event at a time."""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from .apigw import LambdaContext
from .template import FunctionSpec

_spawn = multiprocessing.get_context("spawn")


class LambdaError(RuntimeError):
    """The handler raised, timed out, or its sandbox died: API Gateway answers 500 (or 503 when it timed out)."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def load_handler(spec: FunctionSpec) -> Callable[[dict, Any], Any]:
    """Import <CodeUri>/<module>.py by file path (every function has an app.py), its folder first on sys.path."""
    module_name, _, attribute = spec.handler.rpartition(".")
    source = Path(spec.code_dir) / (module_name.replace(".", "/") + ".py")
    unique = f"cxr_lambda_{spec.logical_id}"
    sys.path.insert(0, str(spec.code_dir))
    loader_spec = importlib.util.spec_from_file_location(unique, source)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[unique] = module
    loader_spec.loader.exec_module(module)
    return getattr(module, attribute)


def _sandbox_main(spec: FunctionSpec, region: str, account_id: str, conn) -> None:
    """The body of one execution environment: load the handler once (cold start), then serve events in turn."""
    # the stack decides when its sandboxes stop (after the requests in hand), also when its whole process group
    # gets the signal; should the stack die, the pipe closes and the loop below ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.update(spec.environment)
    # a session of its own, as each environment is its own microVM on AWS: with the kernel's autogroup scheduling a
    # session gets its own share of the CPUs (the EC2 workers run in their own session too; measured in issue 20)
    os.setsid()
    try:
        handler = load_handler(spec)
    except BaseException:  # noqa: BLE001 - an init error is reported to the caller, as Lambda does
        conn.send(("init_error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            event, request_id = conn.recv()
        except (EOFError, OSError):  # the stack is gone
            return
        context = LambdaContext(spec.name, spec.memory_mb, spec.timeout_s, region, account_id)
        context.aws_request_id = request_id
        try:
            conn.send(("ok", handler(event, context)))
        except Exception:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


class _Sandbox:
    def __init__(self, spec: FunctionSpec, region: str, account_id: str) -> None:
        started = time.monotonic()
        self.conn, child_conn = _spawn.Pipe()
        self.process = _spawn.Process(target=_sandbox_main, args=(spec, region, account_id, child_conn),
                                      name=f"lambda-{spec.logical_id}", daemon=True)
        self.process.start()
        child_conn.close()
        kind, detail = self.conn.recv()
        if kind != "ready":
            self.close()
            raise LambdaError(f"{spec.logical_id} failed to initialise:\n{detail}")
        self.init_s = time.monotonic() - started  # the cold start: process start + handler import

    def invoke(self, event: dict, request_id: str, timeout_s: float) -> Any:
        self.conn.send((event, request_id))
        if not self.conn.poll(timeout_s):
            self.close()
            raise LambdaError(f"Task timed out after {timeout_s:.2f} seconds", timed_out=True)
        kind, payload = self.conn.recv()
        if kind == "error":
            raise LambdaError(payload)
        return payload

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class PoolBusy(Exception):
    """Every environment of the pool stayed busy for as long as the caller could wait."""


class FunctionPool:
    """Warm execution environments of one function; a busy pool starts another, up to max_instances."""

    def __init__(self, spec: FunctionSpec, max_instances: int, region: str, account_id: str,
                 on_start: Callable[[_Sandbox], None] | None = None) -> None:
        self.spec = spec
        self.on_start = on_start  # told of every new environment (cold start), e.g. to measure it
        self.max_instances = max(1, max_instances)
        self.region, self.account_id = region, account_id
        self._idle: list[_Sandbox] = []
        self._all: list[_Sandbox] = []
        self._starting = 0
        self.init_error: LambdaError | None = None
        self._changed = threading.Condition()
        self._closed = False

    def warm(self) -> None:
        """Start one environment now, so init errors and the cold start show before the stack says ready."""
        try:
            self._add(_Sandbox(self.spec, self.region, self.account_id))
        except LambdaError as error:
            self.init_error = error

    def invoke(self, event: dict, request_id: str, acquire_timeout_s: float | None = None,
               adjust: Callable[[dict], dict] | None = None) -> Any:
        """Run the event in a free environment; with acquire_timeout_s, PoolBusy if none frees up by then;
        adjust(event) is what runs, decided once an environment is free (e.g. the time queued taken off a wait)."""
        sandbox = self._acquire(acquire_timeout_s)
        if adjust is not None:
            event = adjust(event)
        try:
            result = sandbox.invoke(event, request_id, self.spec.timeout_s)
        except LambdaError as error:
            if sandbox.process.is_alive():
                self._release(sandbox)
            else:
                self._forget(sandbox)
            raise error
        except (EOFError, OSError) as error:
            self._forget(sandbox)
            raise LambdaError(f"{self.spec.logical_id} execution environment died: {error!r}") from error
        self._release(sandbox)
        return result

    def close(self) -> None:
        with self._changed:
            self._closed = True
            sandboxes, self._all, self._idle = list(self._all), [], []
            self._changed.notify_all()
        for sandbox in sandboxes:
            sandbox.close()

    def _acquire(self, timeout_s: float | None = None) -> _Sandbox:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while True:
                if self._closed:
                    raise LambdaError("the local stack is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self.max_instances:
                    self._starting += 1
                    threading.Thread(target=self._start_one, daemon=True).start()
                if deadline is not None and time.monotonic() >= deadline:
                    raise PoolBusy(f"no free {self.spec.logical_id} environment within {timeout_s:.1f}s")
                self._changed.wait(1 if deadline is None else max(0.01, min(1.0, deadline - time.monotonic())))

    def _start_one(self) -> None:
        try:
            sandbox = _Sandbox(self.spec, self.region, self.account_id)
        except BaseException as error:  # noqa: BLE001
            with self._changed:
                self._starting -= 1
                self._changed.notify_all()
            print(f"[cxr_local] {self.spec.logical_id}: {error}", file=sys.stderr, flush=True)
            time.sleep(1)
            return
        with self._changed:
            self._starting -= 1
        self._add(sandbox)

    def _add(self, sandbox: _Sandbox) -> None:
        with self._changed:
            if self._closed:
                sandbox.close()
                return
            self._all.append(sandbox)
            if self.on_start is not None:
                self.on_start(sandbox)
            self._idle.append(sandbox)
            self._changed.notify()

    def _release(self, sandbox: _Sandbox) -> None:
        with self._changed:
            self._idle.append(sandbox)
            self._changed.notify()

    def _forget(self, sandbox: _Sandbox) -> None:
        sandbox.close()
        with self._changed:
            if sandbox in self._all:
                self._all.remove(sandbox)
            self._changed.notify_all()
