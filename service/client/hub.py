"""``AsyncHub`` and ``Hub``: the Titan API from Python, async and sync.

``AsyncHub`` is the one implementation: every API area (resources, accounts,
sharing, monitoring) is a set of coroutines over one kept-open connection
pool. ``Hub`` is its sync face: each of its methods is the async method of the
same name run on the client's own event loop (:mod:`service.client.sync`),
with the same parameters, answer and docstring.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from service.client.accounts import Accounts
from service.client.monitoring import Monitoring
from service.client.resources import FAILED, UP, ResourceRef, Resources
from service.client.runs import Runs
from service.client.sharing import Sharing
from service.client.sync import LOOP, blocking

__all__ = ["FAILED", "UP", "AsyncHub", "Hub", "ResourceRef"]


class AsyncHub(Resources, Runs, Accounts, Sharing, Monitoring):
    """Asynchronous client. Without arguments it uses ``TITAN_URL``/``TITAN_TOKEN``, the
    saved login, or the local server's URL and admin token file.

    Connections are kept open between calls; ``await hub.aclose()`` (or
    ``async with AsyncHub() as hub:``) closes them.
    """


class Hub:
    """Synchronous client: every method of :class:`AsyncHub`, blocking.

    Without arguments it uses ``TITAN_URL``/``TITAN_TOKEN``, the saved login, or
    the local server's URL and admin token file. Connections are kept open
    between calls; ``close()`` (or ``with Hub() as hub:``) closes them.
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30):
        self._async = AsyncHub(url, token, timeout)

    @property
    def url(self) -> str:
        """The server's URL."""
        return self._async.url

    @property
    def token(self) -> str | None:
        """The token sent with every call (None: none)."""
        return self._async.token

    @token.setter
    def token(self, token: str | None) -> None:
        self._async.token = token

    @property
    def timeout(self) -> float:
        """Seconds a call may take."""
        return self._async.timeout

    @property
    def headers(self) -> dict[str, str]:
        """The authorization header of the token (none without a token)."""
        return self._async.headers

    def close(self) -> None:
        """Close the open connections; the next call opens new ones."""
        LOOP.run(self._async.aclose())

    def __del__(self) -> None:
        # A client dropped without close() still gives its connections back.
        if hasattr(self, "_async"):
            LOOP.close_soon(self._async.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Each line below is AsyncHub's method of that name, blocking
    # (tests/unit/test_client.py checks that none is missing).
    send = blocking(AsyncHub.send)
    send_json = blocking(AsyncHub.send_json)
    download = blocking(AsyncHub.download)
    healthy = blocking(AsyncHub.healthy)
    # resources
    apply = blocking(AsyncHub.apply)
    plan = blocking(AsyncHub.plan)
    import_saturn = blocking(AsyncHub.import_saturn)
    list = blocking(AsyncHub.list)
    get = blocking(AsyncHub.get)
    start = blocking(AsyncHub.start)
    stop = blocking(AsyncHub.stop)
    delete = blocking(AsyncHub.delete)
    rollback = blocking(AsyncHub.rollback)
    recipe = blocking(AsyncHub.recipe)
    editable_recipe = blocking(AsyncHub.editable_recipe)
    edit = blocking(AsyncHub.edit)
    history = blocking(AsyncHub.history)
    logs = blocking(AsyncHub.logs)
    outputs = blocking(AsyncHub.outputs)
    download_output = blocking(AsyncHub.download_output)
    credentials = blocking(AsyncHub.credentials)
    cluster_security = blocking(AsyncHub.cluster_security)
    wait = blocking(AsyncHub.wait)
    wait_gone = blocking(AsyncHub.wait_gone)
    # runs of jobs
    runs = blocking(AsyncHub.runs)
    job_run = blocking(AsyncHub.job_run)
    run = blocking(AsyncHub.run)
    # accounts
    me = blocking(AsyncHub.me)
    users = blocking(AsyncHub.users)
    create_user = blocking(AsyncHub.create_user)
    disable_user = blocking(AsyncHub.disable_user)
    enable_user = blocking(AsyncHub.enable_user)
    delete_user = blocking(AsyncHub.delete_user)
    tokens = blocking(AsyncHub.tokens)
    create_token = blocking(AsyncHub.create_token)
    revoke_token = blocking(AsyncHub.revoke_token)
    # sharing
    groups = blocking(AsyncHub.groups)
    group = blocking(AsyncHub.group)
    create_group = blocking(AsyncHub.create_group)
    delete_group = blocking(AsyncHub.delete_group)
    add_member = blocking(AsyncHub.add_member)
    remove_member = blocking(AsyncHub.remove_member)
    quotas = blocking(AsyncHub.quotas)
    quota = blocking(AsyncHub.quota)
    set_quota = blocking(AsyncHub.set_quota)
    delete_quota = blocking(AsyncHub.delete_quota)
    secrets = blocking(AsyncHub.secrets)
    create_secret = blocking(AsyncHub.create_secret)
    rotate_secret = blocking(AsyncHub.rotate_secret)
    delete_secret = blocking(AsyncHub.delete_secret)
    reencrypt_secrets = blocking(AsyncHub.reencrypt_secrets)
    folders = blocking(AsyncHub.folders)
    create_folder = blocking(AsyncHub.create_folder)
    delete_folder = blocking(AsyncHub.delete_folder)
    images = blocking(AsyncHub.images)
    register_image = blocking(AsyncHub.register_image)
    delete_image = blocking(AsyncHub.delete_image)
    # monitoring
    nodes = blocking(AsyncHub.nodes)
    telemetry = blocking(AsyncHub.telemetry)
    current = blocking(AsyncHub.current)
    metric_names = blocking(AsyncHub.metric_names)
    alerts = blocking(AsyncHub.alerts)
    alert_rules = blocking(AsyncHub.alert_rules)
    put_alert_rule = blocking(AsyncHub.put_alert_rule)
    delete_alert_rule = blocking(AsyncHub.delete_alert_rule)
    reclaims = blocking(AsyncHub.reclaims)
    usage = blocking(AsyncHub.usage)
    audit = blocking(AsyncHub.audit)
