"""``python -m tfpipe``: the tfpipe command line."""

from tfpipe.cli import main

raise SystemExit(main())
