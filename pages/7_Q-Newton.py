from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.qnewton_view import qnewton_page

setup_page("Q-Newton · QML Explorer", "🧮")
run_page(qnewton_page)
