"""``REQUEST``: the library's state for one request, one value, restored after the block."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from entra_ciam.context import claims_context, get_claims
from entra_ciam.frameworks import PLAIN, current_integration
from entra_ciam.requeststate import NOTHING, REQUEST, RequestState, bound
from entra_ciam.signin.context import current_context

OUTER = RequestState(PLAIN, None, {"sub": "outer"})
INNER = RequestState(None, None, {"sub": "inner"})


def test_nothing_is_current_outside_a_request() -> None:
    assert REQUEST.get() is NOTHING
    assert (current_integration(), current_context(), get_claims()) == (None, None, None)


def test_state_holds_inside_the_block_and_is_restored_after() -> None:
    with bound(OUTER):
        assert REQUEST.get() is OUTER
        assert current_integration() is PLAIN and get_claims() == {"sub": "outer"}
        with bound(INNER):
            assert REQUEST.get() is INNER
        assert REQUEST.get() is OUTER
    assert REQUEST.get() is NOTHING


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), bound(OUTER):
        raise RuntimeError("boom")
    assert REQUEST.get() is NOTHING


def test_claims_context_keeps_what_an_outer_middleware_set() -> None:
    with bound(OUTER), claims_context({"sub": "api"}):
        assert current_integration() is PLAIN
        assert get_claims() == {"sub": "api"}
    assert REQUEST.get() is NOTHING


def test_each_task_sees_only_its_own_request() -> None:
    async def request(state: RequestState) -> RequestState:
        with bound(state):
            await asyncio.sleep(0.01)  # the other task binds its state meanwhile
            return REQUEST.get()

    async def both() -> list[RequestState]:
        return list(await asyncio.gather(request(OUTER), request(INNER)))

    assert asyncio.run(both()) == [OUTER, INNER]


def test_a_copied_context_carries_the_state_into_a_worker() -> None:
    with bound(OUTER):
        copied = contextvars.copy_context()
    assert copied.run(REQUEST.get) is OUTER
    assert REQUEST.get() is NOTHING
