"""QML Explorer. Start with `make run` (app + embedded worker) or `python -m qmlapp serve`.

Every page, and the menu, come from the registry of experiment kinds (see qmlapp/ui/navigation.py)."""

from qmlapp.ui.navigation import main

main()
