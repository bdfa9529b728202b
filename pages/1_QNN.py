from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.pages import qnn_page

setup_page("QNN classifier · QML Explorer", "🧪")
run_page(qnn_page)
