"""`agentcron.tasks`: side-task shutdown and many store calls at once."""

from __future__ import annotations

import asyncio

import pytest

from agentcron.tasks import map_in_chunks


class InFlight:
    """An async call that counts how many of its calls are running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, item: int) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0)  # one loop turn, as a store round trip
        self.now -= 1
        if item == 13:
            raise ValueError("unlucky")
        return item * 2


async def test_results_come_back_in_order_with_at_most_one_chunk_in_flight() -> None:
    call = InFlight()
    assert await map_in_chunks(call, list(range(12)), chunk=5) == [i * 2 for i in range(12)]
    assert call.most == 5


async def test_no_items_make_no_calls() -> None:
    call = InFlight()
    assert await map_in_chunks(call, []) == []
    assert call.most == 0


async def test_the_first_failure_propagates_after_its_chunk() -> None:
    call = InFlight()
    with pytest.raises(ValueError, match="unlucky"):
        await map_in_chunks(call, list(range(20)), chunk=10)
    assert call.now == 0  # every call of the failing chunk finished
