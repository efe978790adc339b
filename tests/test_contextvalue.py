"""``bound``: a ContextVar set for one block, then restored, even when the block raises."""

from __future__ import annotations

from contextvars import ContextVar

import pytest

from entra_ciam.contextvalue import bound

VAR: ContextVar[str | None] = ContextVar("test_contextvalue", default=None)


def test_value_holds_inside_the_block_and_is_restored_after() -> None:
    with bound(VAR, "outer") as outer:
        assert outer == "outer"
        assert VAR.get() == "outer"
        with bound(VAR, "inner"):
            assert VAR.get() == "inner"
        assert VAR.get() == "outer"
    assert VAR.get() is None


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), bound(VAR, "request"):
        raise RuntimeError("boom")
    assert VAR.get() is None
