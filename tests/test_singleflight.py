"""``Flights``: threads and asyncio tasks asking for the same key share one call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import pytest

from entra_ciam.signin.singleflight import Flights


def _join_and_wait(flights: Flights[int], key: str, work: Callable[[], int]) -> int:
    """What a sync caller does: lead if first, then wait for the flight."""
    future, leads = flights.join(key)
    if leads:
        flights.lead(key, future, work)
    return future.result(timeout=10)


async def _join_and_await(flights: Flights[int], key: str, work: Callable[[], int]) -> int:
    """What an async caller does: the leader's work in a thread, everyone awaits the future."""
    future, leads = flights.join(key)
    if leads:
        await asyncio.to_thread(flights.lead, key, future, work)
    return await asyncio.wrap_future(future)


def test_threads_and_tasks_share_one_call_and_a_later_caller_starts_a_new_one() -> None:
    flights: Flights[int] = Flights()
    calls: list[int] = []
    release = threading.Event()

    def work() -> int:
        calls.append(1)
        release.wait(10)
        return len(calls)

    results: list[int] = []

    def thread_caller() -> None:
        results.append(_join_and_wait(flights, "user:scopes", work))

    async def tasks() -> list[int]:
        return await asyncio.gather(
            *(_join_and_await(flights, "user:scopes", work) for _ in range(16))
        )

    threads = [threading.Thread(target=thread_caller) for _ in range(16)]
    for t in threads:
        t.start()
    from_tasks: list[int] = []
    loop_thread = threading.Thread(target=lambda: from_tasks.extend(asyncio.run(tasks())))
    loop_thread.start()
    deadline = time.monotonic() + 10
    while len(calls) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let every caller join while the work is held
    release.set()
    for t in [*threads, loop_thread]:
        t.join(10)
    assert calls == [1]
    assert results == [1] * 16 and from_tasks == [1] * 16
    assert len(flights) == 0
    assert _join_and_wait(flights, "user:scopes", work) == 2  # the flight ended: a new one


def test_an_exception_reaches_every_caller_and_other_keys_fly_apart() -> None:
    flights: Flights[int] = Flights()
    future, leads = flights.join("a")
    assert leads
    follower, follows = flights.join("a")
    assert follower is future and not follows
    other, leads_other = flights.join("b")
    assert leads_other and other is not future

    def broken() -> int:
        raise ValueError("Entra answered garbage")

    flights.lead("a", future, broken)
    with pytest.raises(ValueError, match="garbage"):
        follower.result(timeout=1)
    flights.lead("b", other, lambda: 7)
    assert other.result(timeout=1) == 7


def test_a_follower_giving_up_leaves_the_flight_to_the_others() -> None:
    flights: Flights[int] = Flights()
    future, _ = flights.join("k")
    assert not future.cancel(), "a running flight cannot be cancelled by one of its callers"

    async def impatient() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(future), 0.05)

    asyncio.run(impatient())
    flights.lead("k", future, lambda: 3)
    assert isinstance(future, Future) and future.result(timeout=1) == 3
