"""``flows.parallel``: branches submitted to Prefect's thread-pool runner, each on its own device slot."""

from __future__ import annotations

import threading
import time

from prefect import flow

from flows.parallel import _split, device_slots, run_branches
from stages.launch import Resources


def test_split_shares_every_item_and_round_robins_when_short() -> None:
    assert _split([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert _split([0], 3) == [[0], [0], [0]]
    slots = device_slots(2)
    assert len(slots) == 2 and all(s.in_child for s in slots)


def test_branches_overlap_on_distinct_slots_and_keep_their_order(prefect_harness) -> None:
    both_running = threading.Barrier(2, timeout=60)  # each branch waits until the other has started

    def branch(tag: str):
        def steps(slot: Resources | None) -> tuple[str, Resources | None]:
            both_running.wait()
            time.sleep(0.1)
            return tag, slot

        return steps

    @flow
    def two_branches(parallel: int) -> list:
        return run_branches([("a", branch("a")), ("b", branch("b"))], parallel)

    results = two_branches(2)
    assert [tag for tag, _ in results] == ["a", "b"]
    slots = [slot for _, slot in results]
    assert None not in slots and slots[0] != slots[1]


def test_one_at_a_time_runs_here_without_a_slot() -> None:
    assert run_branches([("a", lambda slot: slot), ("b", lambda slot: slot)], 1) == [None, None]
