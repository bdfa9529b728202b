from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.hypernet_view import hypernet_page

setup_page("Quantum hypernetworks · QML Explorer", "🧬")
run_page(hypernet_page)
