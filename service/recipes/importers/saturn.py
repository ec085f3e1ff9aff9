"""Saturn Cloud recipes converted into Titan recipes, with a report on every field.

:func:`convert` reads a Saturn resource recipe of either schema (see
:mod:`service.recipes.importers.saturn_document` for the schemas and their sources)
and writes the Titan recipes it amounts to: a workspace (with its ``dask_cluster``),
a job (with its ``dask_cluster``) or a deployment (through
:mod:`~service.recipes.importers.saturn_deployment`; its Dask cluster becomes a
standalone cluster, as Titan deployments attach none). Each Saturn field is reported as

- **kept**: the same value in a Titan field;
- **translated**: a Titan value made from it (sizes through the operator's table
  ``TITAN_SATURN_INSTANCE_TYPES``; a job's schedule, concurrency policy and retries
  through :mod:`~service.recipes.importers.saturn_job`; a deployment's command, replicas,
  routes and health check through :mod:`~service.recipes.importers.saturn_deployment`;
  ``extra_packages`` pip requirements and
  ``git_repositories`` as lines of the start script, only where they are safe);
- **dropped**: Saturn bookkeeping or a hint that changes nothing the resource does
  in Titan (tags, disk size, spot instances, Saturn's image and owner), or a value
  that asks for what Titan does anyway (``start_ssh: false``);
- **refused**: behaviour Titan cannot give (SSH, RStudio, conda and apt packages,
  an unmapped size, a deployment's viewers or second route). Refused fields are an
  error naming each of them, unless ``lenient``: then they are dropped, their
  reason kept in the report.

Every recipe returned has passed Titan's own validation (``parse_recipe``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.json_values import join_path, quoted, shown
from service.recipes.importers import saturn_attachments as attachments
from service.recipes.importers import saturn_deployment as deployment
from service.recipes.importers import saturn_job as job
from service.recipes.importers import start_scripts as scripts
from service.recipes.importers.draft import Draft
from service.recipes.importers.report import Conversion, Row
from service.recipes.importers.saturn_document import (
    DEFAULT_WORKING_DIRECTORY,
    SATURN_HOME,
    SaturnDocument,
    SaturnField,
    read_saturn,
)
from service.recipes.models import DNS_LABEL, RecipeInvalid, parse_recipe

# Values asking for what Titan does anyway: dropped, saying so.
SAME_AS_TITAN: dict[str, tuple[Any, str]] = {
    "start_ssh": (False, "no SSH server: Titan runs none either"),
    "self_destruct": (False, "kept when stopped, as Titan does"),
    "start_dind": (False, "no Docker inside: Titan runs none either"),
    "ide": ("jupyter", "JupyterLab, which Titan's workspaces run"),
    "scale": (1, "one copy, as Titan runs"),  # a deployment's is kept instead
    "instance_count": (1, "one copy, as Titan runs"),
    "retries": (0, "no retries, as Titan's default"),
    "public": (False, "not public: nothing of Titan's is"),
}
# Behaviour Titan cannot give, whatever the value.
CANNOT: dict[str, str] = {
    "start_ssh": "Titan runs no SSH server in a resource; use JupyterLab's terminal",
    "self_destruct": "Titan keeps a stopped resource until you delete it (titan delete)",
    "start_dind": "Titan runs no Docker inside a resource",
    "ide": "Titan workspaces run JupyterLab only",
    "config_files": "Titan writes no config files into a resource; put them in the image, "
    "a shared folder or a secret file",
    "second_section": "one resource per recipe: Titan converts the first section; convert "
    "the others from a copy of the file holding only them",
    "section": "a resource section is an object",
}
# Saturn bookkeeping, or what Titan has its own way for: dropped, saying what applies.
SATURN_ONLY: dict[str, str] = {
    "owner": 'Saturn\'s owner; the Titan recipe belongs to whoever applies it (add "owner" '
    "to give it to a Titan group)",
    "tags": "Titan recipes have no tags",
    "disk_space": "Titan sets no disk size: files live on the node's disk (a workspace's "
    "home survives restarts)",
    "use_spot_instance": "Titan runs on your own machines: there are no spot instances",
    "status": "Saturn's running state; applying a Titan recipe starts the resource "
    "(titan stop stops it)",
    "state": "Saturn's record of the running resource (id, status, URL); Titan keeps its own",
    "token_scope": "Titan gives every process a token that acts only for its own resource "
    "(TITAN_TOKEN)",
    "visibility": "who may clone the recipe in Saturn's UI; Titan recipes are files you share",
}
AUTO_SHUTOFF = {"1 hour": "1h", "6 hours": "6h", "24 hours": "24h", "3 days": "3d",
                "7 days": "7d", "never": "never"}  # fmt: skip
REQUIRED = ("name", "command", "type", "schema_version")
SCRIPT_FIELDS = "extra_packages and git_repositories"


@dataclass
class _Converting:
    """One conversion under way: the drafts, the operator's tables, the script lines."""

    document: SaturnDocument
    draft: Draft
    sizes: Mapping[str, str]
    catalog: Mapping[str, attachments.Size]
    cluster: Draft  # a deployment's Dask cluster, standing alone
    script: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        """Saturn's working directory, under which repositories are cloned."""
        value = self.document.value("working_directory")
        return value if isinstance(value, str) and value else DEFAULT_WORKING_DIRECTORY


