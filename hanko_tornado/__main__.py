"""``python -m hanko_tornado check --api-url URL TOKEN``: see :mod:`hanko_tornado.diagnose`."""

import sys

from hanko_tornado.diagnose import main

sys.exit(main())
