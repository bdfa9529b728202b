"""Access control: open on localhost, a login everywhere else.

The app binds to 127.0.0.1 by default and then needs no login (only this machine's users can reach
it). Bound to any other address (``--address 0.0.0.0``, the Docker image), every page asks for
either

* an OpenID Connect login through ``st.login`` when ``.streamlit/secrets.toml`` has an ``[auth]``
  section (Streamlit's own format: ``redirect_uri``, ``cookie_secret``, ``client_id``,
  ``client_secret``, ``server_metadata_url``), optionally restricted to ``[qmlapp] allowed_emails``;
* or a shared password: ``[qmlapp] password`` in the secrets file, or ``QMLAPP_PASSWORD``.

With neither configured, ``python -m qmlapp serve`` generates a password and prints it (as Jupyter
does with its token), so a bare ``docker run`` is never open to the network.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from qmlapp.access import LOGIN_LIMITER, SESSIONS, AccessPolicy, check_password, policy

_TOKEN_KEY = "qmlapp_auth_token"
log = logging.getLogger("qmlapp.access")
P = ParamSpec("P")
R = TypeVar("R")


def _secrets() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets.toml anywhere: nothing configured
        return {}


def current_policy() -> AccessPolicy:
    return policy(st.get_option("server.address"), _secrets(), os.environ)


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _client() -> str:
    """The visitor's address for the login limiter and the log (behind a proxy: the proxy's)."""
    try:
        ip = st.context.ip_address
    except Exception:
        ip = None
    return ip if isinstance(ip, str) and ip else "unknown"  # none known (a test harness): one shared bucket


def _logged_in() -> bool:
    return SESSIONS.valid(st.session_state.get(_TOKEN_KEY), _session_id())


def _log_out() -> None:
    """Revoke server-side: this session id and its token stop working, whatever its browser sends later."""
    SESSIONS.revoke(st.session_state.pop(_TOKEN_KEY, None), _session_id())


def _oidc_log_out() -> None:
    _log_out()
    st.logout()


def _refuse_revoked() -> None:
    if SESSIONS.is_revoked(_session_id()):
        st.info("You logged out. Reload the page to log in again.")
        st.stop()


def require_login() -> None:
    """Call first on every page: stops the script unless the visitor may see the app."""
    pol = current_policy()
    if not pol.required:
        return
    _refuse_revoked()
    if pol.oidc:
        _oidc_gate(pol)
    elif pol.password:
        if not _logged_in():
            _password_gate(pol.password)
        st.sidebar.button("Log out", key="qmlapp_logout", on_click=_log_out)
    else:
        st.error("This app is reachable from the network, so it needs a login, but none is configured: set "
                 "`QMLAPP_PASSWORD`, add `[qmlapp] password` or an `[auth]` (OpenID Connect) section to "
                 "`.streamlit/secrets.toml`, or bind to 127.0.0.1.")
        st.stop()


def require_session() -> None:
    """For fragments, which rerun without the page around them: stop unless this session is still in."""
    pol = current_policy()
    if not pol.required:
        return
    if SESSIONS.is_revoked(_session_id()) or (pol.oidc and not st.user.is_logged_in) or \
            (not pol.oidc and not _logged_in()):
        st.stop()


def guarded(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Wrap a fragment body so that every rerun of it checks the session first, and shows a database
    failure as one sentence (see :func:`run_page`); the wrapper then returns None."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        require_session()
        return _database_errors_shown(fn, *args, **kwargs)
    return wrapper


def _database_errors_shown(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from db import StorageError

    try:
        return fn(*args, **kwargs)
    except StorageError as exc:  # read-only, full or unreachable database: say so, no server stack
        log.warning("page %s: %s", getattr(fn, "__name__", fn), exc)
        st.error(f"The run database cannot be used right now: {exc}", icon=":material/database:")
        return None


def run_page(page: Callable[[], Any]) -> None:
    """Every page's body, after :func:`setup_page`: a database failure shows as one sentence."""
    _database_errors_shown(page)


def _password_gate(expected: str) -> None:
    st.title("QML Explorer")
    st.caption("This server is reachable from the network; log in to continue.")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        client = _client()
        # Process-wide: counted before the password is compared, so parallel guesses hit the limit too.
        wait = LOGIN_LIMITER.begin(client)
        if wait > 0:
            log.warning("login refused for %s: too many failed attempts (locked for %.0f s)", client, wait)
            st.error(f"Too many failed logins; try again in {wait / 60:.0f} min." if wait >= 60 else
                     f"Too many failed logins; try again in {wait:.0f} s.")
            st.stop()
        if check_password(given, expected):
            LOGIN_LIMITER.succeeded(client)
            st.session_state[_TOKEN_KEY] = SESSIONS.issue(_session_id())
            st.rerun()
        log.warning("failed login from %s (%d recent failures)", client, LOGIN_LIMITER.failures(client))
        time.sleep(0.5)  # slows a single client's guessing down further
        st.error("Password: wrong password.")
    st.stop()


def _oidc_gate(pol: AccessPolicy) -> None:
    user = st.user
    if not user.is_logged_in:
        st.title("QML Explorer")
        st.caption("This server is reachable from the network; log in to continue.")
        st.button("Log in", type="primary", on_click=st.login)
        st.stop()
    email = str(user.get("email") or "").lower()
    if pol.allowed_emails and email not in pol.allowed_emails:
        st.error(f"{email or 'This account'} is not allowed on this server (`[qmlapp] allowed_emails`).")
        st.button("Log out", on_click=_oidc_log_out)
        st.stop()
    st.sidebar.button("Log out", key="qmlapp_logout", on_click=_oidc_log_out)


def setup_page(title: str, icon: str) -> None:
    """Every page's first call: page config, then the login gate."""
    st.set_page_config(page_title=title, page_icon=icon, layout="wide")
    require_login()
