"""Every model of the series on one page: test error against parameters, as a figure and a table
(`reports/leaderboard.html`, linked from the index)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter
import seaborn as sns

from .config import reports_dir
from .files import write_atomic
from .plots import _finish, png_bytes
from .report import fmt

LEADERBOARD_COLUMNS = ("model", "notebook", "parameters", "test accuracy", "training time (s)")


LABEL_OFFSETS = ((5, 2), (5, -9))  # points of text right of a marker, above or below in turn: neighbours differ
ERROR_FLOOR = 0.01  # %, one image of 10,000: a perfect score (a smoke run's few images) is drawn there, not dropped


def plotted_error(row: dict[str, Any]) -> float:
    """A row's test error (%) as the log axis can show it: at least ERROR_FLOOR."""
    return max(100 - row["test accuracy"], ERROR_FLOOR)


def plot_leaderboard(rows: Sequence[dict[str, Any]], highlight: str | None = None) -> plt.Figure:
    """Test error against parameters, both on log scales, for rows of `leaderboard_rows`, one colour per notebook;
    each point is numbered with its rank in the table under the figure (names would overlap: the best models lie
    within a few tenths of a point of each other); `highlight` rings one notebook's models. Error on a log scale
    spreads the models near 100% apart, where accuracy would stack them; the axis is turned so that better is up."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    notebooks = sorted({row["notebook"] for row in rows})
    palette = dict(zip(notebooks, sns.color_palette("tab10", max(1, len(notebooks)))))
    for notebook in notebooks:
        mine = [row for row in rows if row["notebook"] == notebook]
        ax.scatter([r["parameters"] for r in mine], [plotted_error(r) for r in mine], s=60, label=notebook,
                   color=palette[notebook], edgecolor="black" if notebook == highlight else "white", linewidth=1.2, zorder=3)
    for rank, r in enumerate(rows, 1):
        ax.annotate(str(rank), (r["parameters"], plotted_error(r)), fontsize=8,
                    xytext=LABEL_OFFSETS[rank % len(LABEL_OFFSETS)], textcoords="offset points")
    if not rows:
        ax.text(0.5, 0.5, "no results files yet: run the notebooks", ha="center", transform=ax.transAxes)
    ax.set(xscale="log", xlabel="parameters (log scale)", ylabel="test error (%, log scale)",
           title="every model of the series: test error against size (numbers: the ranks in the table below)")
    if rows:
        ax.set_yscale("log")
        ax.invert_yaxis()  # the fewest errors at the top
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.2, 0.5, 1, 2, 5, ...: a decade holds few models
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(title="notebook", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3, which="both")
    return _finish(fig)


def checkpoint_link(row: dict[str, Any]) -> str:
    """A link to a model's checkpoint (a path relative to the reports folder), or a dash when none was saved
    (an ensemble is no single model)."""
    path = row.get("checkpoint")
    return f'<a href="{html.escape(path)}">{html.escape(Path(path).stem)}</a>' if path else "—"


def write_leaderboard(rows: Sequence[dict[str, Any]], figure: plt.Figure, directory: Path | str | None = None, *,
                      note: str = "") -> tuple[Path, Path]:
    """Write `figure` (from `plot_leaderboard(rows)`) as `leaderboard.png`, and a page with it and the table
    of `rows` as `leaderboard.html`, to `directory` (default: the reports folder, whose index page links
    them), each atomically. Returns both paths."""
    directory = Path(directory or reports_dir())
    png, page = directory / "leaderboard.png", directory / "leaderboard.html"
    write_atomic(png, png_bytes(figure, dpi=120))
    cells = "".join(
        "<tr>" + f"<td>{rank}</td>" + "".join(f"<td>{html.escape(fmt(row[c], '%' if c == 'test accuracy' else ''))}</td>"
                                             for c in LEADERBOARD_COLUMNS) + f"<td>{checkpoint_link(row)}</td></tr>\n"
        for rank, row in enumerate(rows, 1))
    header = "".join(f"<th>{html.escape(c)}</th>" for c in ("rank", *LEADERBOARD_COLUMNS, "checkpoint"))
    write_atomic(page, f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST series leaderboard</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left}}
th{{background:#f5f5f7}}img{{max-width:100%}}.meta{{color:#666}}</style></head><body>
<h1>Every model of the series</h1>
<p class="meta">{html.escape(note)}</p>
<img src="{png.name}" alt="test error against parameters, each model numbered by its rank">
<table><thead><tr>{header}</tr></thead><tbody>
{cells or '<tr><td colspan="7">No results yet: run the notebooks.</td></tr>'}</tbody></table>
</body></html>
""".encode())
    return png, page
