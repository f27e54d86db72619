import sys

from agents.inject.cli import main

sys.exit(main())
