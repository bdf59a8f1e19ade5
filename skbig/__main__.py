"""``python -m skbig`` runs the command-line interface."""

import sys

from skbig.cli import main

sys.exit(main())
