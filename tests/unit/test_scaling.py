"""The worker set and adaptive decisions: pure functions, checked exhaustively."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.core.control.autoscaler import decide
from service.core.workloads.worker_names import desired_count, grow, next_workers, resize, shrink
from service.recipes.models import Adaptive, ClusterFields


def names(*indexes: int) -> list[str]:
    return [f"worker-{i}" for i in indexes]


def test_growing_fills_the_lowest_free_names() -> None:
    assert grow(names(0, 2), 4) == names(0, 2, 1, 3)
    assert grow([], 2) == names(0, 1)


def test_shrinking_drops_the_preferred_then_the_newest() -> None:
    assert shrink(names(0, 1, 2, 3), 2) == names(0, 1)
    assert shrink(names(0, 1, 2, 3), 2, remove_first=names(1)) == names(0, 2)
    assert shrink(names(0, 1, 2), 2, remove_first=["worker-9"]) == names(0, 1)
    assert resize(names(0, 1), 2) == names(0, 1)


def test_a_fixed_cluster_runs_n_workers_and_an_adaptive_one_keeps_its_size() -> None:
    fixed = ClusterFields(n_workers=3)
    assert desired_count(fixed, names(0)) == 3
    adaptive = ClusterFields(n_workers=1, adaptive=Adaptive(minimum=2, maximum=5))
    assert desired_count(adaptive, None) == 2  # starts at n_workers within the bounds
    assert desired_count(adaptive, names(0, 1, 2, 3)) == 4  # the autoscaler's choice stays
    assert desired_count(adaptive, names(*range(9))) == 5  # lowered maximum wins
    assert next_workers(adaptive, names(0, 3, 4), unstarted=names(3)) == names(0, 3, 4)


BOUNDS = Adaptive(minimum=1, maximum=4)


def test_scale_up_is_immediate_and_says_why() -> None:
    scaling = decide(names(0), 9, BOUNDS, set(names(0)), [], {}, 3)
    assert scaling is not None and scaling.workers == names(0, 1, 2, 3)
    assert scaling.reason == (
        "adaptive: scaling up from 1 to 4 workers (the cluster asks for 9; bounds 1..4)"
    )


def test_scale_down_waits_for_idle_checks_and_drops_unstarted_first() -> None:
    current = names(0, 1, 2)
    connected = set(names(0, 1))  # worker-2 has not connected yet
    early = decide(current, 1, BOUNDS, connected, names(1), {"worker-1": 1}, 3)
    assert early is not None and early.workers == names(0, 1) and early.retire == []
    assert "dropping worker-2 (not started)" in early.reason
    later = decide(names(0, 1), 1, BOUNDS, connected, names(1), {"worker-1": 3}, 3)
    assert later is not None and later.workers == names(0) and later.retire == names(1)
    assert "retiring idle worker-1" in later.reason
    assert decide(names(0, 1), 1, BOUNDS, connected, names(1), {"worker-1": 2}, 3) is None


def test_a_worker_whose_data_cannot_move_stays() -> None:
    scaling = decide(names(0, 1, 2), 1, BOUNDS, set(names(0, 1, 2)), names(1, 2), {}, 0)
    assert scaling is not None and scaling.retire == names(1, 2)
    partly = scaling.keeping(names(2))
    assert partly is not None and partly.workers == names(0, 2) and partly.retire == names(1)
    assert scaling.keeping(names(1, 2)) is None


@given(
    size=st.integers(0, 8),
    connected_mask=st.lists(st.booleans(), min_size=8, max_size=8),
    idle_mask=st.lists(st.booleans(), min_size=8, max_size=8),
    wanted=st.integers(0, 12),
    minimum=st.integers(0, 4),
    extra=st.integers(0, 4),
)
def test_decisions_stay_in_bounds_and_never_remove_a_busy_worker(
    size: int,
    connected_mask: list[bool],
    idle_mask: list[bool],
    wanted: int,
    minimum: int,
    extra: int,
) -> None:
    bounds = Adaptive(minimum=minimum, maximum=max(1, minimum + extra))
    current = names(*range(size))
    connected = {n for n, c in zip(current, connected_mask, strict=False) if c}
    idle = [n for n, i in zip(current, idle_mask, strict=False) if i and n in connected]
    scaling = decide(current, wanted, bounds, connected, idle, dict.fromkeys(idle, 3), 3)
    if scaling is None:
        return
    removed = set(current) - set(scaling.workers)
    busy = connected - set(idle)
    assert not removed & busy, "a busy worker was chosen"
    assert set(scaling.retire) <= set(idle)
    target = min(max(wanted, bounds.minimum), bounds.maximum)
    if removed:
        assert len(scaling.workers) >= target and set(scaling.workers) <= set(current)
    else:
        assert len(scaling.workers) == target > len(current)
        assert set(current) <= set(scaling.workers)
