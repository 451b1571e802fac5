"""`python -m mnist_utils`: the command line (see mnist_utils/cli.py)."""
import sys

try:  # importing torch takes a second or more: Ctrl-C during it ends as one during a command does
    from .cli import main
except KeyboardInterrupt:
    print("stopped (Ctrl-C)", file=sys.stderr)
    sys.exit(130)  # config.EXIT_STOPPED, which is not imported yet

sys.exit(main())