def convert(
    document: Any,
    instance_types: Mapping[str, str],
    catalog: Mapping[str, attachments.Size],
    lenient: bool = False,
) -> Conversion:
    """The Titan recipes ``document`` (a Saturn recipe, either schema) amounts to, and a
    report row for each of its fields. ``instance_types`` maps Saturn sizes to Titan
    instance types of ``catalog``. Raises ImportRefused naming every refused field
    (unless ``lenient``: dropped) and every field no flag can fix (no name, a job
    without a command); RecipeInvalid if it is no Saturn resource recipe at all.
    """
    saturn = read_saturn(document)
    main = Draft(saturn.kind, lenient, catalog)
    work = _Converting(saturn, main, instance_types, catalog, main.beside("cluster", "cluster:"))
    # Handled in HANDLERS' order (variables before the secrets that must not clash with
    # them), reported in the document's.
    order = {name: index for index, name in enumerate(HANDLERS)}
    written: dict[int, tuple[list[Row], list[dict[str, Any]]]] = {}
    for place, item in sorted(enumerate(saturn.fields), key=lambda f: order.get(f[1].name, 99)):
        rows, problems = len(main.rows), len(main.problems)
        _one(work, item)
        written[place] = main.rows[rows:], main.problems[problems:]
    main.rows[:] = [row for place in sorted(written) for row in written[place][0]]
    main.problems[:] = [found for place in sorted(written) for found in written[place][1]]
    return _finish(work)


def _one(work: _Converting, item: SaturnField) -> None:
    draft, value = work.draft, item.value
    if item.name not in REQUIRED and value in (None, "", [], {}):
        draft.drop(item.path, "empty")
    elif (
        item.name in SAME_AS_TITAN
        and _same(SAME_AS_TITAN[item.name][0], value)
        and not (draft.kind == "deployment" and item.name in deployment.FIELDS)
    ):
        draft.drop(item.path, SAME_AS_TITAN[item.name][1])
    elif item.name in CANNOT:
        draft.refuse(item.path, CANNOT[item.name], value)
    elif item.name in SATURN_ONLY:
        draft.drop(item.path, SATURN_ONLY[item.name])
    elif item.name in HANDLERS:
        HANDLERS[item.name](work, item)
    else:
        draft.refuse(
            item.path, "not a field of Saturn recipes Titan knows; check the spelling", value
        )


def _same(wanted: Any, value: Any) -> bool:
    """``value`` is ``wanted``, of its type too (``true`` is no ``1``)."""
    return type(value) is type(wanted) and value == wanted


def said(value: Any) -> str:
    """``value`` as a report may echo it: quoted, cut, control characters escaped, and
    never raising (an integer of 5,000 digits included)."""
    return quoted(str(shown(value)))


def _schema_version(work: _Converting, item: SaturnField) -> None:
    work.draft.translate(
        item.path,
        ("schema_version",),
        1,
        f"Saturn schema {said(item.value)}; Titan's recipes are schema 1",
    )


