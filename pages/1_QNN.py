from qmlapp.ui.auth import setup_page
from qmlapp.ui.pages import qnn_page

setup_page("QNN classifier · QML Explorer", "🧪")
qnn_page()
