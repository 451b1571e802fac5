"""How a command of the project reads its arguments and ends: one parser for every command line (a mistake is one
line naming the fix), the settings each checks before it works, and `command_status`, the one place every command
ends (bad input, Ctrl-C, a reader that left, a full disk: one line each, never a traceback)."""
from __future__ import annotations

import argparse
import errno
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import torch

from .config import _PROFILES, Profile, counted, get_device, get_profile, reports_dir, reports_root
from .files import cannot_write


def environment_help() -> str:
    """The settings every command line reads from the environment, for the end of its --help."""
    smoke = _PROFILES["smoke"]
    return (f"environment: MNIST_PROFILE=smoke makes any command a quick check ({counted(smoke.max_epochs, 'epoch')}, "
            f"{smoke.images_kept()}), its files under REPORTS/smoke; MNIST_REPORTS_DIR=DIR makes DIR the "
            f"REPORTS folder (models, runs, evaluations, the performance log), now {reports_root()}.")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but a line never breaks inside a path or an option (argparse breaks at hyphens)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=False)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


def user_path(text: str) -> Path:
    """A path option's value, `~` made the home folder as the shell makes it in `--out ~/x` but not `--out=~/x`."""
    return Path(text).expanduser()


class CommandParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the fix, exit status 2 (argparse's default prints the usage
    first): the parser of every command line of the project."""

    def __init__(self, *args: Any, description: str | None = None, **kwargs: Any):
        # descriptions come from docstrings, whose ``code`` is reStructuredText: a terminal shows `code`
        super().__init__(*args, description=description and description.replace("``", "`"),
                         **{"formatter_class": _HelpFormatter, **kwargs})

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}. See `{self.prog} --help`.\n")

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        # argparse hands a command's unknown options up to the top-level parser, whose error would point at the
        # top-level --help, which does not list the command's options: each parser refuses its own instead.
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


# ----------------------------------------------------------------------------- how a command ends

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 130  # as a shell reports a command ended by Ctrl-C
EXIT_BROKEN_PIPE = 141  # as a shell reports a command whose reader left (SIGPIPE)


def one_line(error: BaseException) -> str:
    """An error's message on one line, whatever its own line breaks: a command's bad input ends in one line."""
    return " ".join(str(error).split())


def to_nowhere(stream: Any) -> None:
    """What is still to be written to `stream` (a file object with a descriptor) goes to the null device."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def stdout_to_nowhere() -> None:
    """After a broken pipe: what is still buffered for stdout goes nowhere, so the exit's flush fails no more."""
    to_nowhere(sys.stdout)


def disk_full_message(error: OSError) -> str | None:
    """The one-line message for a write that a full disk (or a spent quota) refused, naming what was not written:
    the file (every file a command writes goes through files.py, whose errors name it), else the command's output
    (`> /dev/full`, a full disk under a redirect); None for any other error."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    if error.filename:
        return f"{error.filename} could not be written ({error.strerror}): free some space there and run again"
    return f"the output could not be written ({error.strerror}): send it where there is room"


class UsageError(ValueError):
    """Input the command cannot use; the message says what to do instead."""


def checked_settings(device: str | None = None) -> tuple[Profile, torch.device]:
    """The profile and the device (`device`, else MNIST_DEVICE, else the best there is), checked before anything
    runs: a UsageError says which and how to fix it."""
    try:
        return get_profile(), get_device(device)
    except ValueError as error:
        raise UsageError(str(error)) from None


def figures_path(given: Path | None, name: str, whole: bool) -> Path:
    """Where a benchmark writes its figures: `given` (its --json), else `name` in the active profile's reports folder
    for a `whole` run, in the smoke one for a run with less in it, so that a check never replaces a whole run's
    figures. A UsageError, before the measuring, where the file cannot be written."""
    path = given or reports_dir(None if whole else "smoke") / name
    if why := cannot_write(path):
        raise UsageError(f"the figures cannot be written: {why}. Give --json a file that can be")
    return path


def command_status(main: Callable[[], int | None], bad_input: tuple[type[Exception], ...] = ()) -> int | None:
    """`main()`'s exit status, as a command of the project ends: an error of `bad_input` or a UsageError in one line
    (EXIT_BAD_INPUT), Ctrl-C in one line with what the command said of it (EXIT_STOPPED), a reader of the output that
    left (`| head`) quietly (EXIT_BROKEN_PIPE), a full disk in one line (EXIT_FAILED), never a traceback for any of
    them; any other error is raised."""
    try:
        status = main()
        sys.stdout.flush()  # here, where a full disk or a reader that left is told as below, not at the exit
        return status
    except (UsageError, *bad_input) as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stopped:  # `train` says what its run folder keeps
        print(f"stopped (Ctrl-C): {stopped}" if str(stopped) else "stopped (Ctrl-C)", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:
        stdout_to_nowhere()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        if (message := disk_full_message(error)) is None:
            raise
        if not error.filename:  # the output: what is still buffered goes nowhere, so the exit's flush fails no more
            stdout_to_nowhere()
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED


def run_command(main: Callable[[], int | None], bad_input: tuple[type[Exception], ...] = ()) -> NoReturn:
    """Exit with `main()`'s status, as `command_status` ends a command."""
    sys.exit(command_status(main, bad_input))
