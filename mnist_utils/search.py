"""A search: one config tried with several sets of changes, the seeds of each trained packed and in lanes
(`train_seeds`), and a record of what each gave. Notebook 03 shows the record of the search that chose Step 3's
model.

    python -m mnist_utils.search configs/searches/step3.yaml          # runs the candidates not yet recorded
    python -m mnist_utils.search configs/searches/step3.yaml --only 2 # just the third candidate, again

A search file names the config and lists the candidates, each a list of `--set` changes (see configs/):

    config: step3
    record: docs/search_step3.json
    candidates:
      - ["model_args.widths=[10,10,12,10,10]"]
      - ["model_args.widths=[10,10,12,10,10]", "lr=0.1"]

The record is JSON, one row per candidate, written after each one (atomically), so a stopped search keeps
what it finished and the next run goes on from there. A search file's paths (its config's, its record's) are read
from the project's root. Under the smoke profile (MNIST_PROFILE=smoke) each candidate trains as that profile cuts
it, in seconds, and the record goes to the smoke folder (reports/smoke/), leaving the real one alone.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import torch
import yaml

from .commands import CommandParser, checked_settings, command_status, user_path
from .config import PROJECT_ROOT, Profile, first_line, generators_kept, get_device, get_profile, hardware, reports_dir
from .data import MNISTDataError, load_data
from .engine import History
from .evaluation import GOAL_ACC, LAST_EPOCHS, last_epochs_summary, seed_table
from .files import cannot_write, write_atomic
from .inspection import count_parameters
from .config_values import load_yaml, yaml_problem
from .recipes import ConfigError, Recipe, build_model, load_config
from .training import check_packable, train_seeds


def in_project(path: Path | str) -> Path:
    """A relative path read from the project's root, wherever the caller runs (a notebook runs in notebooks/)."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def read_search(path: Path | str) -> dict[str, Any]:
    """The search file (from the current folder where it is there, else from the project's root), checked: a config
    name, a record path and a list of candidates (lists of changes)."""
    path = Path(path) if Path(path).is_file() else in_project(path)
    try:
        spec = load_yaml(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the search file: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a valid search file (YAML): not UTF-8 text") from None
    except yaml.YAMLError as error:
        where, what = yaml_problem(error)
        raise ConfigError(f"{path}{', ' * bool(where)}{where}: not a valid search file (YAML): {what}") from None
    if not isinstance(spec, dict) or set(spec) != {"config", "record", "candidates"}:
        found = sorted(map(str, spec)) if isinstance(spec, dict) else type(spec).__name__
        raise ConfigError(f"{path}: a search file has exactly the keys config, record and candidates, got {found}")
    for key, example in (("config", "step3"), ("record", "reports/searches/step3.json")):
        if not isinstance(spec[key], str) or not spec[key].strip():  # names of files: not a number, list or nothing
            raise ConfigError(f"{path}: {key} is a file name such as {example}, got {spec[key]!r}")
    candidates = spec["candidates"]
    if not isinstance(candidates, list) or not candidates or not all(
            isinstance(c, list) and all(isinstance(change, str) for change in c) for c in candidates):
        raise ConfigError(f"{path}: candidates is a list, not empty, of lists of changes such as \"lr=0.1\"")
    return spec


def candidate_recipes(spec: dict[str, Any], profile: Profile = get_profile("full")) -> list[Recipe]:
    """Every candidate's recipe (the config with its changes, as `profile` runs it), checked before anything trains:
    its keys and values, that its model can be built from its model_args, and that the packed trainer can train it."""
    config = spec["config"]
    config = in_project(config) if str(config).endswith((".yaml", ".yml")) else config  # a name: configs/NAME.yaml
    recipes = [load_config(config, changes).for_profile(profile) for changes in spec["candidates"]]
    for recipe in recipes:
        with generators_kept(torch.device("cpu")):  # built to be checked: its draws must not shift a seeded run
            build_model(recipe)
        check_packable(recipe)
    return recipes


def _record(spec: dict[str, Any], profile: Profile = get_profile("full")) -> tuple[Path, list[dict[str, Any]]]:
    """Where the search's record is (a smoke run's in the smoke folder), and its rows so far ([] before the first); a
    ConfigError where it is there but not a record, which a search must not write over."""
    record = Path(spec["record"])
    path = in_project(record) if not profile.is_smoke else reports_dir("smoke") / (
        record.name if record.is_absolute() else record)  # the real record's place, under the smoke folder
    try:
        rows = json.loads(path.read_text()) if path.exists() else []
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
        rows = f"{type(error).__name__}: {error}"
    what = first_line(rows, 80) if not isinstance(rows, list) else next(
        (f"row {i} has none" for i, row in enumerate(rows) if not isinstance(row, dict) or "changes" not in row), "")
    if what:
        raise ConfigError(f"{path} is not a search record, a JSON list of rows, each with its changes ({what}): "
                          "move it aside, or mend it, and run the search again")
    return path, rows


# the config file's stem, its title, what is measured after each epoch and in batches of how many images (which a
# search's runs, packed and without a validation split to stop on, never train by)
NOT_TRAINING = ("name", "title", "train_probe", "eval_batch_size")


def _bare(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe's settings without those that leave the training as it is (NOT_TRAINING): what decides the
    training. A key the record lacks (added to Recipe after the row was written) had its default then: it is
    filled in, so old rows match."""
    return {k: v for k, v in {**Recipe().to_dict(), **recipe}.items() if k not in NOT_TRAINING}


def _trained(row: dict[str, Any], recipe: Recipe) -> bool:
    """Whether the record's `row` trained exactly `recipe` (whatever its config file is called)."""
    return "recipe" in row and _bare(row["recipe"]) == _bare(recipe.to_dict())


def _same_run(row: dict[str, Any], changes: list[str], recipe: Recipe) -> bool:
    """Whether the record's `row` is this candidate's: the same changes to the same recipe."""
    return row["changes"] == changes and ("recipe" not in row or _trained(row, recipe))


def recorded_run(path: Path | str, recipe: Recipe) -> dict[str, Any] | None:
    """The row of the search's record that trained exactly `recipe` (whatever its config file), or None."""
    _, rows = _record(read_search(path))
    return next((row for row in rows if _trained(row, recipe)), None)


def summarise(recipe: Recipe, changes: list[str], runs: list[tuple[torch.nn.Module, History]],
              seconds: float, device: torch.device) -> dict[str, Any]:
    """One row of the record: the candidate's changes, its size, what every seed reached and where."""
    _, overall = seed_table({seed: history for seed, (_, history) in zip(recipe.seeds, runs)}, GOAL_ACC)
    return {
        "changes": changes,
        "model": recipe.model,
        "parameters": count_parameters(runs[0][0]),
        "epochs": recipe.epochs,
        "seeds": list(recipe.seeds),
        "lowest_last3": [last_epochs_summary(history, GOAL_ACC)["min_last"] for _, history in runs],
        "lowest": overall["min_last"],
        "seeds_met": overall["seeds_met"],
        "final_mean": overall["final_mean"],
        "final_train_mean": sum(history["train_acc"][-1] for _, history in runs) / len(runs),
        "diverged": [seed for seed, (_, history) in zip(recipe.seeds, runs)  # its training loss became nan or inf
                     if not all(math.isfinite(loss) for loss in history["train_loss"] if loss is not None)],
        "seconds": round(seconds, 1),
        "recipe": recipe.to_dict(),  # the whole recipe, so a row still says what ran if the config changes
        "hardware": hardware(device),
        "torch": torch.__version__,
    }


def run_search(path: Path | str, only: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Train the candidates of the search file `path` (those without a row yet, or those in `only`) and
    write each row to the record as soon as it is done. Returns the record."""
    spec, profile = read_search(path), get_profile()
    record_path, rows = _record(spec, profile)
    recipes = candidate_recipes(spec, profile)  # every candidate checked before any training
    wanted = set(range(len(recipes))) if only is None else set(only)
    if not wanted <= set(range(len(recipes))):
        raise ConfigError(f"--only {sorted(wanted - set(range(len(recipes))))}: the search has candidates "
                          f"0 to {len(recipes) - 1}")
    todo = [(i, changes, recipe) for i, (changes, recipe) in enumerate(zip(spec["candidates"], recipes))
            if i in wanted and (only is not None or not any(_same_run(row, changes, recipe) for row in rows))]
    if not todo:
        print(f"Every candidate of {path} is in its record, {record_path}: nothing to train (--only N trains "
              "candidate N again).", flush=True)
        return rows
    if why := cannot_write(record_path):  # said before the first candidate trains, not after
        raise ConfigError(f"the record cannot be written: {why}. Move what is in the way, or give the search file "
                          f"{path} another `record:` (a JSON file, e.g. reports/searches/mine.json)")
    data, device = load_data(), get_device()
    for _, _, recipe in todo:  # what the data decide (a split, whole batches), for every candidate before the first
        recipe.check_data(len(data.train))
    for i, changes, recipe in todo:
        print(f"[{i}] {spec['config']} {' '.join(changes) or '(as it is)'}", flush=True)
        start = time.perf_counter()
        runs = train_seeds(recipe, data, device)
        row = summarise(recipe, changes, runs, time.perf_counter() - start, device)
        rows = [r for r in rows if not _same_run(r, changes, recipe)] + [row]  # a rerun replaces its own row only
        write_atomic(record_path, (json.dumps(rows, indent=1) + "\n").encode())
        judged = min(LAST_EPOCHS, recipe.epochs)  # a smoke run's one epoch: the last 1
        seeds = f"seed{'s' * (len(row['diverged']) > 1)} {', '.join(map(str, row['diverged']))}"
        diverged = f" · diverged on {seeds} (the training loss is not finite): a lower lr than {recipe.lr:g} may " \
                   "keep it finite" if row["diverged"] else ""
        print(f"    {row['parameters']:,} parameters · lowest last-{judged} {row['lowest']:.2f}% · "
              f"{row['seeds_met']}/{len(runs)} seeds ≥ {GOAL_ACC}% · {row['seconds']:.0f} s{diverged}", flush=True)
    return rows


def recorded_candidates(path: Path | str) -> list[dict[str, Any]]:
    """The record's rows of the search file's candidates, in the file's order (those run so far), as recorded
    (`summarise`: numbers, for checks to compute with)."""
    spec = read_search(path)
    record_path, rows = _record(spec)
    if not record_path.exists():
        raise FileNotFoundError(f"{record_path} does not exist yet: run MNIST_PROFILE=full python -m "
                                f"mnist_utils.search {path}")
    found = (next((row for row in rows if _same_run(row, changes, recipe)), None)  # as run_search matches them
             for changes, recipe in zip(spec["candidates"], candidate_recipes(spec)))
    return [row for row in found if row is not None]


def held_on_every_seed(row: dict[str, Any]) -> bool:
    """Whether a recorded candidate (`summarise`) met the goal on every seed it trained: what a search asks of the
    candidate it keeps, the smallest that does."""
    return row["seeds_met"] == len(row["seeds"])


def changes_from(start: Recipe, recipe: Recipe) -> list[str]:
    """The changes, written as a search's candidates write them (`lr=0.1`, `augment.scale=[0.9,1.1]`), that make
    `start` into `recipe`: what a search's pick changed from where it started. A nested setting is compared key by
    key; the settings that change no training (NOT_TRAINING) are left out."""
    def written(value: Any) -> str:  # as `--set` reads it back (a YAML value)
        return "null" if value is None else f"[{','.join(map(written, value))}]" if isinstance(value, (list, tuple)) \
            else str(value)

    before, after, changes = start.to_dict(), recipe.to_dict(), []
    for key, value in after.items():
        if key not in NOT_TRAINING and value != before.get(key):
            if isinstance(value, dict) and isinstance(before.get(key), dict):
                changes += [f"{key}.{inner}={written(value.get(inner))}" for inner in {**before[key], **value}
                            if value.get(inner) != before[key].get(inner)]
            else:
                changes.append(f"{key}={written(value)}")
    return changes


def _diverged(row: dict[str, Any]) -> str:
    """", 2 diverged" where seeds of a recorded candidate diverged (rows written before this was kept: none)."""
    return f", {len(row['diverged'])} diverged" if row.get("diverged") else ""


def search_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recorded rows (`recorded_candidates`) as a table to show, one row each: what was changed, the size, every
    seed's lowest test accuracy of its last epochs, and the verdict."""
    return [{"changes": ", ".join(row["changes"]) or "(none: the starting point)", "parameters": row["parameters"],
             f"lowest of the last {LAST_EPOCHS} epochs, per seed": " ".join(f"{a:.2f}" for a in row["lowest_last3"]),
             "lowest": row["lowest"], "seeds meeting the goal": f"{row['seeds_met']}/{len(row['seeds'])}"
                                                                + _diverged(row),
             "final accuracy, mean": row["final_mean"],
             "minutes, on the machine of its day": row["seconds"] / 60}
            for row in rows]


def main(argv: Iterable[str] | None = None) -> int:
    parser = CommandParser(prog="python -m mnist_utils.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("search", type=user_path, help="a search file, e.g. configs/searches/step3.yaml")
    parser.add_argument("--only", type=int, action="append", metavar="N",
                        help="run candidate N (from 0) even if it is recorded; repeat for more")
    args = parser.parse_args(list(argv) if argv is not None else None)

    def command() -> int:
        checked_settings()  # a profile or device that MNIST_PROFILE or MNIST_DEVICE does not name: said first
        run_search(args.search, args.only)
        return 0
    return command_status(command, (ConfigError, MNISTDataError))


if __name__ == "__main__":
    sys.exit(main())
