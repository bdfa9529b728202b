from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.pages import runs_page

setup_page("Runs · QML Explorer", "📋")
run_page(runs_page)
