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

import os
import time
from typing import Any

import streamlit as st

from qmlapp.access import AccessPolicy, check_password, policy

_SESSION_KEY = "qmlapp_authenticated"


def _secrets() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets.toml anywhere: nothing configured
        return {}


def current_policy() -> AccessPolicy:
    return policy(st.get_option("server.address"), _secrets(), os.environ)


def require_login() -> None:
    """Call first on every page: stops the script unless the visitor may see the app."""
    pol = current_policy()
    if not pol.required:
        return
    if pol.oidc:
        _oidc_gate(pol)
    elif pol.password:
        if not st.session_state.get(_SESSION_KEY):
            _password_gate(pol.password)
        st.sidebar.button("Log out", key="qmlapp_logout", on_click=st.session_state.pop, args=(_SESSION_KEY, None))
    else:
        st.error("This app is reachable from the network, so it needs a login, but none is configured: set "
                 "`QMLAPP_PASSWORD`, add `[qmlapp] password` or an `[auth]` (OpenID Connect) section to "
                 "`.streamlit/secrets.toml`, or bind to 127.0.0.1.")
        st.stop()


def _password_gate(expected: str) -> None:
    st.title("QML Explorer")
    st.caption("This server is reachable from the network; log in to continue.")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        if check_password(given, expected):
            st.session_state[_SESSION_KEY] = True
            st.rerun()
        time.sleep(1.0)  # slows guessing down
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
        st.button("Log out", on_click=st.logout)
        st.stop()
    st.sidebar.button("Log out", key="qmlapp_logout", on_click=st.logout)


def setup_page(title: str, icon: str) -> None:
    """Every page's first call: page config, then the login gate."""
    st.set_page_config(page_title=title, page_icon=icon, layout="wide")
    require_login()
