import sys

from qmlapp.cli import main

sys.exit(main())