def _type(work: _Converting, item: SaturnField) -> None:
    draft = work.draft
    if item.value == "rstudio_server":
        draft.refuse(item.path, "Titan workspaces run JupyterLab, not RStudio", item.value)
    elif item.value == "jupyter_server":
        draft.translate(
            item.path, ("type",), "workspace", "a Saturn Jupyter server is a Titan workspace"
        )
    else:
        draft.keep(item.path, ("type",), draft.kind)


def _name(work: _Converting, item: SaturnField) -> None:
    value = item.value
    label = value.lower().strip("-") if isinstance(value, str) else ""
    if (
        not isinstance(value, str)
        or not DNS_LABEL.match(label)
        or not label.replace("-", "").isalnum()
    ):
        work.draft.invalid(
            item.path,
            "Titan names are DNS labels (1-63 of a-z, 0-9 and '-'); rename it in the file",
            value,
        )
    elif label == value:
        work.draft.keep(item.path, ("name",), label)
    else:
        work.draft.translate(item.path, ("name",), label, "Titan names are lower-case DNS labels")


def _checked(
    work: _Converting, item: SaturnField, key: str, why: str = "the same in Titan"
) -> None:
    """Keep ``item`` as ``spec.key`` if Titan's validation takes it, else refuse it."""
    problem = work.draft.titan_problem({key: item.value})
    if problem is not None:
        work.draft.refuse(item.path, problem, item.value)
    else:
        work.draft.keep(item.path, ("spec", key), item.value, why)


def _description(work: _Converting, item: SaturnField) -> None:
    try:
        parse_recipe({"type": "cluster", "name": "x", "description": item.value})
    except RecipeInvalid as exc:
        work.draft.refuse(item.path, exc.problems[0]["message"], item.value)
        return
    work.draft.keep(item.path, ("description",), item.value)


def _command(work: _Converting, item: SaturnField) -> None:
    if work.draft.kind == "deployment":
        deployment.command(work.draft, item, work.document)
        return
    if work.draft.kind != "job":
        work.draft.refuse(item.path, "a Titan workspace runs JupyterLab, not a command", item.value)
        return
    problem = work.draft.titan_problem({"command": item.value})
    if problem is not None:
        work.draft.invalid(item.path, problem, item.value)
    else:
        why = "the same command, run by the shell" + job.unsaid_retries(work.document)
        work.draft.keep(item.path, ("spec", "command"), item.value, why)


def _instance_type(work: _Converting, item: SaturnField) -> None:
    name = attachments.titan_size(work.draft, work.sizes, item.path, item.value)
    if name is not None:
        size = quoted(str(item.value))
        why = f"Saturn size {size} is Titan's {quoted(name)} ({attachments.SIZES_SETTING})"
        work.draft.translate(item.path, ("spec", "instance_type"), name, why)


def _auto_shutoff(work: _Converting, item: SaturnField) -> None:
    value = item.value
    titan = AUTO_SHUTOFF.get(value.strip().lower()) if isinstance(value, str) else None
    if titan is None:
        work.draft.refuse(
            item.path, f"not one of Saturn's choices ({', '.join(AUTO_SHUTOFF)})", value
        )
    else:
        work.draft.translate(
            item.path, ("spec", "auto_shutoff"), titan, "stopped after this long idle"
        )


def _working_directory(work: _Converting, item: SaturnField) -> None:
    value = item.value
    if isinstance(value, str) and (value == SATURN_HOME or value.startswith(SATURN_HOME + "/")):
        work.draft.drop(
            item.path,
            "a folder of Saturn's home; each Titan process starts in its own folder (a "
            "workspace: its home), which stands for it: repositories under it are cloned there",
        )
    elif not isinstance(value, str) or not value.startswith("/"):
        work.draft.refuse(item.path, "a working directory is an absolute path", value)
    else:
        _checked(work, item, "working_directory", "it must exist where the processes run")


def _start_script(work: _Converting, item: SaturnField) -> None:
    _checked(work, item, "start_script", "run with sh -e before each process starts")


def _image(work: _Converting, item: SaturnField) -> None:
    value = item.value
    if isinstance(value, dict):  # {owner, name, version}, {name, version} or {uri}
        name = "/".join(str(shown(value[k])) for k in ("owner", "name", "uri") if k in value)
        value = f"{name}:{shown(value['version'])}" if "version" in value else name
    work.draft.drop(
        item.path,
        f"Saturn's image {said(value)} starts Saturn's way, not Titan's; Titan's own "
        "image applies (docker: build one FROM titan/cpu with what you need, then "
        "titan image register it and set spec.image)",
    )


