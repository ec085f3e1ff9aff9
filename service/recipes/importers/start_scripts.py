"""Start-script lines that install pip packages and clone git repositories, made only
from values that are safe to hand to a shell.

A value goes into a line only if it matches a strict pattern (a pip requirement of a
name, extras and version specifiers; an ``https`` URL without credentials; a relative
path; a branch, tag or commit name), and even then every value is shell-quoted with
:func:`shlex.quote`. Anything else is refused by the caller with the reason these
functions give: nothing a document says is ever run as shell text.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from urllib.parse import urlsplit

# name[extra,...] then version specifiers (PEP 508 without URLs or markers), e.g.
# "xgboost", "dask[dataframe]>=2024.1,<2025", "torch==2.3.1+cpu".
_VERSION = r"(?:===|==|!=|~=|>=|<=|<|>)[A-Za-z0-9.*+!]{1,64}"
PIP_REQUIREMENT = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"
    r"(?:\[[A-Za-z0-9._-]{1,64}(?:,[A-Za-z0-9._-]{1,64}){0,15}\])?"
    rf"(?:{_VERSION}(?:,{_VERSION}){{0,7}})?\Z"
)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+\Z")
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,1000}\Z")
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}\Z")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}\Z")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}\Z")
# git's scp-like SSH form, user@host.name:path (a suggestion of its https form is made).
_SCP_LIKE = re.compile(
    r"(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+):([A-Za-z0-9._~/-]+)\Z"
)

REQUIREMENT_FORM = "name[extras] and version specifiers only, e.g. 'dask[dataframe]>=2024.1'"


def pip_line(requirements: list[str]) -> str:
    """``pip install`` of ``requirements`` (each matching PIP_REQUIREMENT) into the
    processes' own Python, quoted."""
    quoted = " ".join(shlex.quote(r) for r in requirements)
    return f'"$TITAN_PYTHON" -m pip install --no-input --disable-pip-version-check -- {quoted}'


def unsafe_requirements(requirements: list[str]) -> list[str]:
    """Those of ``requirements`` that are not a plain requirement (a URL, an option, a
    path, shell text, an environment marker)."""
    return [r for r in requirements if not PIP_REQUIREMENT.match(r)]


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements.txt text: one per line, blank lines and
    ``#`` comments left out (anything else on a line stays, to be judged)."""
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be cloned by a start script (None: it may): only ``https``
    URLs of a named host, with no credentials, query or fragment."""
    scp = _SCP_LIKE.match(url)
    if scp:
        host, path = scp.groups()
        return (
            "an SSH URL needs a key in every process; give the https URL of a public "
            f"repository instead (https://{host}/{path.lstrip('/')}), or bake the code "
            "into an image"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme != "https":
        return f"only https URLs are cloned (got {parts.scheme or 'no'} scheme)"
    if "@" in parts.netloc:
        return "the URL holds credentials, which a recipe must not; use a public repository"
    if not parts.hostname or not _HOST.match(parts.hostname) or port == 0:
        return "the URL names no plain host name"
    if parts.query or parts.fragment or not _URL_PATH.match(parts.path) or "/../" in parts.path:
        return "the URL's path must be a plain repository path, with no query or fragment"
    return None


def clone_folder(path: str | None, url: str, base: str) -> tuple[str | None, str]:
    """Where to clone ``url``, relative to the folder a process starts in (which stands
    for Saturn's working directory ``base``): ``(folder, "")`` or ``(None, why not)``.
    No ``path``: the repository's own name, as ``git clone`` would."""
    if path is None:
        name = PurePosixPath(urlsplit(url).path).name.removesuffix(".git")
        return (name, "") if _SEGMENT.match(name) else (None, "the URL names no folder")
    relative = path
    if path.startswith("/"):
        inside = PurePosixPath(path).is_relative_to(base)
        if not inside or PurePosixPath(path) == PurePosixPath(base):
            return None, f"Titan clones only into a folder under the working directory {base}"
        relative = str(PurePosixPath(path).relative_to(base))
    parts = relative.strip("/").split("/")
    if not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts) or len(relative) > 1024:
        return None, "the path must be plain folder names (letters, digits, '.', '_', '-')"
    return "/".join(parts), ""


def reference_problem(kind: str, reference: str) -> str | None:
    """Why ``reference`` cannot be checked out as a ``kind`` (commit, branch, tag)."""
    if kind == "commit":
        return None if _COMMIT.match(reference) else "a commit is 7 to 40 hex digits"
    if kind not in ("branch", "tag"):
        return "reference_type is commit, branch or tag"
    if not _REF.match(reference) or ".." in reference or reference.endswith((".lock", "/")):
        return "not a plain branch or tag name"
    return None


def git_line(url: str, folder: str, kind: str, reference: str | None, reclone: bool) -> str:
    """Clone ``url`` into ``folder`` at ``reference`` unless it is there already (or
    afresh each start with ``reclone``); every value quoted."""
    where, source = shlex.quote(folder), shlex.quote(url)
    if reference is not None and kind == "commit":
        sha = shlex.quote(reference)
        clone = f"{{ git clone -- {source} {where} && git -C {where} checkout {sha}; }}"
    elif reference is not None:
        clone = f"git clone --branch {shlex.quote(reference)} -- {source} {where}"
    else:
        clone = f"git clone -- {source} {where}"
    if reclone:
        return f"rm -rf -- {where} && {clone}"
    return f"[ -d {shlex.quote(folder + '/.git')} ] || {clone}"
