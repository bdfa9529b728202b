"""QML Explorer home page. Start with `make run` (app + embedded worker) or `python -m qmlapp serve`."""

from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.pages import home_page

setup_page("QML Explorer", "⚛️")
run_page(home_page)
