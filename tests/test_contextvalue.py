"""``bound``: ContextVars set for one block, then restored, even when the block raises."""

from __future__ import annotations

from contextvars import ContextVar

import pytest

from entra_ciam.contextvalue import bound

VAR: ContextVar[str | None] = ContextVar("test_contextvalue", default=None)
OTHER: ContextVar[int | None] = ContextVar("test_contextvalue_other", default=None)


def test_value_holds_inside_the_block_and_is_restored_after() -> None:
    with bound((VAR, "outer")):
        assert VAR.get() == "outer"
        with bound((VAR, "inner")):
            assert VAR.get() == "inner"
        assert VAR.get() == "outer"
    assert VAR.get() is None


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), bound((VAR, "request")):
        raise RuntimeError("boom")
    assert VAR.get() is None


def test_several_variables_in_one_block() -> None:
    with bound((VAR, "outer"), (OTHER, 1)):
        with bound((VAR, "inner"), (OTHER, 2)):
            assert (VAR.get(), OTHER.get()) == ("inner", 2)
        assert (VAR.get(), OTHER.get()) == ("outer", 1)
    assert (VAR.get(), OTHER.get()) == (None, None)


def test_one_variable_bound_twice_in_one_block_is_restored_to_before() -> None:
    # Restored in reverse order: the first token is reset last, so the value before wins.
    with bound((VAR, "first"), (VAR, "second")):
        assert VAR.get() == "second"
    assert VAR.get() is None


def test_several_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), bound((VAR, "request"), (OTHER, 7)):
        raise RuntimeError("boom")
    assert (VAR.get(), OTHER.get()) == (None, None)
