"""`make readme`: the README's results section, generated from the results files of full-profile runs and
the benchmark's figures (never from a smoke run, never typed by hand)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from .commands import CommandParser, run_command
from .config import NOTEBOOKS_DIR, PROJECT_ROOT, find_notebooks, reports_dir
from .files import read_json, write_atomic
from .index import (cpu_busy, fmt_duration, headline_text, is_full_series, notebook_seconds, read_runs, read_series,
                    series_time, target_text, time_against_budget)
from .report import mark, markdown_table
from .results import LEADERBOARD_COLUMNS, LEADERBOARD_NOTE, leaderboard_rows, load_results, unfinished

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def _selector(stems: Sequence[str]) -> str:
    """`make notebooks`' NB= value for `stems`: 03, or "03 06" (quoted for the shell) for several."""
    numbers = " ".join(stem[:2] for stem in stems)
    return numbers if len(stems) == 1 else f'"{numbers}"'


def _full_results(results: Sequence[dict[str, Any]], expected: Sequence[str]) -> list[dict[str, Any]]:
    """The full-profile ones of `results`; a ValueError naming the notebooks to run where one of `expected` has
    none, where there are none at all, or where one is not a whole run (`results.unfinished`)."""
    results = [r for r in results if r.get("profile") == "full"]
    missing = sorted(set(expected) - {r["notebook"] for r in results})
    if missing:
        raise ValueError(f"No full-profile results for {', '.join(missing)}: run `make notebooks "
                         f"NB={_selector(missing)}` first.")
    if not results:
        raise ValueError("No full-profile results in reports/results: run `make notebooks` first.")
    cut = {r["notebook"]: gap for r in results if (gap := unfinished(r))}  # stopped, or cut short in Jupyter
    if cut:
        runs = "; ".join(f"{stem} {gap}" for stem, gap in cut.items())
        raise ValueError(f"Not a whole run: {runs}. Run `make notebooks NB={_selector(list(cut))}` first.")
    return results


def _timing(series: dict[str, Any] | None, stems: Sequence[str], seconds: float) -> str:
    """How long the notebooks took: the series' time by the clock where `series` is a full run of `stems`, else the
    sum of their own times (`seconds`)."""
    if not is_full_series(series, stems):
        return f"the notebooks took {fmt_duration(seconds)} in all."
    busy = cpu_busy(series)
    return (f"the series ran in **{series_time(series)}** by the clock, up to {series['side_by_side']} "
            f"notebooks side by side (their own times add up to {fmt_duration(series['notebook_seconds'])}"
            f"{f'; their kernels computed for {busy}' if busy else ''}).")


def results_markdown(results: Sequence[dict[str, Any]], expected: Sequence[str] = (),
                     series: dict[str, Any] | None = None, runs: dict[str, dict[str, Any]] | None = None) -> str:
    """The README's results section, built only from full-profile results files. A notebook of `expected`
    (stems) without one is an error that names it: the section would silently leave it out. `series` (the
    runner's series.json) gives the wall time when it is a full-profile run of every notebook of `results`; `runs`
    (its runs.json) each notebook's time, as the index shows it."""
    results = _full_results(results, expected)
    hardware_used = "; ".join(sorted({r["hardware"] for r in results}))
    versions = ", ".join(sorted({r["torch"].split("+")[0] for r in results}))
    seconds = {r["notebook"]: notebook_seconds((runs or {}).get(r["notebook"], {}), r) for r in results}
    timing = _timing(series, [r["notebook"] for r in results], sum(seconds.values()))
    lines = [
        "## Results", "",
        f"Generated from the results files of full-profile runs (`make notebooks`, then `make readme`) on "
        f"{hardware_used}, torch {versions}; {timing}", "",
        markdown_table([{
            "notebook": f"{r['notebook']}: {r['title']}",
            "headline": headline_text(r) or "—",
            "targets met": f"{sum(t['met'] for t in r['targets'])}/{len(r['targets'])}",
            "not met": "; ".join(target_text(t) for t in r["targets"] if not t["met"]) or "—",
            "run time": time_against_budget(r["notebook"], seconds[r["notebook"]], "full"),
            "run on": r["saved"][:10],
        } for r in results]),
    ]
    if runs:
        lines += ["", "A run time is the notebook's kernel's, from its start to the end of its last cell, as the runner "
                  "timed it; the times the notebooks record themselves (a results file's `seconds`, 06's minutes) "
                  "start later, after the kernel's start-up and the notebook's imports."]
    for r in results:
        for table in r.get("tables", []):
            lines += ["", f"### {table['title']} ({r['notebook']})", "",
                      markdown_table(table["rows"], table["columns"], table["units"])]
    leaderboard = leaderboard_rows(results)
    if leaderboard:
        lines += ["", "### Every model of the series", "", LEADERBOARD_NOTE, "",
                  markdown_table(leaderboard, [*LEADERBOARD_COLUMNS, "checkpoint"], units={"test accuracy": "%"})]
    return "\n".join(lines)