def _extra_packages(work: _Converting, item: SaturnField) -> None:
    if not isinstance(item.value, dict):
        work.draft.refuse(item.path, "extra packages are an object by installer", item.value)
        return
    for manager, spec in item.value.items():
        path = join_path(item.path, manager)
        if manager == "pip":
            _pip(work, path, spec)
        elif manager == "conda":
            work.draft.refuse(
                path,
                "conda packages need conda in the image; bake them into an image instead",
                spec,
            )
        elif manager == "apt":
            work.draft.refuse(
                path, "apt packages need root in the process; bake them into an image instead", spec
            )
        elif manager in ("cran", "remotes", "bioconductor"):
            work.draft.refuse(
                path, "R packages: Titan runs no R server; bake them into an image", spec
            )
        else:
            attachments.unknown(
                work.draft, path, spec, ("pip", "conda", "apt", "cran", "remotes", "bioconductor")
            )


def _pip(work: _Converting, path: str, spec: Any) -> None:
    spec = {"install": spec} if isinstance(spec, str) else spec  # 2022.01: "pip": "lightgbm"
    if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
        work.draft.refuse(path, "pip packages are given as text", spec)
        return
    wanted: list[str] = []
    for key, text in spec.items():
        if key == "install":
            wanted += text.split()
        elif key == "requirements_txt":
            wanted += scripts.requirement_lines(text)
        else:
            attachments.unknown(
                work.draft, join_path(path, key), text, ("install", "requirements_txt")
            )
    unsafe = scripts.unsafe_requirements(wanted)
    if unsafe:
        shown = ", ".join(quoted(r, 40) for r in unsafe[:5])
        work.draft.refuse(
            path,
            f"not put in a start script: {shown} ({scripts.REQUIREMENT_FORM}); "
            "bake it into an image instead",
            spec,
        )
    elif wanted:
        work.script.append(scripts.pip_line(wanted))
        work.draft.note(
            path,
            "spec.start_script",
            f"start script: pip install {' '.join(wanted)} into the processes' Python "
            "($TITAN_PYTHON); an image with them baked in starts faster",
        )
    else:
        work.draft.drop(path, "empty")


GIT_FIELDS = ("url", "path", "public", "on_restart", "reference_type", "reference")


def _git_repositories(work: _Converting, item: SaturnField) -> None:
    if not isinstance(item.value, list):
        work.draft.refuse(item.path, "a list of repositories", item.value)
        return
    for index, repo in enumerate(item.value):
        path = f"{item.path}[{index}]"
        if not isinstance(repo, dict):
            work.draft.refuse(path, "a repository is an object", repo)
            continue
        for key in repo:
            if key not in GIT_FIELDS:
                attachments.unknown(work.draft, join_path(path, key), repo[key], GIT_FIELDS)
        _repository(work, path, repo)


def _repository(work: _Converting, path: str, repo: dict[str, Any]) -> None:
    url, reference = repo.get("url"), repo.get("reference")
    kind = repo.get("reference_type") or "branch"
    reclone = repo.get("on_restart") == "reclone"
    folder, problem = _clone_problem(work, repo)
    if problem or folder is None or not isinstance(url, str):
        work.draft.refuse(path, f"not cloned by a start script: {problem}", repo)
        return
    work.script.append(scripts.git_line(url, folder, str(kind), reference, reclone))
    at = f" at {kind} {reference}" if reference else ""
    again = "afresh at every start" if reclone else "unless already there"
    private = (
        "; a private one needs git credentials in the process"
        if repo.get("public") is False
        else ""
    )
    work.draft.note(
        path,
        "spec.start_script",
        f"start script: git clone {url}{at} into {folder} (in the starting folder), {again}"
        + private,
    )


