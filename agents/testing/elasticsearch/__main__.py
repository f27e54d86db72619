"""`python -m agents.testing.elasticsearch`: run the stand-in as a process (see `cli`)."""

import sys

from agents.testing.elasticsearch.cli import main

if __name__ == "__main__":
    sys.exit(main())
