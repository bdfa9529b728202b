from qmlapp.ui.auth import run_page, setup_page
from qmlapp.ui.compare_view import compare_page

setup_page("Compare · QML Explorer", "📊")
run_page(compare_page)
