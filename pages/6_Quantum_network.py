from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.qnetwork_view import qnetwork_page

setup_page("Quantum network · QML Explorer", "🛰️")
run_page(qnetwork_page)
