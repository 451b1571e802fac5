"""Targets, results and checked claims for a notebook, rendered as Markdown and saved as JSON.

A notebook declares its targets up front, records what its run measured, and shows Result and
Analysis blocks built from those numbers: nothing in them is typed by hand. It records every number before its
first check (`_measuring` says why, and a test holds every notebook to it). Every change is written
at once (atomically) to ``reports/results/<notebook>.json`` (under the runner, to the notebook's pending folder,
which the runner moves there when the notebook finishes), which the index page and the leaderboard read (`results`).

    report = Report("01_step1_skeleton", "Step 1: the skeleton", seed=1)
    report.target("params", "<", 8000, "Parameters")
    report.show_targets()
    ...
    report.record(params=7_412, test_acc=99.1, epochs=15)
    report.show_result()
    report.check("The model overfits", gap > 0.5, f"largest train–test gap {gap:.2f} points")
    report.show_analysis("Model_1 reaches {acc:.2f}%: why the next step is what it is ...", acc=99.1)
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import operator
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .clock import CellClock
from .config import get_device, get_profile, hardware, pending_dir, reports_dir
from .config_files import config_files
from .config_values import is_number
from .files import jsonable, write_atomic

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
SYMBOLS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "="}  # a comparison as prose and tables write it
MINUS = "\u2212"  # the minus sign: −0.02 as print sets it, a hyphen's length apart from -
# code (group 1) is matched to be kept as it is (`head -1`, a config's `lr: -1`); any other hyphen before a digit
# where a number starts is a minus: not 1e-05, 2026-12-05 or --seed
NEGATIVE_OR_CODE = re.compile(r"(```.*?```|`[^`\n]*`)|(?:^|(?<=[\s(\[|*_:,\"]))-(?=\d)", re.MULTILINE | re.DOTALL)


@dataclass
class Target:
    """A measurable goal: `metric` `op` `threshold`, e.g. params < 8000."""

    metric: str
    op: str
    threshold: float
    label: str
    unit: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"Unknown comparison {self.op!r}: use one of {' '.join(OPERATORS)}")
        if not is_number(self.threshold):
            raise ValueError(f"the target on {self.metric!r} compares with {self.threshold!r}, not a number: give "
                             f"one, e.g. target({self.metric!r}, {self.op!r}, 8000, ...)")

    def evaluate(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The target with the value `metrics` hold of its metric and whether it meets it; a ValueError where that
        value is not a number (a list, say), which no comparison can judge."""
        actual = metrics.get(self.metric)
        if actual is not None and not is_number(actual):
            raise ValueError(f"{self.metric!r} is recorded as {json.dumps(actual)[:60]}, not a number, and a target "
                             f"compares it with {self.threshold}: record one number under that name")
        met = actual is not None and bool(OPERATORS[self.op](actual, self.threshold))
        return {**asdict(self), "actual": actual, "met": met}


@dataclass
class Check:
    """A claim made in an Analysis, with whether the run's numbers bear it out."""

    claim: str
    met: bool
    evidence: str = ""


def _float_text(value: float) -> str:
    """A float alone: two decimals from 1 up (99.45), four significant digits below 1 (0.1307, 0.02134)."""
    return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}"


def formatted(value: Any, spec: str | None) -> Any:
    """`value` in the format `spec` where it is a number and a spec is given; else as it is, for `fmt`."""
    return format(value, spec) if spec and is_number(value) else value


def typeset(text: str) -> str:
    """Markdown `text` with each negative number's hyphen set as a minus sign, outside code."""
    return NEGATIVE_OR_CODE.sub(lambda match: match.group(1) or MINUS, text)


