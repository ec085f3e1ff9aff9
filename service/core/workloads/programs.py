"""The programs of a workspace and a job: JupyterLab, and the job's own command.

These are a resource's main process (clusters come from
:mod:`service.engines`); this is the one place their command lines are made.
"""

from __future__ import annotations

from service.engines.base import BIND_HOST, PYTHON, Launch, PlannedProcess

JUPYTER = "jupyter"
JOB = "job"


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
    return Launch(argv)


def endpoints(planned: PlannedProcess, ports: dict[str, int], host: str) -> dict[str, str]:
    """Where JupyterLab listens (the API shows its front door instead); nothing for a job."""
    if planned.role == JUPYTER:
        return {JUPYTER: f"http://{host}:{ports[JUPYTER]}/"}
    return {}
