"""The allocation ledger: placement rules, and invariants under random allocate/free."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.capacity.ledger import (
    GPU,
    Holding,
    Inventory,
    Overcommit,
    Request,
    Unplaceable,
    place,
)

GIB = 1024**3
NODE = Inventory(
    "gpu-1",
    cpus=8,
    memory_bytes=32 * GIB,
    gpus=[GPU(i, f"GPU-{i}", "Fake H100", 80 * GIB) for i in range(4)],
)
EXACT = Overcommit(cpu=1.0, memory=1.0)


def test_gpus_are_given_lowest_first_and_never_twice() -> None:
    assert place(NODE, [], Request(gpus=2), EXACT) == ["GPU-0", "GPU-1"]
    held = [Holding("alice/job/train", 1, GIB, ("GPU-0", "GPU-2"))]
    assert place(NODE, held, Request(gpus=2), EXACT) == ["GPU-1", "GPU-3"]


def test_a_request_that_does_not_fit_names_what_is_missing_and_who_holds_it() -> None:
    held = [
        Holding("alice/job/train", 1, GIB, ("GPU-0", "GPU-1")),
        Holding("bob/workspace/notebook", 1, GIB, ("GPU-2", "GPU-3")),
    ]
    with pytest.raises(Unplaceable) as info:
        place(NODE, held, Request(gpus=1), EXACT)
    assert str(info.value) == (
        "waiting for 1 GPU: 0 of 4 free on node gpu-1 "
        "(held by alice/job/train, bob/workspace/notebook)"
    )


def test_cpu_may_be_overcommitted_memory_not_by_default() -> None:
    held = [Holding("a/cluster/c", 8, 30 * GIB)]
    with pytest.raises(Unplaceable, match="waiting for 2 CPUs: 0 of 8 free"):
        place(NODE, held, Request(cpu=2), EXACT)
    assert place(NODE, held, Request(cpu=2), Overcommit(cpu=2.0)) == []
    with pytest.raises(Unplaceable, match="waiting for 4 GiB of memory: 2 of 32 free"):
        place(NODE, held, Request(memory_bytes=4 * GIB), Overcommit(cpu=2.0))


def test_best_effort_requests_always_fit() -> None:
    full = [Holding("a/cluster/c", 8, 32 * GIB, ("GPU-0", "GPU-1", "GPU-2", "GPU-3"))]
    assert place(NODE, full, Request(), EXACT) == []


def test_shares_fill_a_partly_used_gpu_first() -> None:
    half = Request(shares=(0.5,))
    assert place(NODE, [], half, EXACT) == ["GPU-0"]
    held = [Holding("a/cluster/c", 0, 0, ("GPU-0",), 0.5)]
    assert place(NODE, held, half, EXACT) == ["GPU-0"]  # fills GPU-0, keeps 1-3 whole
    assert place(NODE, held, Request(gpus=3), EXACT) == ["GPU-1", "GPU-2", "GPU-3"]
    held.append(Holding("a/cluster/c", 0, 0, ("GPU-2",), 0.75))
    assert place(NODE, held, Request(shares=(0.25,)), EXACT) == ["GPU-2"]  # the fullest fit
    assert place(NODE, held, Request(shares=(0.5, 0.5)), EXACT) == ["GPU-0", "GPU-1"]


def test_a_share_waits_when_no_gpu_has_room() -> None:
    held = [Holding("a/job/j", 0, 0, (f"GPU-{i}",), 0.75) for i in range(4)]
    with pytest.raises(Unplaceable, match=r"waiting for 0.5 of a GPU: at most 0.25 of one GPU"):
        place(NODE, held, Request(shares=(0.5,)), EXACT)
    with pytest.raises(Unplaceable, match="waiting for 1 GPU: 0 of 4 free"):
        place(NODE, held, Request(gpus=1), EXACT)


whole = st.builds(
    Request,
    cpu=st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]),
    memory_bytes=st.sampled_from([0, GIB, 4 * GIB, 16 * GIB]),
    gpus=st.integers(min_value=0, max_value=3),
)
shared = st.builds(
    Request,
    cpu=st.sampled_from([0.0, 1.0]),
    shares=st.sampled_from([0.1, 0.25, 0.5, 0.75]).map(lambda share: (share,)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), whole | shared, st.integers(0, 100)), max_size=40))
def test_random_allocate_and_free_never_oversubscribe(
    steps: list[tuple[bool, Request, int]],
) -> None:
    """Each step is one process (whole GPUs or a share of one) starting or ending."""
    held: list[Holding] = []
    for index, (allocate, request, pick) in enumerate(steps):
        if not allocate and held:
            held.pop(pick % len(held))  # a process ends: its allocation is freed
            continue
        use = {f"GPU-{i}": 0.0 for i in range(4)}
        for holding in held:
            for uuid in holding.gpus:
                use[uuid] += holding.gpu_share
        free_gpus = sum(u <= 1e-9 for u in use.values())
        share = request.shares[0] if request.shares else 0.0
        fits = (
            request.gpus <= free_gpus
            and (share == 0 or any(u + share <= 1 + 1e-9 for u in use.values()))
            and request.cpu <= 8 - sum(h.cpu for h in held) + 1e-9
            and request.memory_bytes <= 32 * GIB - sum(h.memory_bytes for h in held)
        )
        try:
            gpus = place(NODE, held, request, EXACT)
        except Unplaceable:
            assert not fits, "refused a request that fits"
            continue
        assert fits, "accepted a request that does not fit"
        assert len(gpus) == request.gpus + len(request.shares)
        assert all(use[uuid] <= 1e-9 for uuid in gpus[: request.gpus]), "whole GPU not free"
        held.append(
            Holding(f"u/job/j{index}", request.cpu, request.memory_bytes, tuple(gpus), share or 1.0)
        )
        after = {uuid: 0.0 for uuid in use}
        for holding in held:
            for uuid in holding.gpus:
                after[uuid] += holding.gpu_share
        assert max(after.values()) <= 1 + 1e-9, "a GPU was given out beyond 1.0"
        assert sum(h.cpu for h in held) <= 8 + 1e-9
        assert sum(h.memory_bytes for h in held) <= 32 * GIB