def bench_markdown(bench: dict[str, Any]) -> str:
    """The README's training-speed paragraph, from the JSON `make bench` writes (a full run, not --quick)."""
    if bench.get("quick"):
        raise ValueError("bench.json comes from `--quick`, whose numbers mean nothing: run `make bench`.")
    if bench.get("whole") is False or not {"accuracy", "fastest", "example"} <= bench.keys():
        raise ValueError("bench.json comes from a run with less in it than `make bench` measures (fewer --steps or "
                         "--repeats, or --skip-accuracy): run `make bench`.")
    pipeline, machine = bench["pipeline"], bench["machine"]
    lines = ["", "### Training speed (`make bench`)", "",
             f"Measured on {machine['hardware']} ({machine['usable_cpus']} usable CPU cores, torch "
             f"{machine['torch'].split('+')[0]}, {machine['date'][:10]}). Model_3, batches of {pipeline['batch_size']}:", "",
             markdown_table([
                 {"pipeline": f"reference: torchvision MNIST, PIL transforms, DataLoader "
                              f"(num_workers={pipeline['reference_best_workers']}, the faster setting)",
                  "training images/s": round(pipeline["reference_best_images_per_s"])},
                 {"pipeline": "this project: tensors in memory, batched augmentation, channels_last",
                  "training images/s": round(pipeline["project_images_per_s"])}]),
             "", f"Speed-up: **{pipeline['ratio']:.1f}×**"
             + ("." if "goal_ratio" not in pipeline else f" (goal ≥ {pipeline['goal_ratio']:g}×: {mark(pipeline['met'])}).")
             + ("" if "ceiling_ratio" not in pipeline else
                f" The training steps alone, fed batches made ahead, run at "
                f"{round(pipeline['steps_images_per_s']):,} images/s: no pipeline could get past "
                f"{pipeline['ceiling_ratio']:.1f}× on this machine.")]
    runs = [(bench["accuracy"], "the Step 3 recipe"), (bench["fastest"], "the fastest recipe")]
    example = bench["example"]
    lines += ["", "Time to accuracy from seed 1, wall time from the start, testing after every epoch included:", "",
              markdown_table([_time_to_accuracy_row(run, text) for run, text in runs]),
              "", f"PyTorch's own MNIST example (its Net, Adadelta, a DataLoader) on the same machine: "
              f"{_reached_text(example['reached'])} to {example['threshold']}%"
              + ("." if example["ratio"] is None else
                 f"; the fastest recipe gets there **{example['ratio']:.1f}×** sooner "
                 f"(goal ≥ {example['goal_ratio']:g}×: {mark(example['met'])}).")]
    return "\n".join(lines)


def _time_to_accuracy_row(run: dict[str, Any], text: str) -> dict[str, str]:
    """A recipe's row of the README's time-to-accuracy table: `text` names it; a cell per threshold."""
    differed = run.get("reproduced") is False  # None or missing: one run
    recipe = f"{text} (`configs/{run['config']}.yaml`, {run['model']})" + (
        ", whose runs gave different accuracies: the first run's times" if differed else "")
    return {"recipe": recipe, **{f"to {t}%": _reached_text(hit, run["runs"] if run.get("reproduced") else [])
                                 for t, hit in run["reached"].items()}}


