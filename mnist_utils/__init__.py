"""The machinery behind the notebooks, `utils.py`, the command line and the page (README: Layout)."""
import sys


def _stopped_in_one_line(kind, error, trace, previous=sys.excepthook):
    """Ctrl-C that no command caught (one pressed while torch is still importing, which takes a second or more)
    is told in one line, as commands.run_command tells one pressed later, not with a traceback; Python then ends
    the process as Ctrl-C does (a shell reads status 130), its output flushed. Anything else as Python shows it."""
    if not issubclass(kind, KeyboardInterrupt):
        return previous(kind, error, trace)
    print("stopped (Ctrl-C)", file=sys.stderr)


if sys.argv[:1] == ["-m"]:  # `python -m mnist_utils[.command]` is starting: runpy imports this package first
    sys.excepthook = _stopped_in_one_line
