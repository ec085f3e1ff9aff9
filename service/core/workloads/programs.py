"""The programs of a workspace, a job and a deployment: JupyterLab, the job's own
command, and each replica of a deployment (its command, serving HTTP on ``$PORT``).

These are a resource's main process (clusters come from
:mod:`service.engines`); this is the one place their command lines are made.
"""

from __future__ import annotations

from service.engines.base import BIND_HOST, PYTHON, Launch, PlannedProcess

JUPYTER = "jupyter"
JOB = "job"
REPLICA = "replica"  # a deployment's replica: its role, and its port's name


def launch(
    planned: PlannedProcess, ports: dict[str, int], jupyter_token: str, path: str = ""
) -> Launch:
    """JupyterLab on its port under ``path`` (where the control plane relays it; its
    token in ``JUPYTER_TOKEN``, its folder the process's home), or the job's command:
    an argv list, or a string run by ``sh -c``."""
    if planned.role == JUPYTER:
        port = ports[JUPYTER]
        argv = [PYTHON, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={BIND_HOST}"]
        argv += [f"--ServerApp.port={port}", "--ServerApp.root_dir=.", "--allow-root"]
        argv += [f"--ServerApp.base_url={path}/"]
        env = {"JUPYTER_TOKEN": jupyter_token, "TITAN_JUPYTER_PATH": f"{path}/"}
        return Launch(argv, env, ready_port=port, published=(port,), telemetry=JUPYTER, home=True)
    shell = planned.args.get("shell")
    argv = ["/bin/sh", "-c", shell] if isinstance(shell, str) else list(planned.args["argv"])
    if planned.role == REPLICA:  # serves on $PORT; the health checker says when it is up
        port = ports[REPLICA]
        return Launch(argv, {"PORT": str(port)}, published=(port,))
    return Launch(argv)


def endpoints(planned: PlannedProcess, ports: dict[str, int], host: str) -> dict[str, str]:
    """Where JupyterLab or a replica listens (the API shows the front door instead);
    nothing for a job."""
    if planned.role in (JUPYTER, REPLICA):
        return {planned.role: f"http://{host}:{ports[planned.role]}/"}
    return {}
