"""The per-client rate limiter against moto's server: leases of requests, one conditional ADD per lease."""
import time
import uuid
from types import SimpleNamespace

import pytest

from cxr_core import auth
from cxr_core.auth import RateLimiter
from cxr_core.dynamo_auth import DynamoRateCounter
from cxr_core.domain import ServiceError
from cxr_core.http import headers_of, status_of
from cxr_core.records import RateLimitRecord

pytestmark = pytest.mark.integration

FROZEN = 1_900_000_020.0  # 20 s into a minute, far from today's counters
WINDOW = int(FROZEN // 60)


@pytest.fixture
def clock(runtime, monkeypatch):
    """A frozen time.time for the limiter; move it with clock.now."""
    clock = SimpleNamespace(now=FROZEN)
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: clock.now, monotonic=time.monotonic))
    return clock


@pytest.fixture
def updates(monkeypatch):
    """Every RateLimitRecord UpdateItem, as the record's key."""
    calls, original = [], RateLimitRecord.update

    def counting(record, *args, **kwargs):
        calls.append(record.window_key)
        return original(record, *args, **kwargs)

    monkeypatch.setattr(RateLimitRecord, "update", counting)
    return calls


def new_limiter(per_minute: int, lease: int) -> RateLimiter:
    """A limiter of one process, on the DynamoDB counter."""
    return RateLimiter(DynamoRateCounter(), per_minute, lease=lease)


def client() -> str:
    return f"client-{uuid.uuid4().hex}"


def admitted(limiter: RateLimiter, client_id: str) -> bool:
    try:
        limiter.hit(client_id)
        return True
    except ServiceError as error:
        assert status_of(error) == 429 and error.code == "THROTTLED"
        assert 1 <= int(headers_of(error)["Retry-After"]) <= 61
        return False


def stored_hits(client_id: str, window: int = WINDOW) -> int:
    try:
        return int(RateLimitRecord.get(f"{client_id}#{window}").hits)
    except RateLimitRecord.DoesNotExist:
        return 0


def test_one_process_admits_exactly_the_limit_then_throttles(clock, updates):
    limiter, who = new_limiter(25, lease=10), client()
    assert [admitted(limiter, who) for _ in range(30)] == [True] * 25 + [False] * 5
    assert stored_hits(who) == 25


def test_two_processes_never_admit_more_than_the_limit_together(clock, updates):
    first, second, who = new_limiter(25, lease=10), new_limiter(25, lease=10), client()
    total = 0
    for i in range(60):
        total += admitted((first, second)[i % 2], who)
        assert total <= 25 and stored_hits(who) <= 25
    assert total == 25 and stored_hits(who) == 25


def test_an_unspent_lease_elsewhere_refuses_at_most_lease_minus_one_early(clock, updates):
    holder, spender, who = new_limiter(25, lease=10), new_limiter(25, lease=10), client()
    assert admitted(holder, who)  # reserves 10, spends 1
    spent = 0
    while admitted(spender, who):
        spent += 1
    assert spent == 15 and stored_hits(who) == 25  # 25 - 1 - 15 = 9 = (2 - 1) x (10 - 1) refused early
    assert sum(admitted(holder, who) for _ in range(12)) == 9


def test_a_lease_of_one_writes_once_per_request(clock, updates):
    limiter, who = new_limiter(25, lease=1), client()
    assert [admitted(limiter, who) for _ in range(25)] == [True] * 25
    assert len(updates) == 25
    assert not admitted(limiter, who)
    assert len(updates) == 26 and stored_hits(who) == 25


def test_twenty_hits_cost_two_writes_with_a_lease_of_ten(clock, updates):
    limiter, who = new_limiter(25, lease=10), client()
    for _ in range(20):
        limiter.hit(who)
    assert updates == [f"{who}#{WINDOW}"] * 2 and stored_hits(who) == 20


def test_a_limit_under_the_lease_reserves_the_whole_limit_once(clock, updates):
    limiter, who = new_limiter(3, lease=10), client()
    assert [admitted(limiter, who) for _ in range(4)] == [True, True, True, False]
    assert len(updates) == 3 and stored_hits(who) == 3  # one lease of 3; the refusal tried 3, then 1


def test_a_new_window_drops_the_old_balances(clock, updates):
    limiter, who, other = new_limiter(25, lease=10), client(), client()
    limiter.hit(who)
    limiter.hit(other)
    clock.now += 60
    limiter.hit(who)
    assert limiter._balances == {(who, WINDOW + 1): 9}
    assert stored_hits(who, WINDOW + 1) == 10 and len(updates) == 3


def test_a_limit_of_zero_is_off(clock, updates):
    limiter = new_limiter(0, lease=10)
    for _ in range(50):
        limiter.hit(client())
    assert updates == []
