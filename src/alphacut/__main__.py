"""``python -m alphacut``: the same as the ``alphacut`` command (through ``launch``)."""

import sys

from .launch import main

sys.exit(main())
