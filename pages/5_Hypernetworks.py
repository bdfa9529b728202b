from qmlapp.ui.auth import setup_page
from qmlapp.ui.hypernet_view import hypernet_page

setup_page("Quantum hypernetworks · QML Explorer", "🧬")
hypernet_page()
