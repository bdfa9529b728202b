from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.sweeps_view import sweeps_page

setup_page("Sweeps · QML Explorer", "🧭")
run_page(sweeps_page)
