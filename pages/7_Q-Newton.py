from qmlapp.ui.auth import setup_page
from qmlapp.ui.qnewton_view import qnewton_page

setup_page("Q-Newton · QML Explorer", "🧮")
qnewton_page()
