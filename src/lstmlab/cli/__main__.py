"""``python -m lstmlab.cli``: the ``lstmlab`` command."""

import sys

from lstmlab.cli.main import main

sys.exit(main())
