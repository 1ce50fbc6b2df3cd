"""`python -m broker` is the `wsbroker` command."""

import sys

from broker.cli import main

sys.exit(main())
