"""Who is calling: per-client API keys (hashed at rest, revocable) or an API Gateway-validated JWT; rate limits."""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from cxr_core.domain import forbidden, iso, throttled, unauthorised, utc_now
from cxr_core.ports import ApiKeyStore, RateCounter, StoredKey

API_KEY_HEADER = "x-api-key"
KEY_PREFIX = "cxr_"


def hash_key(api_key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough to make the stored value useless."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


OPERATOR = "operator"
OPS_SCOPE = "cxr/ops"


@dataclass(frozen=True)
class Client:
    client_id: str
    operator: bool = False

    def require_operator(self) -> None:
        if not self.operator:
            raise forbidden("this route is for operators: it shows other clients' jobs")


class ApiKeys:
    """Keys over an ApiKeyStore with a short in-process cache: a revocation takes effect within cache_seconds.
    The cache holds at most max_entries keys (least recently used out first), so unknown keys cannot grow it."""

    def __init__(self, store: ApiKeyStore, cache_seconds: int, max_entries: int = 10_000):
        self._store = store
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()
        self._lock = threading.Lock()

    def client_for(self, api_key: str) -> Client | None:
        digest = hash_key(api_key)
        with self._lock:
            cached = self._cache.get(digest)
            if cached and cached[0] > time.monotonic():
                self._cache.move_to_end(digest)
                return cached[1]
        stored = self._store.find(digest)
        client = None if stored is None or stored.revoked_at else Client(stored.client_id, stored.role == OPERATOR)
        with self._lock:
            self._cache[digest] = (time.monotonic() + self._cache_seconds, client)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return client

    def create(self, client_id: str, label: str | None = None, api_key: str | None = None,
               operator: bool = False) -> str:
        api_key = api_key or new_api_key()
        self._store.add(StoredKey(hash_key(api_key), client_id=client_id, role=OPERATOR if operator else "client",
                                  created_at=iso(utc_now()), label=label))
        return api_key

    def revoke(self, api_key_or_hash: str) -> bool:
        digest = api_key_or_hash if re.fullmatch("[0-9a-f]{64}", api_key_or_hash) else hash_key(api_key_or_hash)
        return self._store.revoke(digest, iso(utc_now()))

    def list(self) -> list[dict]:
        return [{"key_hash": k.key_hash, "client_id": k.client_id, "role": k.role, "label": k.label,
                 "created_at": k.created_at, "revoked_at": k.revoked_at} for k in self._store.all()]


class FailureLimiter:
    """Unauthenticated requests per source address and minute, per process: past the limit a source is refused
    (429) before its keys cost a lookup. Remembers at most max_sources addresses (least recently seen out first)."""

    def __init__(self, per_minute: int, max_sources: int = 10_000):
        self.per_minute, self._max_sources = per_minute, max_sources
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()  # source -> (minute, failures)
        self._lock = threading.Lock()

    def check(self, source: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.time()
        with self._lock:
            minute, failures = self._counts.get(source, (0, 0))
        if minute == int(now // 60) and failures >= self.per_minute:
            raise throttled(max(1, int((minute + 1) * 60 - now) + 1))

    def failed(self, source: str) -> None:
        window = int(time.time() // 60)
        with self._lock:
            minute, failures = self._counts.pop(source, (window, 0))
            self._counts[source] = (window, failures + 1 if minute == window else 1)
            while len(self._counts) > self._max_sources:
                self._counts.popitem(last=False)


class Authenticator:
    def __init__(self, mode: str, keys: ApiKeys, failures: FailureLimiter | None = None):
        if mode not in ("api_key", "jwt", "none"):
            raise ValueError(f"AUTH_MODE must be api_key, jwt or none, not {mode!r}")
        self.mode = mode
        self._keys = keys
        self._failures = failures or FailureLimiter(0)

    def client(self, headers: dict, request_context: dict) -> Client:
        """The calling client, or ServiceError UNAUTHORISED."""
        iam = (request_context.get("authorizer") or {}).get("iam") or {}
        if iam.get("userArn") or iam.get("callerId"):  # API Gateway's IAM authorizer verified a SigV4 signature
            return Client(str(iam.get("userArn") or iam.get("callerId")), operator=True)
        if self.mode == "none":
            return Client("anonymous", operator=True)
        if self.mode == "jwt":  # API Gateway's JWT authorizer has already checked the token
            jwt = (request_context.get("authorizer") or {}).get("jwt") or {}
            claims = jwt.get("claims") or {}
            if not claims.get("sub"):
                raise unauthorised("missing or invalid bearer token")
            scopes = jwt.get("scopes") or str(claims.get("scope", "")).split()
            return Client(str(claims["sub"]), operator=OPS_SCOPE in scopes)
        source = str((request_context.get("http") or {}).get("sourceIp") or "")
        self._failures.check(source)
        api_key = (headers.get(API_KEY_HEADER) or "").strip()  # as API Gateway trims header values
        if not api_key:
            self._failures.failed(source)
            raise unauthorised()
        client = self._keys.client_for(api_key)
        if client is None:
            self._failures.failed(source)
            raise unauthorised("unknown or revoked API key")
        return client


class RateLimiter:
    """A fixed one-minute window per client; each process reserves a lease of requests with one conditional ADD.

    A client is never admitted beyond per_minute in a window; it may be refused up to (processes - 1) x (lease - 1)
    requests early, because other processes can hold unspent leases.
    """

    def __init__(self, counter: RateCounter, per_minute: int, lease: int = 10):
        self._counter = counter
        self.per_minute = per_minute
        self.lease = max(1, lease)
        self._balances: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, client_id: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.time()
        window = int(now // 60)
        key = (client_id, window)
        with self._lock:
            if self._balances.get(key, 0) > 0:
                self._balances[key] -= 1
                return
            block = min(self.lease, self.per_minute)
            granted = self._reserve(client_id, window, block)
            if not granted and block > 1:
                granted = self._reserve(client_id, window, 1)
            if not granted:
                raise throttled(max(1, int((window + 1) * 60 - now) + 1))
            self._balances = {k: v for k, v in self._balances.items() if k[1] >= window}
            self._balances[key] = granted - 1

    def _reserve(self, client_id: str, window: int, count: int) -> int:
        """Add count to the window's counter if it stays within per_minute; count, or 0 when it would not."""
        granted = self._counter.reserve(f"{client_id}#{window}", count, self.per_minute,
                                        utc_now() + timedelta(minutes=5))
        return count if granted else 0
