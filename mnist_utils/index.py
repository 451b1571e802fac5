"""The index page of a reports folder (`index.html`): one row per notebook with its headline, its targets
met or not, its run time against its budget and links to the rendered notebook; `runs.json`, the record
of how each notebook's last run went, which the page is built from; and `series.json`, the wall time of the
runner's last finished run, which the page shows under its title."""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
from pathlib import Path
from typing import Any, Iterable

from .config import NOTEBOOK_PLANS, SERIES_BUDGET_MINUTES, budget_minutes, counted, usable_cpus
from .files import read_json, write_atomic
from .report import SYMBOLS, fmt, mark
from .results import leaderboard_rows, load_results, unfinished


# ----------------------------------------------------------------------------- runs.json


def _runs_problem(data: Any) -> str | None:
    if isinstance(data, dict) and all(isinstance(entry, dict) for entry in data.values()):
        return None
    return "not an object of one object per notebook"


def read_runs(reports_dir: Path | str) -> dict[str, dict[str, Any]]:
    """REPORTS/runs.json; {} when missing, or unreadable (then it is named and set aside)."""
    fix = "How the notebooks' earlier runs went is lost; their results files and reports are not."
    return read_json(Path(reports_dir) / "runs.json", "runs file", fix, _runs_problem) or {}


def record_run(reports_dir: Path | str, stem: str, entry: dict[str, Any]) -> Path:
    """Merge one notebook's entry into REPORTS/runs.json, keeping the other notebooks' entries."""
    runs = read_runs(reports_dir)
    runs[stem] = entry
    path = Path(reports_dir) / "runs.json"
    write_atomic(path, json.dumps(dict(sorted(runs.items())), indent=2, ensure_ascii=False).encode())
    return path


