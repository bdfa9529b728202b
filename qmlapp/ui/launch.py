"""How ``qmlapp serve`` starts Streamlit: ``python -m qmlapp.ui.launch APP.py [streamlit run options]``.

Before Streamlit's own ``run`` this installs what a plain ``streamlit run`` lacks:

* every HTTP request and ``/_stcore/stream`` websocket whose ``Host`` or ``Origin`` is not this app's
  own address is answered 403 (DNS rebinding, pages of other sites or of other local ports); the
  names allowed are :class:`qmlapp.access.HostPolicy` plus ``QMLAPP_ALLOWED_HOSTS``;
* no request to an external IP-lookup service (Streamlit asks one for the "External URL" it prints
  when bound to all interfaces, and in its CORS check): start-up makes no outbound connection;
* a generated password arrives in a 0600 file (``QMLAPP_PASSWORD_FILE``) that is read and deleted
  here, so that it never sits in an environment a child process could inherit.

Streamlit 1.67 serves through Starlette/uvicorn; the check is an ASGI middleware placed first in the
stack that ``starlette_app.create_streamlit_middleware`` builds.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from qmlapp.access import ALLOWED_HOSTS_ENV, HostPolicy, set_generated_password, take_password_file

log = logging.getLogger("qmlapp.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class HostOriginGuard:
    """ASGI middleware: refuse (403) HTTP requests and websockets from a foreign Host or Origin."""

    def __init__(self, app: ASGIApp, policy: HostPolicy | None = None) -> None:
        self.app = app
        self._policy = policy

    @property
    def policy(self) -> HostPolicy:
        if self._policy is None:  # built on first use: the address is final once the server runs
            from streamlit import config

            self._policy = HostPolicy.build(config.get_option("server.address"), os.environ.get(ALLOWED_HOSTS_ENV))
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host, origin = _header(scope, b"host"), _header(scope, b"origin")
        if self.policy.host_allowed(host) and self.policy.origin_allowed(origin, host):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        log.warning("refused %s %s from %s: Host %r, Origin %r is not this app (QMLAPP_ALLOWED_HOSTS adds "
                    "names)", scope["type"], scope.get("path"), client[0], host, origin)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect; closing before accepting answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"Forbidden: this server does not answer to that Host or Origin.\n"
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _no_external_ip() -> None:
    """Replaces ``streamlit.net_util.get_external_ip``: never ask a third-party service for our IP."""
    return None


def install() -> None:
    """Patch Streamlit (this process only) before it builds its server."""
    from starlette.middleware import Middleware
    from streamlit import net_util
    from streamlit.web.server.starlette import starlette_app

    net_util.get_external_ip = _no_external_ip
    original = starlette_app.create_streamlit_middleware
    if getattr(original, "_qmlapp_guarded", False):
        return

    def create_streamlit_middleware() -> list[Middleware]:
        return [Middleware(HostOriginGuard), *original()]  # first = outermost: before any route runs

    create_streamlit_middleware._qmlapp_guarded = True  # type: ignore[attr-defined]  # marks the patch: see getattr above
    starlette_app.create_streamlit_middleware = create_streamlit_middleware


def main(argv: list[str] | None = None) -> None:
    set_generated_password(take_password_file(os.environ))
    install()
    from streamlit.web import cli as stcli

    stcli.main(["run", *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    main()
