"""The machinery behind the notebooks, `utils.py`, the command line and the page (README: Layout)."""
import os
import sys


def _stopped_while_starting(kind, error, trace, previous=sys.excepthook):
    """Ctrl-C before a command is listening for it (importing torch takes a second or more) ends as one pressed
    later does (config.run_command): one line and status 130, not a traceback. Anything else as Python shows it."""
    if not issubclass(kind, KeyboardInterrupt):
        return previous(kind, error, trace)
    print("stopped (Ctrl-C)", file=sys.stderr, flush=True)
    os._exit(130)  # config.EXIT_STOPPED, not importable yet; nothing is written before a command starts


if sys.argv[:1] == ["-m"]:  # `python -m mnist_utils[.command]` is starting: runpy imports this package first
    sys.excepthook = _stopped_while_starting