def _reached_text(hit: dict[str, Any] | None, runs: Sequence[Sequence[float]] = ()) -> str:
    """'12 s (epoch 2)', with the goal when there is one; 'not reached' when it was not. With several `runs`
    (each run's seconds after each epoch), the time is their median: their range follows it."""
    goal = "" if not hit or hit.get("goal_seconds") is None else f", goal ≤ {hit['goal_seconds']:g} s: {mark(hit['met'])}"
    if not hit or hit.get("seconds") is None:
        return "not reached" + goal
    times = [seconds[hit["epoch"] - 1] for seconds in runs]
    if len(times) > 1:
        return (f"{hit['seconds']:.1f} s (epoch {hit['epoch']}; the median of {len(times)} runs, "
                f"{min(times):.1f} to {max(times):.1f} s){goal}")
    return f"{hit['seconds']:.1f} s (epoch {hit['epoch']}){goal}"


def update_readme(readme: Path, results: Sequence[dict[str, Any]], bench: dict[str, Any] | None = None,
                  expected: Sequence[str] = (), series: dict[str, Any] | None = None,
                  runs: dict[str, dict[str, Any]] | None = None) -> None:
    """Replace the text between the results markers in `readme` (atomically), adding the benchmark's
    figures when `bench` (the JSON `make bench` writes) is given; every notebook of `expected` (stems)
    must have full-profile results."""
    restore = "restore README.md with `git checkout README.md` and run `make readme` again"
    if readme.is_dir():
        raise ValueError(f"{readme} is a folder, not a file: remove it, then {restore}.")
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as error:
        fix = "make it readable and run `make readme` again" if isinstance(error, PermissionError) else restore
        raise ValueError(f"{readme} cannot be read ({error.strerror or error}): {fix}.") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{readme} is not UTF-8 text (byte {error.start:,}: {error.reason}): save it as UTF-8 "
                         "and run `make readme` again.") from None
    head, start, rest = text.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not (start and end):  # missing, or the end marker before the start
        raise ValueError(f"{readme} lacks the markers {README_START} … {README_END}, in that order: put them around "
                         "its results section and run `make readme` again.")
    try:  # a file that is JSON, but not as `make bench` writes it
        speed = "\n" + bench_markdown(bench) if bench else ""
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"bench.json is not as `make bench` writes it ({type(error).__name__}: {error}): "
                         "run `make bench` again.") from None
    section = results_markdown(results, expected, series, runs) + speed
    write_atomic(readme, f"{head}{README_START}\n{section}\n{README_END}{tail}".encode())


def _bench_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or not {"machine", "pipeline"} <= data.keys():
        return "no 'machine' and 'pipeline'"
    if "config" not in data.get("accuracy", {"config": None}):
        return "written by an older `make bench`, without the fastest recipe"
    return None


def main(readme: Path | None = None, reports: Path | None = None, notebooks: Path | None = None) -> int:
    """`make readme`: rewrite README.md's results section from the full-profile `reports` folder (default
    reports/); every source notebook in `notebooks` (default notebooks/) must have results there."""
    readme = Path(readme or PROJECT_ROOT / "README.md")
    reports = Path(reports or reports_dir("full"))
    bench = read_json(reports / "bench.json", "benchmark file", "Run `make bench` again to rewrite it.", _bench_problem)
    expected = [path.stem for path in find_notebooks(notebooks or NOTEBOOKS_DIR)]
    results = load_results(reports / "results")  # each unreadable one named (and set aside) before any error
    try:
        _full_results(results, expected)  # the notebooks to run first are named first
        if bench is None:  # the README's speed section would go without a word
            raise ValueError(f"No benchmark figures in {reports / 'bench.json'}: run `make bench` first (about ten "
                             "minutes on 2 CPU cores).")
        update_readme(readme, results, bench, expected, read_series(reports), read_runs(reports))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{readme.name} results section regenerated from {reports / 'results'}/*.json and {reports / 'bench.json'}")
    return 0


if __name__ == "__main__":
    CommandParser(prog="python -m mnist_utils.readme",
                  description=main.__doc__.split(";")[0].replace("`make readme`: r", "R")).parse_args()
    run_command(main)  # a full disk under its output in one line, as every command
