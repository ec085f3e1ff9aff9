"""Saturn Cloud recipes as they are written, both schemas read into one shape.

Saturn has written resource recipes in two shapes; the field names here follow them:

- **2021.11.10 to 2022.08.01** (the JSON Schema ``resources/schema.json`` of
  https://github.com/saturncloud/recipes and https://saturncloud.io/docs/using-saturn-cloud/recipes/):
  one flat object — ``name``, ``owner``, ``description``, ``image`` (``{owner, name,
  version}``) or ``image_uri``, ``working_directory``, ``extra_packages`` (``pip``,
  ``conda``, ``apt``, ``cran``, ``remotes``, ``bioconductor``), ``start_script``,
  ``environment_variables``, ``git_repositories``, ``secrets`` (``credentials`` before
  2022.04.01), ``shared_folders``, ``dask_cluster`` (``num_workers``, ``scheduler``,
  ``worker``), ``visibility``, ``schema_version`` (``version`` before 2022.01.31) — and
  one section naming the resource's kind: ``jupyter_server`` or ``rstudio_server``
  (``instance_type``, ``disk_space``, ``auto_shutoff``, ``start_ssh``,
  ``use_spot_instance``, ``self_destruct``, ``start_dind``, ``subdomain``), ``job``
  (``instance_type``, ``command``, ``schedule``, ``backoff_limit``,
  ``concurrency_policy``) or ``deployment`` (``instance_type``, ``command``,
  ``instance_count``, ``start_ssh``, ``subdomain``, ``public``).
- **2023 onwards, current 2025.10.01** (the ``Recipe``, ``WorkspaceSpec``,
  ``JobSpec``, ``DeploymentSpec`` and attachment models of Saturn's API client,
  https://github.com/saturncloud/saturn-api ``docs/*.md``): ``{"schema_version", "type":
  "workspace"|"job"|"deployment", "spec": {...}, "state": {...}}`` where ``spec`` holds
  the fields above flattened (``instance_type``, ``disk_space``, ``command`` beside
  ``name``) plus ``scale``, ``retries``, ``routes`` (``subdomain``, ``container_port``,
  ``visibility``), ``viewers``, ``tags``, ``ide``, ``config_files``, ``token_scope``,
  ``status``; ``owner`` and ``image`` may be a name or an object.

:func:`read_saturn` turns either into a :class:`SaturnDocument`: the resource's kind
and its fields, each with the name the converter handles it by and its path in the
user's document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.json_values import join_path
from service.recipes.models import RecipeInvalid
from service.recipes.problems import problem

# The 2022 sections naming a resource's kind, and the Titan-side kind each is read as.
SECTIONS = {
    "jupyter_server": "workspace",
    "rstudio_server": "workspace",
    "job": "job",
    "deployment": "deployment",
}
KINDS = ("workspace", "job", "deployment")
SATURN_HOME = "/home/jovyan"
DEFAULT_WORKING_DIRECTORY = "/home/jovyan/workspace"
# Names the reader gives to the document's envelope; a field of the same name inside spec
# or a section is no envelope, and is read as the unknown field it is.
ENVELOPE = ("type", "schema_version", "state", "section", "second_section")


def _inner(key: str) -> str:
    return f"inner {key}" if key in ENVELOPE else key


@dataclass(frozen=True)
class SaturnField:
    """One field of the document: ``name`` is what the converter knows it by,
    ``path`` where the user wrote it."""

    name: str
    path: str
    value: Any


@dataclass(frozen=True)
class SaturnDocument:
    """A Saturn resource recipe: its kind (workspace, job or deployment) and fields."""

    kind: str
    fields: tuple[SaturnField, ...]

    def value(self, name: str, default: Any = None) -> Any:
        """The value of the field named ``name``, or ``default``."""
        return next((f.value for f in self.fields if f.name == name), default)


def read_saturn(document: Any) -> SaturnDocument:
    """``document`` read as a Saturn recipe of either schema; RecipeInvalid where it is
    no Saturn resource recipe at all."""
    if not isinstance(document, dict):
        raise RecipeInvalid([problem("", "a Saturn recipe is a JSON object", document)])
    if "spec" in document or "type" in document:
        return _current(document)
    return _flat(document)


def _current(document: dict[str, Any]) -> SaturnDocument:
    kind, spec = document.get("type"), document.get("spec")
    if kind not in KINDS:
        raise RecipeInvalid(
            [
                problem(
                    "type", "a Saturn resource recipe's type is workspace, job or deployment", kind
                )
            ]
        )
    if not isinstance(spec, dict):
        raise RecipeInvalid([problem("spec", "a Saturn recipe's spec is a JSON object", spec)])
    fields = []
    for key, value in document.items():
        if key != "spec":
            fields.append(SaturnField(key, join_path("", key), value))
    fields.extend(SaturnField(_inner(k), join_path("spec", k), v) for k, v in spec.items())
    return SaturnDocument(str(kind), tuple(fields))


def _flat(document: dict[str, Any]) -> SaturnDocument:
    sections = [key for key in document if key in SECTIONS]
    if not sections:
        raise RecipeInvalid(
            [
                problem(
                    "",
                    "not a Saturn resource recipe: it has no type and spec (2023 onwards) and "
                    "no jupyter_server, rstudio_server, job or deployment section (2022)",
                    None,
                )
            ]
        )
    fields = []
    for key, value in document.items():
        if key == sections[0]:
            fields.append(SaturnField("type", key, key))
            if isinstance(value, dict):
                fields.extend(
                    SaturnField(_inner(k), join_path(key, k), v) for k, v in value.items()
                )
            else:
                fields.append(SaturnField("section", key, value))
        elif key in SECTIONS:
            fields.append(SaturnField("second_section", key, value))
        elif key == "version":  # schema_version's name before 2022.01.31
            fields.append(SaturnField("schema_version", key, value))
        elif key in ("image_uri", "credentials"):  # older names of image and secrets
            fields.append(SaturnField("image" if key == "image_uri" else "secrets", key, value))
        else:
            fields.append(SaturnField(key, join_path("", key), value))
    return SaturnDocument(SECTIONS[sections[0]], tuple(fields))
