"""The results files notebooks write (`report.Report`), read back: every notebook's, for the index and the README;
one notebook's, for a later notebook that builds on it; and the leaderboard's rows, every model any of them trained."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .config import get_profile, reports_dir
from .config_values import is_number
from .files import read_json


# What every results file holds (Report.to_dict writes them), with its JSON type: the index and the README read them
# by name, and a hand-edited null among them would stop the README midway
RESULTS_TYPES = {"notebook": "a string", "title": "a string", "profile": "a string", "targets": "a list",
                 "seconds": "a number", "saved": "a string", "hardware": "a string", "torch": "a string"}
_KINDS = {"a string": lambda value: isinstance(value, str), "a list": lambda value: isinstance(value, list),
          "a number": is_number}


def _results_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    missing = [key for key in RESULTS_TYPES if key not in data]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)}"
    for key, kind in RESULTS_TYPES.items():
        if not _KINDS[kind](data[key]):
            return f"{key!r} is {json.dumps(data[key])[:40]}, not {kind}"
    if not all(isinstance(target, dict) for target in data["targets"]):
        return "'targets' holds something other than objects"
    return None


def load_results(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every notebook's results JSON in `directory` (default: the active profile's, reports/results for the
    full profile), in notebook order; an unreadable one is named and set aside (see `read_json`)."""
    directory = Path(directory or reports_dir() / "results")
    found = (read_json(p, "results file", f"Run notebook {p.stem} again to rewrite it.", _results_problem)
             for p in sorted(directory.glob("*.json")))
    return [results for results in found if results is not None]


def unfinished(results: dict[str, Any]) -> str | None:
    """Why `results` are not a whole run of their notebook, or None: the runner marks a run that stopped early, and
    a run in Jupyter that stopped short of the end, or ran a cell that records numbers again since (`Report.
    _measuring`), has no Analysis, with which every notebook ends, or no checks, which every notebook makes."""
    if results.get("stopped"):
        return f"stopped early ({results['stopped']})"
    if not results.get("analysis"):
        return "did not reach its Analysis (stopped part-way, or a cell that records numbers ran again since)"
    if not results.get("checks"):  # every notebook checks claims: an Analysis cell run again after they went
        return "has no checked claims (a cell that records numbers ran again since, then the Analysis alone)"
    return None


class MissingResults(FileNotFoundError):
    """A notebook needs the results of an earlier one, which has not run in this profile yet."""


def load_result(notebook: str, profile: str | None = None, directory: Path | None = None) -> dict[str, Any]:
    """The results of `notebook` run in `profile` (the active one by default), for a later notebook that
    builds on them; a clear error naming the notebook to run first when there are none."""
    profile = profile or get_profile().name
    other = profile != "full"  # Jupyter runs the full profile unless told otherwise
    rerun = (f"(`make notebooks NB={notebook[:2]}{' PROFILE=' + profile if other else ''}`, or run it to the end in "
             f"Jupyter{' started with MNIST_PROFILE=' + profile if other else ''})")
    builds_on = f"this notebook builds on {notebook}'s results in the {profile} profile, and"
    for result in load_results(directory or reports_dir(profile) / "results"):
        if result.get("notebook") == notebook and result.get("profile") == profile:
            if gap := unfinished(result):
                raise MissingResults(f"{builds_on} its last run there {gap}: run it to the end first {rerun}.")
            return result
    raise MissingResults(f"{builds_on} there are none yet: run that notebook first {rerun}.")


LEADERBOARD_COLUMNS = ("model", "notebook", "parameters", "training images", "test accuracy", "training time (s)")
LEADERBOARD_NOTE = ("Each notebook trains under its own protocol: the training images column says how many digits a "
                    "model learned from, and a training time is its own notebook's (in float32 or bfloat16; 03's a "
                    "fifth of its five seeds trained together), to compare within a notebook.")


def leaderboard_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model any notebook trained, best test accuracy first."""
    rows = [{"model": m["name"], "notebook": r["notebook"], "parameters": m["params"],
             "training images": m.get("train_images"), "test accuracy": m["test_acc"],
             "training time (s)": m["seconds"], "checkpoint": m.get("checkpoint")}
            for r in results for m in r.get("models", [])]
    return sorted(rows, key=lambda row: -row["test accuracy"])
