"""`cxr submit-dir`: every study in a folder, uploaded and followed N at a time, resumable through a manifest."""
from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from . import exit_codes
from .api import ApiError, Client
from .files import LocalFileError, read_image
from .jobs import follow_one, upload

MANIFEST_NAME = ".cxr-manifest.jsonl"
SCOPE_MODEL_FIELDS = ("name", "weights_sha256", "preprocess")


def manifest_scope(endpoint: str, health: dict, models: dict | None = None, requested: str | None = None) -> dict:
    """What an earlier answer is valid for: this server, and the model it reports now (GET /v1/ops/health for the
    default; with --model, that model's entry in GET /v1/models: its name, weights SHA-256 and model id)."""
    if requested:
        served = {entry.get("name"): entry for entry in (models or {}).get("models", [])}
        entry = served.get(requested)
        if entry is None or not entry.get("weights_sha256") or not entry.get("model_id"):
            raise ApiError(f"{endpoint} does not serve model {requested!r} (it serves: {', '.join(sorted(served))})")
        return {"endpoint": endpoint, "model": {field: entry[field] for field in ("name", "weights_sha256", "model_id")}}
    model = health.get("model") or {}
    missing = [field for field in SCOPE_MODEL_FIELDS if not model.get(field)]
    if missing:
        raise ApiError(f"{endpoint}/v1/ops/health does not name the model ({', '.join(missing)} missing), so earlier "
                       "answers cannot be matched to it; is this a cxr-serverless API?")
    return {"endpoint": endpoint, "model": {field: model[field] for field in SCOPE_MODEL_FIELDS}}


def _scope_key(scope: dict | None) -> str:
    return json.dumps(scope, sort_keys=True)


class Manifest:
    """One JSON line per file that reached a final state, keyed by the SHA-256 of its bytes and the scope it was
    answered in (server endpoint and model identity: name, weights SHA-256, preprocessing); appended and flushed
    as each file finishes, so an interrupted run (Ctrl-C, a crash) keeps everything done before it. An entry is
    reused only in the same scope: another server or other weights send the file again."""

    def __init__(self, path: Path, scope: dict | None = None) -> None:
        self.path = path
        self.scope = scope
        self.entries: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[(entry["sha256"], _scope_key(entry.get("scope")))] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash

    def completed(self, sha256: str) -> dict | None:
        entry = self.entries.get((sha256, _scope_key(self.scope)))
        if not (entry and entry.get("status") == "COMPLETED" and entry.get("result")):
            return None
        return {key: value for key, value in entry.items() if key != "scope"}

    def append(self, record: dict) -> None:
        entry = {**{key: value for key, value in record.items() if key != "exit_code"}, "scope": self.scope}
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
        self.entries[(record["sha256"], _scope_key(self.scope))] = entry


def process_file(client: Client, path: Path, manifest: Manifest, deadline: float, timeout_s: float,
                 sent: Callable[[int], None]) -> dict:
    """Read, look up in the manifest, upload, follow to the end; a bad file fails only its own record."""
    try:
        image = read_image(path)
    except LocalFileError as error:
        return {"file": str(path), "status": "ERROR", "error": str(error), "exit_code": exit_codes.USAGE}
    digest = hashlib.sha256(image.data).hexdigest()
    earlier = manifest.completed(digest)
    if earlier is not None:
        sent(len(image.data))
        return {**earlier, "file": str(path), "from_manifest": True, "exit_code": exit_codes.OK}
    record = upload(client, image, sent)
    record["sha256"] = digest
    if client.model:
        record["model"] = client.model
    if "exit_code" not in record:
        follow_one(client, record, deadline, timeout_s)
    if record.get("status") in ("COMPLETED", "FAILED") and record.get("id"):
        manifest.append(record)
    return record


class Interrupted(Exception):
    """Ctrl-C: args[0] holds the records finished so far."""


def run(client: Client, files: list[Path], manifest: Manifest, concurrency: int, timeout_s: float,
        on_progress: Callable[[list[dict], int], None]) -> list[dict]:
    """N daemon threads take files in turn; the main thread only waits and redraws, so Ctrl-C reaches it at once
    and nothing is left running (a long poll in flight dies with the process; its job finishes server-side)."""
    deadline = time.monotonic() + timeout_s
    todo: queue.Queue[int] = queue.Queue()
    for index in range(len(files)):
        todo.put(index)
    results: list[dict | None] = [None] * len(files)
    sent_bytes = [0]
    lock = threading.Lock()
    finished = threading.Semaphore(0)

    def sent(count: int) -> None:
        with lock:
            sent_bytes[0] += count

    def work() -> None:
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = process_file(client, files[index], manifest, deadline, timeout_s, sent)
            except Exception as error:  # noqa: BLE001 - one file's surprise must not stop the others
                results[index] = {"file": str(files[index]), "status": "ERROR", "error": f"{type(error).__name__}: "
                                  f"{error}", "exit_code": exit_codes.API_ERROR}
            finished.release()

    for _ in range(max(1, min(concurrency, len(files)))):
        threading.Thread(target=work, daemon=True).start()
    done = 0
    try:
        while done < len(files):
            if finished.acquire(timeout=0.2):
                done += 1
            on_progress([r for r in results if r is not None], sent_bytes[0])
    except KeyboardInterrupt:
        raise Interrupted([r for r in results if r is not None]) from None
    return [r for r in results if r is not None]


def counts(records: list[dict], skipped: int) -> dict[str, int]:
    ok = [r for r in records if r.get("exit_code") == exit_codes.OK]
    return {"completed": sum(not r.get("cached") for r in ok), "cached": sum(bool(r.get("cached")) for r in ok),
            "failed": len(records) - len(ok), "skipped": skipped,
            "from_manifest": sum(bool(r.get("from_manifest")) for r in ok)}
