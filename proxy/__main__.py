"""`python -m proxy` runs the `llm-shadow` command line."""

import sys

from proxy.cli.main import main

sys.exit(main())