def record_series(reports_dir: Path | str, entries: dict[str, dict[str, Any]], seconds: float,
                  side_by_side: int) -> Path:
    """REPORTS/series.json: the runner's last finished run, whichever notebooks it ran: their stems, how many
    ok, how many ran side by side at most (`side_by_side`), its wall time and the sum of theirs, and the CPU time
    their kernels computed (None when one is unknown) with the machine's usable CPUs."""
    cpu = [e.get("cpu_seconds") for e in entries.values()]
    series = {"notebooks": list(entries), "ok": sum(e["status"] == "ok" for e in entries.values()),
              "side_by_side": side_by_side, "seconds": round(seconds, 1),
              "notebook_seconds": round(sum(e["seconds"] or 0 for e in entries.values()), 1),
              # The kernels' CPU time against what the machine's CPUs could give over the run: how busy it was.
              "cpu_seconds": None if None in cpu else round(sum(cpu), 1), "cpus": usable_cpus(),
              "profile": next((e["profile"] for e in entries.values()), None),
              "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    path = Path(reports_dir) / "series.json"
    write_atomic(path, json.dumps(series, indent=2, ensure_ascii=False).encode())
    return path


def read_series(reports_dir: Path | str) -> dict[str, Any] | None:
    """REPORTS/series.json (see record_series), or None when missing or unreadable (then named and set aside)."""
    fix = "The wall time of the last run of the series is lost; run `make notebooks` again to measure it."
    return read_json(Path(reports_dir) / "series.json", "series file", fix, _series_problem)


SERIES_NUMBERS = ("ok", "side_by_side", "seconds", "notebook_seconds")
SERIES_KEYS = ("notebooks", *SERIES_NUMBERS, "profile")
SERIES_CPU = ("cpu_seconds", "cpus")  # optional: a record written before they were measured has neither


def _series_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or not set(SERIES_KEYS) <= data.keys():
        return f"not a record of a run: it needs {', '.join(SERIES_KEYS)}"
    if not isinstance(data["notebooks"], list) or not all(isinstance(data[k], (int, float)) for k in SERIES_NUMBERS):
        return "a list of notebooks and numbers expected"
    cpu = [data.get(k) for k in SERIES_CPU]
    if not all(v is None or (type(v) in (int, float) and math.isfinite(v) and v >= 0) for v in cpu):
        return f"{', '.join(SERIES_CPU)}: numbers of 0 or more (or null) expected"
    return None


def cpu_busy(series: dict[str, Any]) -> str | None:
    """'46.9 CPU-minutes, 98% of 2 CPUs over the run': how much of the machine the notebooks' kernels kept
    busy; None for a record without CPU times (written before they were measured, or where they cannot be)."""
    cpu, cpus = series.get("cpu_seconds"), series.get("cpus")
    if not cpu or not cpus or not series["seconds"]:
        return None
    return f"{cpu / 60:.1f} CPU-minutes, {cpu / (cpus * series['seconds']):.0%} of {cpus} CPUs over the run"


def is_full_series(series: dict[str, Any] | None, stems: Iterable[str]) -> bool:
    """Whether `series` is a full-profile run of exactly the notebooks `stems`, every one ok: its wall time is the
    series' time, to judge against SERIES_BUDGET_MINUTES."""
    return bool(series) and series["profile"] == "full" and sorted(series["notebooks"]) == sorted(stems) \
        and series["ok"] == len(series["notebooks"])


# ----------------------------------------------------------------------------- presenting


def fmt_duration(seconds: float | None) -> str:
    """3.2s, 3m12s, 1h05m."""
    if seconds is None:
        return "—"
    if round(seconds, 1) < 60:  # 59.96 s reads 1m00s, not 60.0s
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def results_by_stem(reports_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["notebook"]: r for r in load_results(Path(reports_dir) / "results")}


def headline_text(results: dict[str, Any] | None) -> str | None:
    """'Test accuracy: 99.32%': a notebook's headline, from its results; None when it has none."""
    headline = (results or {}).get("headline")
    if not headline:
        return None
    return f"{headline['label']}: {fmt(headline.get('value'), headline.get('unit', ''))}"


def target_text(target: dict[str, Any]) -> str:
    """A results file's target as a line: "Epochs <= 15: 15"."""
    unit = target.get("unit", "")
    return (f"{target['label']} {SYMBOLS.get(target['op'], target['op'])} {fmt(target['threshold'], unit)}: "
            f"{fmt(target.get('actual'), unit)}")


def time_against_budget(stem: str, seconds: float | None, profile: str | None, status: str = "ok") -> str:
    """'3m12s', or '3m12s of a 4m00s budget ✅ met' for a full-profile run of a notebook with a budget; a run
    that did not finish (`status` other than ok) is not judged: '40.0s of a 4m00s budget'."""
    budget = budget_minutes(stem, profile or "")
    if seconds is None or budget is None:
        return fmt_duration(seconds)
    text = f"{fmt_duration(seconds)} of a {fmt_duration(budget * 60)} budget"
    return f"{text} {mark(seconds <= budget * 60)}" if status == "ok" else text


def notebook_seconds(run: dict[str, Any], results: dict[str, Any] | None) -> float | None:
    """A notebook's run time: its kernel's, as the runner recorded it (runs.json), else its Report's."""
    return run.get("seconds", (results or {}).get("seconds"))


def series_time(series: dict[str, Any]) -> str:
    """'21m30s', or '21m30s of a 20m00s budget ❌ not met' (the series') for a full-profile run of every notebook,
    every one ok."""
    if not is_full_series(series, NOTEBOOK_PLANS):
        return fmt_duration(series["seconds"])
    budget = SERIES_BUDGET_MINUTES * 60
    met = mark(series["seconds"] <= budget)
    return f"{fmt_duration(series['seconds'])} of a {fmt_duration(budget)} budget {met}"


def progress_suffix(stem: str, entry: dict[str, Any], results: dict[str, Any] | None) -> str:
    """`ok in 3m12s of a 4m00s budget ✅ met · Test accuracy 99.32% · targets 2/3 met`."""
    parts = [f"{entry['status']} in "
             f"{time_against_budget(stem, entry['seconds'], entry.get('profile'), entry['status'])}"]
    if entry.get("error"):
        parts.append(entry["error"])
    if headline_text(results):
        parts.append(headline_text(results))
    targets = (results or {}).get("targets") or []
    if targets:
        parts.append(f"targets {sum(t['met'] for t in targets)}/{len(targets)} met")
    return " · ".join(parts)


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1150px;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin-bottom:.3rem}.meta{color:#666;font-size:.9rem;margin:.2rem 0}
table{border-collapse:collapse;width:100%;margin-top:1rem}th,td{border-bottom:1px solid #ddd;padding:.5rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f5f7;font-weight:600}td.num{white-space:nowrap}ul{margin:0;padding-left:1rem}
.stem{color:#888;font-size:.8rem}.ok{color:#1a7f37;font-weight:600}.error,.timeout{color:#cf222e;font-weight:600}
.interrupted,.unfinished{color:#9a6700;font-weight:600}
.why{color:#cf222e;font-size:.8rem}.links a{margin-right:1rem}
table{table-layout:fixed}td{overflow-wrap:anywhere}th:nth-child(1){width:15%}th:nth-child(2){width:13%}
th:nth-child(3){width:32%}th:nth-child(4),th:nth-child(5){width:6%}th:nth-child(6){width:10%}
th:nth-child(7),th:nth-child(8){width:9%}
"""  # fixed widths: the targets (3rd column) are sentences and get the widest share, not the links


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _after(one: str | None, other: str | None) -> bool:
    """Whether the ISO time `one` is later than `other` (False where either is missing or unreadable)."""
    try:
        return _dt.datetime.fromisoformat(one) > _dt.datetime.fromisoformat(other)
    except (TypeError, ValueError):
        return False


def _index_row(stem: str, run: dict[str, Any], results: dict[str, Any] | None, reports_dir: Path) -> str:
    results = results or {}
    notebook = f"<b>{_e(stem[:2])}</b> " + (
        f"{_e(results['title'])}<div class='stem'>{_e(stem)}</div>" if results.get("title") else _e(stem))
    targets = results.get("targets") or []
    target_items = "".join(f"<li>{_e(target_text(t))} {_e(mark(t['met']))}</li>" for t in targets)
    status, why = run.get("status", "—"), run.get("error")
    rewritten = status == "ok" and _after(results.get("saved"), run.get("finished"))  # in Jupyter, since the runner
    if results and (gap := unfinished(results)) and (not run or rewritten):
        status = "unfinished"
        why = (f"results of a run in Jupyter that {gap}: the headline and targets are that run's"
               + (", the HTML report the runner's" if run else ""))
    status_cell = f"<span class='{_e(status)}'>{_e(status)}</span>"
    if why:
        status_cell += f"<div class='why'>{_e(why)}</div>"
    seconds = notebook_seconds(run, results)
    link = f"<a href='{_e(stem)}.html'>HTML</a>" if (reports_dir / f"{stem}.html").exists() else "—"  # the row names it
    saved = [m for m in results.get("models", []) if m.get("checkpoint")]
    models = "".join(f"<li><a href='{_e(m['checkpoint'])}'>{_e(m['name'])}</a></li>" for m in saved)
    profile = run.get("profile") or results.get("profile")
    cells = [notebook, _e(headline_text(results) or "—"), f"<ul>{target_items}</ul>" if targets else "—",
             status_cell, _e(profile or "—"), _e(time_against_budget(stem, seconds, profile, run.get("status", "ok"))),
             link, f"<ul>{models}</ul>" if saved else "—"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def write_series_leaderboard(reports_dir: Path, results: Iterable[dict[str, Any]]) -> tuple[Path, Path] | None:
    """Every model of the notebooks' `results`, as `leaderboard.png` and `leaderboard.html` in `reports_dir`
    (see mnist_utils.leaderboard); None, removing any older board, while no notebook has recorded a model. Built here,
    from the results files, rather than by a notebook: no notebook has to wait for all the others."""
    from .leaderboard import plot_leaderboard, write_leaderboard  # matplotlib: the runner imports it only here

    board = leaderboard_rows(list(results))
    if not board:
        for name in ("leaderboard.png", "leaderboard.html"):  # an older board would pass for this one's
            (reports_dir / name).unlink(missing_ok=True)
        return None
    notebooks = len({row["notebook"] for row in board})
    generated = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return write_leaderboard(board, plot_leaderboard(board), reports_dir,
                             note=f"{counted(len(board), 'model')} from {counted(notebooks, 'notebook')} · {generated}")


def write_index(reports_dir: Path | str) -> Path:
    """Write REPORTS/index.html: one row per notebook known from runs.json or results/; and, from the same
    results, the leaderboard of every model of the series (`write_series_leaderboard`), which it links."""
    reports_dir = Path(reports_dir)
    runs, results = read_runs(reports_dir), results_by_stem(reports_dir)
    write_series_leaderboard(reports_dir, results.values())
    stems = sorted(set(runs) | set(results))
    rows = "\n".join(_index_row(s, runs.get(s, {}), results.get(s), reports_dir) for s in stems)
    if not rows:
        rows = "<tr><td colspan='8'>No notebook has run yet: <code>make notebooks</code>.</td></tr>"

    extras = [f"<a href='{name}'>Leaderboard ({name.rsplit('.', 1)[1].upper()})</a>"
              for name in ("leaderboard.html", "leaderboard.png") if (reports_dir / name).exists()]
    series = read_series(reports_dir)
    busy = series and cpu_busy(series)
    series_line = "" if not series else (
        f"<p class='meta'>Last finished run: {len(series['notebooks'])} "
        f"notebook{'s' * (len(series['notebooks']) != 1)}, "
        f"{series['ok']} ok, up to {series['side_by_side']} side by side, in "
        f"{_e(series_time(series))} (their own times add up to {_e(fmt_duration(series['notebook_seconds']))}"
        f"{_e(f'; their kernels computed for {busy}' if busy else '')})</p>")
    hardware = sorted({r["hardware"] for r in results.values() if r.get("hardware")})
    torch_versions = sorted({r["torch"] for r in results.values() if r.get("torch")})
    generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    title = "MNIST notebook series — reports"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head><body>
<h1>{_e(title)}</h1>
{f'<p class="links">{"".join(extras)}</p>' if extras else ''}
<p class="meta">Hardware: {_e('; '.join(hardware) or '—')} · torch {_e(', '.join(torch_versions) or '—')}</p>
{series_line}
<p class="meta">Generated {_e(generated)}</p>
<table>
<thead><tr><th>Notebook</th><th>Headline</th><th>Targets</th><th>Status</th><th>Profile</th><th>Run time</th><th>Report</th><th>Models saved</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
    path = reports_dir / "index.html"
    write_atomic(path, page.encode())
    return path
