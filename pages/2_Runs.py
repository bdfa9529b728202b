from qmlapp.ui.auth import setup_page
from qmlapp.ui.pages import runs_page

setup_page("Runs · QML Explorer", "📋")
runs_page()
