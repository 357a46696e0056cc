"""``python -m minigrad ...`` runs the ``minigrad`` command."""

import sys

from minigrad.cli import main

sys.exit(main())
