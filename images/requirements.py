"""Print the pip requirements of a Titan image, read from pyproject.toml.

Usage (inside an image build): ``python3 requirements.py cpu|cuda pyproject.toml``.
Both images get the base dependencies plus the server, workers, dask, docker, postgres
and ray extras (the control plane runs from the same image; workspaces, Dask and Ray
clusters run in them); cuda adds the gpu extra and swaps the CPU-only XGBoost build for
the full one (device="cuda").
"""

import sys
import tomllib

kind, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as stream:
    project = tomllib.load(stream)["project"]
extras = project["optional-dependencies"]
wanted = ("server", "workers", "dask", "docker", "postgres", "ray")
requirements = [*project["dependencies"], *(r for extra in wanted for r in extras[extra])]
requirements = list(dict.fromkeys(requirements))  # an extra may repeat another's
if kind == "cuda":
    requirements = [r for r in requirements if not r.startswith("xgboost-cpu")]
    requirements += ["xgboost>=2.1", *extras["gpu"]]
print("\n".join(requirements))
