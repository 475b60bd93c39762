"""``python -m hanko_tornado.testing --port N``: see :mod:`hanko_tornado.testing.serve`."""

import sys

from hanko_tornado.testing.serve import main

sys.exit(main())
