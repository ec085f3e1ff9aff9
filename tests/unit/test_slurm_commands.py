"""Reading Slurm's own output: real lines from Slurm 22.05 (scontrol show job/node -o)."""

from __future__ import annotations

from pathlib import Path

from service.backends.slurm import _bound
from service.backends.slurm_commands import fields, gpu_gres, parse_job, parse_node

DATA = Path(__file__).parent.parent / "data" / "slurm"
RUNNING = (
    "JobId=11 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901749 "
    "Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) "
    "ExitCode=0:0 DerivedExitCode=0:0 RunTime=00:00:01 Partition=titan "
    "AllocNode:Sid=localhost:29299 ReqNodeList=n2 NodeList=n2 BatchHost=n2 NumNodes=1 "
    "JOB_GRES=gpu:1   Nodes=n2 CPU_IDs=1 Mem=100 GRES=gpu:1(IDX:1) MinCPUsNode=1 "
    "WorkDir=/work/main StdOut=/tmp/sx.out TresPerNode=gres:gpu:1 "
)
PENDING = (
    "JobId=13 JobName=wrap UserId=root(0) JobState=PENDING Reason=Priority "
    "Dependency=(null) ExitCode=0:0 NodeList= NumNodes=1 TresPerNode=gres:gpu:2 "
)
CANCELLED = (
    "JobId=11 JobName=wrap JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=n2 "
    "BatchHost=n2 JOB_GRES=gpu:1   Nodes=n2 CPU_IDs=1 Mem=100 GRES= MinCPUsNode=1 "
)


def test_a_running_job_names_its_node_and_the_gpus_slurm_bound() -> None:
    job = parse_job(RUNNING)
    assert (job.id, job.state, job.node, job.gpus) == ("11", "RUNNING", "n2", "1")
    assert job.running and not job.waiting
    assert _bound(job.node, job.gpus) == ["n2/gpu1"]
    assert _bound("n1", "0-1,3") == ["n1/gpu0", "n1/gpu1", "n1/gpu3"]


def test_a_waiting_job_gives_slurms_reason() -> None:
    job = parse_job(PENDING)
    assert job.waiting and not job.running
    assert (job.reason, job.node, job.gpus) == ("Priority", "", "")


def test_an_ended_job_gives_its_signal() -> None:
    job = parse_job(CANCELLED)
    assert not job.waiting and not job.running
    assert (job.state, job.exit_code, job.signal, job.gpus) == ("CANCELLED", 0, 15, "")


def test_nodes_with_gpus_address_and_state() -> None:
    nodes = [parse_node(line) for line in (DATA / "nodes.txt").read_text().splitlines()]
    assert [(n.name, n.address, n.cpus, n.memory_bytes) for n in nodes] == [
        ("n1", "10.77.0.11", 2.0, 6000 * 1024**2),
        ("n2", "10.77.0.12", 2.0, 6000 * 1024**2),
    ]
    assert [g.uuid for g in nodes[0].gpus] == ["n1/gpu0", "n1/gpu1"]
    assert all(n.schedulable and n.state == "idle" for n in nodes)


def test_a_drained_node_takes_no_work_and_says_why() -> None:
    node = parse_node((DATA / "node_drained.txt").read_text())
    assert node.state == "drain+idle" and not node.schedulable
    assert node.reason.startswith("disk check [root@")


def test_gres_strings() -> None:
    assert gpu_gres("gpu:2") == (2, "gpu (Slurm GRES)")
    assert gpu_gres("gpu:a100:4(S:0-1)") == (4, "a100")
    assert gpu_gres("gpu:tesla:2,gpu:a100:1,mps:100") == (3, "a100")
    assert gpu_gres("(null)") == (0, "gpu (Slurm GRES)")


def test_values_with_spaces_stay_whole() -> None:
    record = fields("NodeName=n2 State=IDLE+DRAIN Reason=disk check [root@2026] Comment=a b")
    assert record["Reason"] == "disk check [root@2026]"
    assert record["Comment"] == "a b"
