from qmlapp.ui.auth import setup_page
from qmlapp.ui.compare_view import compare_page

setup_page("Compare · QML Explorer", "📊")
compare_page()