def _clone_problem(work: _Converting, repo: dict[str, Any]) -> tuple[str | None, str]:
    """Where ``repo`` is cloned, or why it is not: ``(folder, "")`` or ``(None, why)``."""
    url, where = repo.get("url"), repo.get("path")
    kind, reference = repo.get("reference_type") or "branch", repo.get("reference")
    if not isinstance(url, str) or not (where is None or isinstance(where, str)):
        return None, "a repository has a url and a path, as text"
    problem = scripts.url_problem(url)
    if problem is not None:
        return None, problem
    folder, problem = scripts.clone_folder(where, url, work.base)
    if folder is None:
        return None, problem
    if not isinstance(kind, str):
        return None, "reference_type is commit, branch or tag"
    if reference is not None:
        if not isinstance(reference, str):
            return None, "the reference is text"
        problem = scripts.reference_problem(kind, reference) or ""
    if repo.get("on_restart", "preserve changes") not in ("preserve changes", "reclone", None):
        problem = "on_restart is 'preserve changes' or 'reclone'"
    return (None, problem) if problem else (folder, "")


def _dask_cluster(work: _Converting, item: SaturnField) -> None:
    if work.document.kind == "deployment":
        why = (
            "a cluster recipe of its own, as a Titan deployment attaches none: its replicas "
            "reach it by name (TitanCluster.from_name)"
        )
        work.cluster.note(item.path, "", why)
        attachments.dask_cluster(work.cluster, item, work.sizes, work.catalog, ("spec",))
    else:
        attachments.dask_cluster(
            work.draft, item, work.sizes, work.catalog, ("spec", "dask_cluster")
        )


HANDLERS: dict[str, Callable[[_Converting, SaturnField], None]] = {
    "schema_version": _schema_version,
    "type": _type,
    "name": _name,
    "description": _description,
    "command": _command,
    "instance_type": _instance_type,
    "auto_shutoff": _auto_shutoff,
    "environment_variables": lambda w, f: attachments.environment(w.draft, f),
    "secrets": lambda w, f: attachments.secrets(w.draft, f),
    "shared_folders": lambda w, f: attachments.shared_folders(w.draft, f),
    "working_directory": _working_directory,
    "image": _image,
    "dask_cluster": _dask_cluster,
    "schedule": lambda w, f: job.schedule(w.draft, f, w.document),
    "concurrency_policy": lambda w, f: job.concurrency_policy(w.draft, f),
    "retries": lambda w, f: job.retries(w.draft, f),
    "backoff_limit": lambda w, f: job.retries(w.draft, f),
    "start_script": _start_script,
    "extra_packages": _extra_packages,
    "git_repositories": _git_repositories,
    "scale": lambda w, f: deployment.scale(w.draft, f),
    "instance_count": lambda w, f: deployment.scale(w.draft, f),
    "routes": lambda w, f: deployment.routes(w.draft, f),
    "subdomain": lambda w, f: deployment.subdomain(w.draft, f),
    "public": lambda w, f: deployment.public(w.draft, f),
    "viewers": lambda w, f: deployment.viewers(w.draft, f),
    "healthcheck": lambda w, f: deployment.healthcheck(w.draft, f),
}


def _finish(work: _Converting) -> Conversion:
    draft, cluster = work.draft, work.cluster
    spec = draft.recipe["spec"]
    if work.document.value("name") is None:
        draft.invalid("name", "a Saturn recipe names its resource; add a name", None)
    if work.document.kind != "workspace" and work.document.value("command") is None:
        draft.invalid("command", f"a Saturn {work.document.kind} runs a command; add one", None)
    if work.script:
        own = spec.get("start_script")
        lines = [f"# from {SCRIPT_FIELDS} (titan import saturn)", *work.script]
        script = (own.rstrip("\n") + "\n" if own else "") + "\n".join(lines) + "\n"
        problem = draft.titan_problem({"start_script": script})
        if problem is not None:
            draft.invalid(SCRIPT_FIELDS, problem, None)
        spec["start_script"] = script
    recipes = [draft.document()]
    if "n_workers" in cluster.recipe["spec"] and "name" in draft.recipe:  # a deployment's
        cluster.recipe["name"] = f"{draft.recipe['name'][:58].rstrip('-')}-dask"
        recipes.append(cluster.document())
    draft.check()  # an incomplete recipe is not worth validating
    for recipe in recipes:
        try:
            parse_recipe(recipe, draft.catalog)
        except RecipeInvalid as exc:  # a conversion Titan would not take: never returned
            for found in exc.problems:
                draft.invalid(
                    f"(Titan {recipe['type']}) {found['path']}", found["message"], found["value"]
                )
    draft.check()
    return Conversion(recipes, draft.rows)