def fmt(value: Any, unit: str = "", decimals: int | None = None) -> str:
    """A number as people read it: thousands separated; two decimals from 1 up (99.45), four
    significant digits below 1 (0.1307, 0.02134); a float with `decimals` given, that many."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float) and decimals is not None and math.isfinite(value):
        text = f"{value:,.{decimals}f}"
    elif isinstance(value, float):
        text = _float_text(value)
    else:
        text = str(value)
    text = MINUS + text[1:] if isinstance(value, (int, float)) and text.startswith("-") else text
    return f"{text}{unit}" if unit in ("%", "") else f"{text} {unit}"


def _put(items: list, item: Any, same: Callable[[Any], bool]) -> None:
    """Put `item` in place of the one `same` picks, else at the end: a notebook cell run again in Jupyter
    declares its target, check, table or model again, and should not list it twice."""
    index = next((i for i, old in enumerate(items) if same(old)), None)
    if index is None:
        items.append(item)
    else:
        items[index] = item


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                   units: dict[str, str] | None = None, aligned: bool = True) -> str:
    """A Markdown table of `rows` (dicts); `columns` picks and orders the keys. The floats of a column share
    their decimals (`column_decimals`), so that a column reads 0.7967, 0.7700, 0.0700, not 0.7967, 0.77, 0.07;
    `aligned=False` formats each value alone, for a column of unlike figures (a Result block's measurements)."""
    if not rows:
        return "_(no rows)_"
    columns = list(columns or rows[0].keys())
    units = units or {}
    decimals = {c: column_decimals([row.get(c) for row in rows]) if aligned else None for c in columns}
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join(" --- " for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(row.get(c), units.get(c, ""), decimals[c]) for c in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def column_decimals(values: Sequence[Any]) -> int | None:
    """The decimals that show a column's floats alike and each as precisely as `fmt` shows it alone: the most any
    of them needs (0.1307 and 0.13 both with four: a constant keeps its digits, 0.13 is padded to 0.1300). None
    where there is no float, or one `fmt` writes in e-notation (each value then keeps `fmt`'s own format)."""
    needed = []
    for value in values:
        if isinstance(value, float) and math.isfinite(value):
            text = _float_text(value)
            if "e" in text:
                return None
            needed.append(len(text.partition(".")[2]))
    return max(needed) if needed else None


def show_config(recipe: Any) -> None:
    """Show the config file a recipe comes from (and the files it builds on), then the recipe in one
    sentence as this run uses it (the smoke profile cuts epochs and seeds)."""
    show_configs([recipe])


def show_configs(recipes: Iterable[Any]) -> None:
    """Show the config files several recipes come from, each file once (a shared base before the files
    that build on it), then each recipe in one sentence as this run uses it."""
    recipes, shown, blocks = list(recipes), set(), []
    for recipe in recipes:
        for path, text in config_files(recipe.name):
            if path.resolve() not in shown:
                shown.add(path.resolve())
                blocks.append(f"`configs/{path.name}`\n\n```yaml\n{text.strip()}\n```")
    runs = "\n".join(f"- `{recipe.name}`: {recipe.describe()}; seeds {list(recipe.seeds)}." for recipe in recipes)
    show_markdown("\n\n".join(blocks) + f"\n\n**As run here:**\n\n{runs}")


def show_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
               units: dict[str, str] | None = None) -> None:
    """Display `rows` as a Markdown table."""
    show_markdown(markdown_table(rows, columns, units))


def points_against(value: float, reference: float) -> str:
    """How `value` (%) stands against `reference` (%), in words an Analysis can put before the reference's name:
    '0.05 points above', '0.02 points below' or 'level with' (to the two decimals shown)."""
    gap = round(value - reference, 2)
    if gap == 0:
        return "level with"
    return f"{abs(gap):.2f} points {'above' if gap > 0 else 'below'}"


def mark(met: bool) -> str:
    return "✅ met" if met else "❌ not met"


def show_markdown(text: str) -> None:
    """Display Markdown in Jupyter (print it elsewhere), its negative numbers with minus signs."""
    text = typeset(text)
    try:
        from IPython.display import Markdown, display
    except ImportError:  # plain Python: print it
        print(text)
        return
    display(Markdown(text))


@dataclass
class Report:
    """The Target / Result / Analysis record of one notebook run."""

    notebook: str
    title: str
    seed: int | list[int] | None = None  # the run's seed, or its seeds; set once the config is read
    targets: list[Target] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)
    headline_metric: tuple[str, str, str] | None = None  # (metric, label, unit)
    analysis: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    output_dir: Path | None = None

    def __post_init__(self) -> None:
        self.clock = CellClock()  # the notebook's cells' own time: a reader's pauses in Jupyter do not count
        self.profile = get_profile()
        self.device = get_device()
        pending = pending_dir() if self.output_dir is None else None
        self.output_dir = Path(self.output_dir or reports_dir(self.profile.name) / "results")
        self._save_dir = pending or self.output_dir

    # ------------------------------------------------------------------ declaring

    def target(self, metric: str, op: str, threshold: float, label: str, unit: str = "") -> Target:
        """Declare a target on a metric that the run will record: one per metric (a cell run again after its
        comparison or threshold was edited replaces the target it declared before)."""
        goal = Target(metric, op, threshold, label, unit)
        goal.evaluate(self.metrics)  # a value recorded already that it cannot compare: refused before it is kept
        _put(self.targets, goal, lambda t: t.metric == metric)
        self.save()
        return goal

    def add_targets(self, *goals: tuple) -> None:
        """Declare several targets at once, each as the arguments of `target`."""
        for goal in goals:
            self.target(*goal)

    def headline(self, metric: str, label: str, unit: str = "") -> None:
        """Which recorded metric the index page shows for this notebook, and how to call it."""
        self.headline_metric = (metric, label, unit)
        self.save()

    # ------------------------------------------------------------------ recording

    def _measuring(self) -> None:
        """Every notebook measures before it checks: a measurement after a check comes from a cell above them run
        again (in Jupyter), whose numbers the last run's checks and Analysis may no longer describe. They go, and
        the results read as a run short of its Analysis until the notebook reaches it again."""
        self.checks, self.analysis = [], []

    def record(self, **metrics: Any) -> None:
        """Record measured metrics (numbers, lists, small dicts)."""
        recorded = {**self.metrics, **jsonable(metrics)}
        for goal in self.targets:  # a value its target cannot compare: refused, and the report kept as it was
            goal.evaluate(recorded)
        self._measuring()
        self.metrics = recorded
        self.save()

    def add_run(self, name: str, **details: Any) -> None:
        """Keep a run's details (history per epoch, settings) under `name`."""
        self._measuring()
        self.runs[name] = jsonable(details)
        self.save()

    def forget(self, prefix: str) -> None:
        """Drop the leaderboard entries and run histories whose names start with `prefix`: a cell that records
        runs named after their seeds, run again in Jupyter after its config's seeds changed, replaces the last
        run's instead of listing its own beside them."""
        self._measuring()
        self.models = [model for model in self.models if not model["name"].startswith(prefix)]
        self.runs = {name: run for name, run in self.runs.items() if not name.startswith(prefix)}
        self.save()

    def add_model(self, name: str, *, params: int, test_acc: float, seconds: float, **extra: Any) -> None:
        """A trained model for the leaderboard: name, parameters, test accuracy (%), training seconds."""
        self._measuring()
        entry = {"name": name, "params": int(params), "test_acc": float(test_acc), "seconds": float(seconds),
                 **jsonable(extra)}
        _put(self.models, entry, lambda m: m["name"] == name)
        self.save()

    def publish_table(self, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                      units: dict[str, str] | None = None) -> None:
        """Show a table here and keep it in the results file, from which the README's results section
        is generated (so the README repeats this run's numbers, never hand-copied ones)."""
        self._measuring()
        table = {"title": title, "rows": jsonable(list(rows)), "columns": list(columns or rows[0].keys()),
                 "units": units or {}}
        _put(self.tables, table, lambda t: t["title"] == title)
        self.save()
        show_table(table["rows"], table["columns"], table["units"])

    def check(self, claim: str, met: bool, evidence: str = "") -> None:
        """A claim the Analysis makes, with whether the measured numbers support it (shown in the Analysis
        block's table; returns nothing, so a cell ending in a check prints nothing)."""
        _put(self.checks, Check(claim, bool(met), evidence), lambda c: c.claim == claim)
        self.save()

    # ------------------------------------------------------------------ reading

    def evaluated_targets(self) -> list[dict[str, Any]]:
        return [goal.evaluate(self.metrics) for goal in self.targets]

    @property
    def all_targets_met(self) -> bool:
        return all(t["met"] for t in self.evaluated_targets())

    # ------------------------------------------------------------------ rendering

    def targets_markdown(self) -> str:
        lines = ["**Targets**", ""]
        lines += [f"- {t.label}: {SYMBOLS[t.op]} {fmt(t.threshold, t.unit)}" for t in self.targets]
        return "\n".join(lines)

    def result_markdown(self, metrics: dict[str, str | tuple[str, str]] | None = None) -> str:
        # one seed of any kind (a NumPy integer, a string) or several: "12" is seed 12, not seeds 1 and 2
        seeds = (list(self.seed) if isinstance(self.seed, (list, tuple, range))
                 else [] if self.seed is None else [self.seed])
        seed = f", seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}" if seeds else ""
        header = (f"**Result** ({self.profile.name} profile{seed}, {self.device.type}, "
                  f"torch {torch.__version__.split('+')[0]})")
        lines = [header, ""]
        if self.targets:
            lines += ["| Target | Wanted | Measured | |", "| --- | --- | --- | --- |"]
            for t in self.evaluated_targets():
                lines.append(f"| {t['label']} | {SYMBOLS[t['op']]} {fmt(t['threshold'], t['unit'])} | "
                             f"{fmt(t['actual'], t['unit'])} | {mark(t['met'])} |")
            lines.append("")
        shown = []
        for key, entry in (metrics or {}).items():
            label, spec = entry if isinstance(entry, tuple) else (entry, None)
            if key in self.metrics:
                shown.append({"measured": label, "value": formatted(self.metrics[key], spec)})
        if shown:
            lines += [markdown_table(shown, aligned=False), ""]  # each row its own measurement
        if self.profile.is_smoke:
            lines.append("_Smoke profile: a small subset and one epoch, to check that the notebook runs; "
                         "the numbers are not meaningful. Run with `MNIST_PROFILE=full` for real results._")
        return "\n".join(lines).rstrip()

    def analysis_markdown(self, *paragraphs: str) -> str:
        lines = ["**Analysis**", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
        if self.checks:
            lines += ["| Claim | Evidence from this run | |", "| --- | --- | --- |"]
            lines += [f"| {c.claim} | {c.evidence} | {mark(c.met)} |" for c in self.checks]
        return "\n".join(lines).rstrip()

    def show_targets(self) -> None:
        show_markdown(self.targets_markdown())

    def show_result(self, metrics: dict[str, str | tuple[str, str]] | None = None) -> None:
        """Display the Result block: each target as met / not met, then the recorded `metrics` named as
        {key: label}, or {key: (label, format spec)} for a figure `fmt`'s default would not show as it reads
        (a signed gap, '+.2f'; a speed in whole images, ',.0f')."""
        self.save()
        show_markdown(self.result_markdown(metrics))

    def show_analysis(self, text: str, /, **values: Any) -> None:
        """Display the Analysis block: `text`, Markdown prose whose {named} fields (with format specs such
        as {accuracy:.2f}) are filled in from `values`, the run's numbers; then every check as a table.
        A sentence that depends on the outcome belongs in a check, not in the prose."""
        try:
            filled = text.format(**values)
        except KeyError as missing:
            raise KeyError(f"the Analysis text uses {missing} but no value of that name was given") from None
        self.analysis = [" ".join(paragraph.split()) for paragraph in filled.strip().split("\n\n")]
        self.save()
        show_markdown(self.analysis_markdown(*self.analysis))

    # ------------------------------------------------------------------ saving

    @property
    def path(self) -> Path:
        """Where `save` writes: output_dir (where results are read), or the runner's pending folder."""
        return self._save_dir / f"{self.notebook}.json"

    def to_dict(self) -> dict[str, Any]:
        headline = None
        if self.headline_metric:
            metric, label, unit = self.headline_metric
            headline = {"metric": metric, "label": label, "unit": unit, "value": self.metrics.get(metric)}
        return {
            "notebook": self.notebook,
            "title": self.title,
            "headline": headline,
            "targets": self.evaluated_targets(),
            "all_targets_met": self.all_targets_met,
            "metrics": self.metrics,
            "checks": [asdict(c) for c in self.checks],
            "analysis": self.analysis,
            "models": self.models,
            "tables": self.tables,
            "runs": self.runs,
            "seed": self.seed,
            "profile": self.profile.name,
            "device": str(self.device),
            "hardware": hardware(self.device),
            "torch": torch.__version__,
            "seconds": round(self.clock.seconds(), 2),
            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self) -> Path:
        """Write the results JSON atomically (a reader never sees half a file)."""
        write_atomic(self.path, json.dumps(jsonable(self.to_dict()), indent=2).encode())
        return self.path
