"""`python -m mnist_utils`: the command line (see mnist_utils/cli.py)."""
import sys

from .cli import main

sys.exit(main())
