"""``python -m ls_widget``: the command line (`ls_widget.cli`)."""

from .cli import main

raise SystemExit(main())
