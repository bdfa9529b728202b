from qmlapp.ui.auth import setup_page
from qmlapp.ui.sweeps_view import sweeps_page

setup_page("Sweeps · QML Explorer", "🧭")
sweeps_page()
