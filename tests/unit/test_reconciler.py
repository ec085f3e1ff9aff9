"""The reconciler against fault-injection backends, on a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.core.control import records
from service.core.control.state import Target
from service.core.identity.auth import hash_token
from service.database.models import Process, Resource, StatusEvent, Token
from service.errors import InvalidInput
from tests.fakes import FakeBackend
from tests.planes import Plane, fake_gpus, plane

CLUSTER = {"type": "cluster", "name": "c", "spec": {"n_workers": 2}}


def test_a_cluster_converges_with_tokens_and_addresses(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, database_url) as p:
            assert p.apply(CLUSTER)["action"] == "created"
            await p.status("cluster", "c", "running")
            assert p.backend.running() == ["scheduler", "worker-0", "worker-1"]
            worker = p.backend.specs[p.backend.pid_of("worker-0")]
            scheduler = p.get("cluster", "c")["endpoints"]["scheduler"]
            assert worker.env["DASK_SCHEDULER_ADDRESS"] == scheduler
            assert worker.env["TITAN_RESOURCE"] == "admin/cluster/c"
            with p.service.sessions() as session:
                token = session.scalar(
                    select(Token).where(Token.token_hash == hash_token(worker.env["TITAN_TOKEN"]))
                )
                assert token is not None and token.resource_id == p.get("cluster", "c")["id"]
            steps = [(e["from"], e["to"]) for e in p.history("cluster", "c")]
            assert steps == [(None, "pending"), ("pending", "starting"), ("starting", "running")]

    asyncio.run(scenario())


def test_slow_start_is_reported_as_starting(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", FakeBackend(start_delay=0.5)) as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "starting")
            await p.status("cluster", "c", "running")

    asyncio.run(scenario())


def test_failure_at_step_n_is_cleaned_up_and_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", FakeBackend(fail_at=2)) as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            failed = [e for e in p.history("cluster", "c") if e["to"] == "failed"]
            assert failed and "failed at start 2" in failed[0]["reason"]
            assert "retrying in" in failed[0]["reason"]
            # The process whose start failed was stopped, not leaked.
            assert p.backend.stops.count(p.backend.starts[1]) == 1
            assert len(p.backend.running()) == 3

    asyncio.run(scenario())


def test_repeated_failures_back_off_exponentially(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", FakeBackend(fail_names=frozenset({"worker-1"}))) as p:
            p.apply(CLUSTER)
            await asyncio.sleep(2.5)
            attempts = p.backend.starts.count("worker-1")
            # base 0.2s doubling (0.2, 0.4, 0.8, 1.6): a handful of tries, not one per resync.
            assert 2 <= attempts <= 5, attempts
            resource = p.get("cluster", "c")
            assert resource["status"] == "failed"
            assert "worker-1" not in p.backend.running()

    asyncio.run(scenario())


def test_a_dead_worker_is_replaced_while_the_cluster_stays_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            scheduler = p.backend.pid_of("scheduler")
            seen = len(p.history("cluster", "c"))
            p.backend.exit("worker-1", -9)
            await p.until(lambda: "worker-1" in p.backend.running())
            await p.status("cluster", "c", "running")
            repair = [(e["to"], e["reason"]) for e in p.history("cluster", "c")[seen:]]
            assert [to for to, _ in repair] == ["degraded", "degraded", "running"], repair
            assert repair[0][1].startswith("worker-1 (exit code -9) exited unexpectedly; retrying")
            assert repair[1][1] == "starting worker-1"
            assert p.backend.pid_of("scheduler") == scheduler

    asyncio.run(scenario())


def test_a_worker_that_will_not_start_again_leaves_the_cluster_degraded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            p.backend.fail_names.add("worker-1")
            p.backend.exit("worker-1", 1)
            await p.until(lambda: p.backend.starts.count("worker-1") >= 3)  # retried, backing off
            assert p.get("cluster", "c")["status"] == "degraded"
            p.backend.fail_names.clear()
            await p.until(lambda: "worker-1" in p.backend.running())
            await p.status("cluster", "c", "running")
            history = p.history("cluster", "c")
            assert "failed" not in [e["to"] for e in history]
            assert any("worker-1 failed at start" in e["reason"] for e in history)

    asyncio.run(scenario())


def test_a_dead_scheduler_restarts_its_workers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            worker = p.backend.pid_of("worker-0")
            p.backend.exit("scheduler", 1)
            await p.until(lambda: p.backend.running() == ["scheduler", "worker-0", "worker-1"])
            await p.status("cluster", "c", "running")
            failed = [e["reason"] for e in p.history("cluster", "c") if e["to"] == "failed"]
            assert failed and failed[0].startswith("scheduler (exit code 1) exited unexpectedly")
            assert p.backend.pid_of("worker-0") != worker
            new_address = p.get("cluster", "c")["endpoints"]["scheduler"]
            spec = p.backend.specs[p.backend.pid_of("worker-0")]
            assert spec.env["DASK_SCHEDULER_ADDRESS"] == new_address

    asyncio.run(scenario())


def test_scaling_up_keeps_the_scheduler(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            before = {n: p.backend.pid_of(n) for n in p.backend.running()}
            result = p.apply({**CLUSTER, "spec": {"n_workers": 4}})
            assert result["action"] == "updated" and result["resource"]["generation"] == 2
            await p.until(lambda: len(p.backend.running()) == 5)
            await p.until(lambda: p.get("cluster", "c")["observed_generation"] == 2)
            assert all(p.backend.pid_of(n) == pid for n, pid in before.items())
            statuses = [e["to"] for e in p.history("cluster", "c")]
            assert statuses.count("starting") == 1  # scaling did not go back to starting

    asyncio.run(scenario())


def test_a_worker_set_chosen_by_name_keeps_the_survivors(tmp_path: Path) -> None:
    adaptive = {**CLUSTER, "spec": {"n_workers": 3, "adaptive": {"minimum": 1, "maximum": 4}}}

    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(adaptive)
            await p.status("cluster", "c", "running")
            before = {n: p.backend.pid_of(n) for n in p.backend.running()}
            resource_id = p.get("cluster", "c")["id"]
            workers = ["worker-0", "worker-1", "worker-2"]
            with p.service.sessions.begin() as session:  # as the autoscaler decides
                done = records.change_workers(
                    session, resource_id, workers, ["worker-0", "worker-2"], "adaptive: test"
                )
                assert done
                stale = records.change_workers(session, resource_id, workers, [], "lost race")
                assert not stale  # the set changed meanwhile: nothing happens
            await p.until(lambda: p.backend.running() == ["scheduler", "worker-0", "worker-2"])
            assert all(p.backend.pid_of(n) == before[n] for n in ("scheduler", "worker-0"))
            assert p.backend.pid_of("worker-2") == before["worker-2"]
            assert "adaptive: test" in [e["reason"] for e in p.history("cluster", "c")]
            p.target("cluster", "c", Target.STOPPED)
            await p.status("cluster", "c", "stopped")
            p.target("cluster", "c", Target.RUNNING)  # a fresh start: n_workers again
            await p.until(lambda: len(p.backend.running()) == 4)
            assert p.backend.running() == ["scheduler", "worker-0", "worker-1", "worker-2"]

    asyncio.run(scenario())


def test_a_new_image_restarts_every_process(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            before = set(p.backend.specs)
            p.service.images.register(p.admin, "titan/cpu", "2", None, None, public=True)
            p.apply({**CLUSTER, "spec": {"n_workers": 2, "image": "titan/cpu:2"}})
            await p.until(
                lambda: not (set(p.backend.specs) & before) and len(p.backend.running()) == 3
            )
            await p.status("cluster", "c", "running")

    asyncio.run(scenario())


def test_apply_is_idempotent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            starts = len(p.backend.starts)
            again = p.apply(CLUSTER)
            assert again["action"] == "unchanged" and again["resource"]["generation"] == 1
            readback, generation = p.service.recipe(p.admin, "cluster", "c", None)
            assert generation == 1
            assert p.apply(readback)["action"] == "unchanged"
            await asyncio.sleep(0.5)
            assert len(p.backend.starts) == starts

    asyncio.run(scenario())


def test_stop_start_and_delete(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            p.target("cluster", "c", Target.STOPPED)
            await p.status("cluster", "c", "stopped")
            assert p.backend.running() == [] and p.get("cluster", "c")["processes"] == []
            with p.service.sessions() as session:
                assert (
                    session.scalars(select(Token).where(Token.resource_id.is_not(None))).all() == []
                )
            p.target("cluster", "c", Target.RUNNING)
            await p.status("cluster", "c", "running")
            p.target("cluster", "c", Target.DELETED)

            def gone() -> bool:
                with p.service.sessions() as session:
                    return session.scalar(select(Resource)) is None

            await p.until(gone)
            assert p.backend.running() == []
            with p.service.sessions() as session:
                assert session.scalars(select(StatusEvent)).all() == []

    asyncio.run(scenario())


def test_a_job_records_its_exit_and_stops_its_cluster(tmp_path: Path) -> None:
    job = {"type": "job", "name": "j", "spec": {"command": "x", "dask_cluster": {}}}

    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply(job)
            await p.status("job", "j", "running")
            p.backend.exit("job", 3)
            await p.status("job", "j", "failed")
            resource = p.get("job", "j")
            assert resource["target"] == "stopped"
            assert "job exited with code 3" in resource["status_reason"]
            assert [(x["name"], x["exit_code"]) for x in resource["processes"]] == [("job", 3)]
            assert p.backend.running() == []
            await asyncio.sleep(0.5)
            assert p.backend.starts.count("job") == 1  # a finished job is not re-run
            p.target("job", "j", Target.RUNNING)  # ...unless started again
            await p.until(lambda: p.backend.starts.count("job") == 2)
            p.backend.exit("job", 0)
            await p.status("job", "j", "succeeded")

    asyncio.run(scenario())


def test_orphans_of_a_crashed_start_are_stopped(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = FakeBackend()

        async def ignore(_handle: Any) -> None:
            return None

        from service.backends.base import ProcessSpec

        await backend.start(ProcessSpec("nope", "worker-9", "worker", [], {}), ignore)
        async with plane(tmp_path, "", backend) as p:
            assert p.backend.running() == []
            assert p.backend.stops == ["worker-9"]

    asyncio.run(scenario())


def test_a_restarted_control_plane_adopts_what_runs(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        async with plane(tmp_path, database_url, backend) as p:
            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
        starts = len(backend.starts)
        pids = dict(backend.specs)
        backend.exit("worker-0")  # dies while the control plane is down
        async with plane(tmp_path, database_url, backend) as p:
            await p.until(lambda: len(backend.running()) == 3)
            await p.status("cluster", "c", "running")
            assert backend.starts[starts:] == ["worker-0"]
            assert backend.pid_of("scheduler") in pids

    asyncio.run(scenario())


def test_the_queue_never_reconciles_one_resource_twice_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", FakeBackend(start_delay=0.2)) as p:
            active, most, calls = 0, 0, 0
            original = p.reconciler.reconcile

            async def counted(resource_id: str) -> None:
                nonlocal active, most, calls
                active, calls = active + 1, calls + 1
                most = max(most, active)
                try:
                    await original(resource_id)
                finally:
                    active -= 1

            p.reconciler.reconcile = counted  # type: ignore[method-assign]
            resource_id = p.apply(CLUSTER)["resource"]["id"]
            for _ in range(200):
                p.reconciler.wake(resource_id)
            await p.status("cluster", "c", "running")
            assert most == 1
            assert calls < 20

    asyncio.run(scenario())


GPU_CLUSTER = {"type": "cluster", "name": "g", "spec": {"instance_type": "gpu-1", "n_workers": 2}}


def test_a_gpu_cluster_on_nodes_without_gpus_is_refused_at_apply(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=[]) as p:
            with pytest.raises(InvalidInput) as refused:
                p.apply(GPU_CLUSTER)
            assert "fits no node: worker-0 asks for 1 GPU(s)" in str(refused.value)
            assert "the node with the most, test-node, has 0" in str(refused.value)
            assert p.service.list_visible(p.admin) == []  # nothing half-made
            assert p.backend.starts == []

    asyncio.run(scenario())


def reason(p: Plane, name: str, type: str = "cluster") -> str:
    return str(p.get(type, name)["status_reason"])


def test_a_cluster_starts_the_workers_that_fit_and_keeps_the_rest_pending(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(1)) as p:
            p.apply(GPU_CLUSTER)
            await p.status("cluster", "g", "degraded")
            await p.until(
                lambda: "worker-1 waiting for 1 GPU" in p.get("cluster", "g")["status_reason"]
            )
            assert "0 of 1 free on node test-node" in p.get("cluster", "g")["status_reason"]
            await asyncio.sleep(0.6)  # several resyncs: the rest still waits
            assert sorted(p.backend.starts) == ["scheduler", "worker-0"]
            assert p.get("cluster", "g")["workers"] == {"ready": 1, "wanted": 2}
            other = {"type": "cluster", "name": "h", "spec": {"instance_type": "gpu-1"}}
            p.apply(other)  # its scheduler runs; its worker waits for the one GPU
            await p.until(
                lambda: "worker-0 waiting for 1 GPU" in p.get("cluster", "h")["status_reason"]
            )
            p.target("cluster", "g", Target.STOPPED)
            await p.status("cluster", "h", "running")  # the GPU went to the waiting worker
            assert p.get("cluster", "h")["workers"] == {"ready": 1, "wanted": 1}

    asyncio.run(scenario())


def test_a_workspace_whose_cluster_waits_for_capacity_stays_usable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(1)) as p:
            lab = {
                "type": "workspace",
                "name": "lab",
                "spec": {"dask_cluster": {"worker": {"gpu": 1}, "n_workers": 1}},
            }
            p.apply(lab)
            await p.status("workspace", "lab", "running")
            # Scaled beyond the one GPU: the new worker waits, the notebook keeps working.
            p.apply({**lab, "spec": {"dask_cluster": {"worker": {"gpu": 1}, "n_workers": 3}}})
            await p.until(lambda: "worker-1" in reason(p, "lab", "workspace"))
            seen = set()
            for _ in range(6):  # several resyncs: never pending while its notebook runs
                seen.add(p.get("workspace", "lab")["status"])
                await asyncio.sleep(0.1)
            assert seen == {"degraded"}, seen
            assert p.get("workspace", "lab")["workers"] == {"ready": 1, "wanted": 3}
            assert "jupyter" in p.backend.starts

    asyncio.run(scenario())


def test_gpus_are_handed_out_once_and_freed_on_delete(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(3)) as p:
            p.apply(GPU_CLUSTER)
            await p.status("cluster", "g", "running")
            held = [p.backend.specs[p.backend.pid_of(w)].gpus for w in ("worker-0", "worker-1")]
            assert sorted(uuid for gpus in held for uuid in gpus) == [
                "GPU-00000000-fake",
                "GPU-00000001-fake",
            ]
            assert p.backend.specs[p.backend.pid_of("scheduler")].gpus == []
            second = {**GPU_CLUSTER, "name": "h"}
            p.apply(second)
            await p.until(
                lambda: "held by admin/cluster/g" in p.get("cluster", "h")["status_reason"]
            )
            # Each worker of h would get the free GPU, but g holds the node's memory.
            assert "worker-0, worker-1 waiting for 32 GiB of memory" in reason(p, "h")
            assert p.get("cluster", "h")["status"] == "degraded"  # its scheduler serves
            p.target("cluster", "g", Target.DELETED)
            await p.status("cluster", "h", "running")
            views = p.get("cluster", "h")["processes"]
            assert sorted(len(v["gpus"]) for v in views) == [0, 1, 1]

    asyncio.run(scenario())


def test_concurrent_applies_never_give_a_gpu_twice(tmp_path: Path) -> None:
    def one_gpu_cluster(index: int) -> dict[str, Any]:
        return {
            "type": "cluster",
            "name": f"g{index}",
            "spec": {"n_workers": 1, "worker": {"gpu": 1}},
        }

    def held_gpus(p: Plane) -> list[str]:
        with p.service.sessions() as session:
            rows = session.scalars(select(Process.gpus)).all()
        return [uuid for gpus in rows for uuid in gpus]

    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(4)) as p:
            await asyncio.gather(
                *(asyncio.to_thread(p.apply, one_gpu_cluster(i)) for i in range(12))
            )

            def settled() -> bool:
                statuses = [p.get("cluster", f"g{i}")["status"] for i in range(12)]
                # the others' schedulers serve; their workers wait for a GPU
                return statuses.count("running") == 4 and statuses.count("degraded") == 8

            await p.until(settled, timeout=20)
            held = held_gpus(p)
            assert sorted(held) == [f"GPU-{i:08d}-fake" for i in range(4)]
            running = [i for i in range(12) if p.get("cluster", f"g{i}")["status"] == "running"]
            for index in running[:2]:
                p.target("cluster", f"g{index}", Target.DELETED)
            for _ in range(20):  # the invariant holds while capacity moves
                held = held_gpus(p)
                assert len(held) == len(set(held)) <= 4
                await asyncio.sleep(0.1)
            await p.until(lambda: len(held_gpus(p)) == 4, timeout=20)
            await p.until(
                lambda: (
                    sum(
                        p.get("cluster", f"g{i}")["status"] == "running"
                        for i in range(12)
                        if i not in running[:2]
                    )
                    == 4
                ),
                timeout=20,
            )

    asyncio.run(scenario())


def test_a_delete_that_races_a_finishing_job_wins(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "") as p:
            p.apply({"type": "job", "name": "j", "spec": {"command": "x"}})
            await p.status("job", "j", "running")
            original = p.reconciler._record_job_exit

            def delete_first(session: Any, *args: Any) -> None:
                # The user deletes while the pass that saw the job exit is recording it.
                p.target("job", "j", Target.DELETED)
                original(session, *args)

            p.reconciler._record_job_exit = delete_first  # type: ignore[method-assign]
            p.backend.exit("job", 0)

            def gone() -> bool:
                with p.service.sessions() as session:
                    return session.scalar(select(Resource)) is None

            await p.until(gone)

    asyncio.run(scenario())


def test_a_scale_up_without_gpus_leaves_the_cluster_up_and_degraded(tmp_path: Path) -> None:
    one = {"type": "cluster", "name": "g", "spec": {"n_workers": 1, "worker": {"gpu": 1}}}

    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(1)) as p:
            p.apply(one)
            await p.status("cluster", "g", "running")
            p.apply({**one, "spec": {"n_workers": 2, "worker": {"gpu": 1}}})
            await p.status("cluster", "g", "degraded")
            assert "waiting for 1 GPU" in p.get("cluster", "g")["status_reason"]
            assert p.backend.running() == ["scheduler", "worker-0"]

    asyncio.run(scenario())


def test_half_gpu_workers_share_one_gpu(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with plane(tmp_path, "", gpus=fake_gpus(2)) as p:
            p.apply(
                {"type": "cluster", "name": "h", "spec": {"n_workers": 2, "worker": {"gpu": 0.5}}}
            )
            await p.status("cluster", "h", "running")
            shared = [p.backend.specs[p.backend.pid_of(w)].gpus for w in ("worker-0", "worker-1")]
            assert shared == [["GPU-00000000-fake"], ["GPU-00000000-fake"]]
            p.apply(
                {"type": "cluster", "name": "w", "spec": {"n_workers": 1, "worker": {"gpu": 1}}}
            )
            await p.status("cluster", "w", "running")  # the whole GPU left free is still whole
            assert p.backend.specs[p.backend.pid_of("worker-0", "w")].gpus == ["GPU-00000001-fake"]
            p.apply(
                {"type": "cluster", "name": "x", "spec": {"n_workers": 1, "worker": {"gpu": 0.25}}}
            )
            await p.until(lambda: "of a GPU" in p.get("cluster", "x")["status_reason"])
            assert p.get("cluster", "x")["status"] == "degraded"  # its scheduler serves
            assert p.get("cluster", "x")["workers"] == {"ready": 0, "wanted": 1}

    asyncio.run(scenario())


def test_settled_resources_leave_the_resync_until_a_request_wakes_them(tmp_path: Path) -> None:
    """1,000 stopped resources must not cost a resync each every few seconds."""
    ok = {"type": "job", "name": "ok", "spec": {"command": "x"}}
    bad = {"type": "job", "name": "bad", "spec": {"command": "x"}}

    async def scenario() -> None:
        async with plane(tmp_path, "") as p:

            def due() -> set[str]:
                with p.service.sessions() as session:
                    ids = records.due_resources(session)
                return {p.service.get(p.admin, *_type_name(i), None)["name"] for i in ids}

            def _type_name(resource_id: str) -> tuple[str, str]:
                with p.service.sessions() as session:
                    resource = session.get(Resource, resource_id)
                    assert resource is not None
                    return resource.type, resource.name

            p.apply(CLUSTER)
            await p.status("cluster", "c", "running")
            for job, code, end in ((ok, 0, "succeeded"), (bad, 2, "failed")):
                p.apply(job)
                await p.status("job", job["name"], "running")
                p.backend.exit("job", code)  # its process, the only "job" running
                await p.status("job", job["name"], end)
            assert "c" in due()  # running: re-checked every resync
            p.target("cluster", "c", Target.STOPPED)
            await p.status("cluster", "c", "stopped")
            await p.until(lambda: due() == set())  # nothing runs, nothing to re-check
            p.target("cluster", "c", Target.RUNNING)  # a request brings it back at once
            await p.status("cluster", "c", "running")
            assert due() == {"c"}

    asyncio.run(scenario())
