from qmlapp.ui.auth import setup_page
from qmlapp.ui.qnetwork_view import qnetwork_page

setup_page("Quantum network · QML Explorer", "🛰️")
qnetwork_page()
