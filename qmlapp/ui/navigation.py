"""The app's menu, built from the registry: home, one page per experiment kind, then runs, sweeps, compare.

``app.py`` calls :func:`main` and nothing else. A kind's page is its view module's ``page()``, imported
only when the page is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from qmlapp.registry import KINDS, get_kind
from qmlapp.ui.auth import require_login, run_page
from qmlapp.ui.common import register_pages

APP_TITLE = "QML Explorer"
# Pages that are not a kind's: name -> path in the URL (a kind's path is its ``url_path``).
URL_PATHS = {"home": "home", "runs": "Runs", "sweeps": "Sweeps", "compare": "Compare"}


def url_path(name: str) -> str:
    """The URL path of a page by name ("home", "runs", "sweeps", "compare" or a kind's name)."""
    return URL_PATHS.get(name) or get_kind(name).url_path


def _kind_page(kind: str) -> Callable[[], None]:
    def body() -> None:
        run_page(get_kind(kind).load_view().page)
    body.__name__ = f"page_{kind}"
    return body


def _page(fn: Callable[[], None]) -> Callable[[], None]:
    def body() -> None:
        run_page(fn)
    body.__name__ = fn.__name__
    return body


def build_pages() -> dict[str, Any]:
    """Page name -> ``st.Page``: "home", every kind's name, "runs", "sweeps", "compare"."""
    from qmlapp.ui.compare_view import compare_page
    from qmlapp.ui.pages import home_page, runs_page
    from qmlapp.ui.sweeps_view import sweeps_page

    pages: dict[str, Any] = {"home": st.Page(_page(home_page), title="Home", icon="⚛️", url_path=url_path("home"),
                                             default=True)}
    for kind in KINDS.values():
        pages[kind.name] = st.Page(_kind_page(kind.name), title=kind.page_title, icon=kind.icon,
                                   url_path=kind.url_path)
    pages["runs"] = st.Page(_page(runs_page), title="Runs", icon="📋", url_path=url_path("runs"))
    pages["sweeps"] = st.Page(_page(sweeps_page), title="Sweeps", icon="🧭", url_path=url_path("sweeps"))
    pages["compare"] = st.Page(_page(compare_page), title="Compare", icon="📊", url_path=url_path("compare"))
    return pages


def main() -> None:
    st.set_page_config(page_title=APP_TITLE, page_icon="⚛️", layout="wide")
    require_login()
    pages = build_pages()
    register_pages(pages)
    nav = st.navigation({
        "": [pages["home"]],
        "Experiments": [pages[k] for k in KINDS],
        "Results": [pages["runs"], pages["sweeps"], pages["compare"]],
    })
    if nav.url_path != pages["home"].url_path:  # the browser tab names the page ("Q-Newton · QML Explorer")
        st.set_page_config(page_title=f"{nav.title} · {APP_TITLE}", page_icon=nav.icon or "⚛️")
    nav.run()
