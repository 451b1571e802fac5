"""Every model of the series on one page: test error against parameters, as a figure and a table
(`reports/leaderboard.html`, linked from the index)."""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import seaborn as sns

from .config import reports_dir
from .files import write_atomic
from .plots import _finish, decimal_log_ticks, png_bytes
from .report import fmt
from .results import LEADERBOARD_COLUMNS, LEADERBOARD_NOTE


# where a rank may go, in points from its marker (ha: which side of the text touches that place), nearest first
LABEL_PLACES = ((6, 0, "left"), (-6, 0, "right"), (6, 8, "left"), (6, -8, "left"), (-6, 8, "right"),
                (-6, -8, "right"), (0, 11, "center"), (0, -11, "center"), (14, 0, "left"), (-14, 0, "right"))
LABEL_SIZE = (5.0, 7.0)  # points: the width of a digit and the height of a line of text at font size 8
MARKER_RADIUS = 4.5  # points: half a marker of size 60 (about 8 points across), with its edge
ERROR_SUBS = (1, 2, 3, 5)  # error ticks at 1, 2, 3, 5 × powers of ten: the best models lie tenths of a point apart
ERROR_FLOOR = 0.01  # %, one image of 10,000: a perfect score (a smoke run's few images) is drawn there, not dropped


def plotted_error(row: dict[str, Any]) -> float:
    """A row's test error (%) as the log axis can show it: at least ERROR_FLOOR."""
    return max(100 - row["test accuracy"], ERROR_FLOOR)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The area two boxes (left, bottom, right, top) share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _label_box(point: tuple[float, float], text: str, place: tuple[float, float, str]) -> tuple[float, ...]:
    """The box (left, bottom, right, top; points on the page) `text` takes at `place` from `point`."""
    (x, y), (dx, dy, ha), (width, height) = point, place, LABEL_SIZE
    left = x + dx - {"left": 0, "center": 0.5, "right": 1}[ha] * width * len(text)
    return left, y + dy - height / 2, left + width * len(text), y + dy + height / 2


def label_places(points: Sequence[tuple[float, float]], texts: Sequence[str]) -> list[tuple[float, float, str]]:
    """A place from LABEL_PLACES for each text beside its point (both in points on the page), in order: the first
    that overlaps neither a marker nor a text placed before it, else the one that overlaps them least. Points of
    the same size (parameters) and close errors would otherwise have their numbers run together ('9' and '12' read
    as '912')."""
    taken = [(x - MARKER_RADIUS, y - MARKER_RADIUS, x + MARKER_RADIUS, y + MARKER_RADIUS) for x, y in points]
    places = []
    for point, text in zip(points, texts):
        place = min(LABEL_PLACES, key=lambda p: sum(_overlap(_label_box(point, text, p), other) for other in taken))
        taken.append(_label_box(point, text, place))  # min: the first place of those that overlap least
        places.append(place)
    return places


def error_limits(errors: Sequence[float]) -> tuple[float, float]:
    """The error axis' ends: the ticks (at ERROR_SUBS) just outside the errors, with a little room, so that both
    ends carry a label, the best models' end in particular."""
    low, high = min(errors) / 1.1, max(errors) * 1.1
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    ticks = [sub * 10.0 ** decade for decade in decades for sub in ERROR_SUBS]  # reach past both ends
    return max(t for t in ticks if t <= low), min(t for t in ticks if t >= high)


def plot_leaderboard(rows: Sequence[dict[str, Any]], highlight: str | None = None) -> plt.Figure:
    """Test error against parameters, both on log scales, for rows of `leaderboard_rows`, one colour per notebook;
    each point is numbered with its rank in the table under the figure (names would overlap: the best models lie
    within a few tenths of a point of each other); `highlight` rings one notebook's models. Error on a log scale
    spreads the models near 100% apart, where accuracy would stack them; the axis is turned so that better is up."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    at = [(row["parameters"], plotted_error(row)) for row in rows]  # each model's place: (parameters, error)
    notebooks = sorted({row["notebook"] for row in rows})
    palette = dict(zip(notebooks, sns.color_palette("tab10", max(1, len(notebooks)))))
    for notebook in notebooks:
        mine = [place for place, row in zip(at, rows) if row["notebook"] == notebook]
        ax.scatter(*zip(*mine), s=60, label=notebook,
                   color=palette[notebook], edgecolor="black" if notebook == highlight else "white", linewidth=1.2,
                   zorder=3)
    if not rows:
        ax.text(0.5, 0.5, "no results files yet: run the notebooks", ha="center", transform=ax.transAxes)
    ax.set(xscale="log", xlabel="parameters (log scale)", ylabel="test error (%, log scale)",
           title="every model of the series: test error against size (numbers: the ranks in the table below)")
    if rows:
        ax.set_yscale("log")
        ax.set_ylim(*error_limits([error for _, error in at])[::-1])  # turned: the fewest errors at the top
        decimal_log_ticks(ax.yaxis, ERROR_SUBS)
        ax.legend(title="notebook", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.get_xlim()  # settles the autoscaled x-range: the labels are placed in the final layout
        fig.tight_layout()
        to_points = 72 / fig.dpi
        points = [tuple(ax.transData.transform(place) * to_points) for place in at]
        ranks = [str(rank) for rank in range(1, len(rows) + 1)]
        for place, rank, (dx, dy, ha) in zip(at, ranks, label_places(points, ranks)):
            ax.annotate(rank, place, fontsize=8, xytext=(dx, dy), textcoords="offset points", ha=ha, va="center")
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
        "<tr>" + f"<td>{rank}</td>"
        + "".join(f"<td>{html.escape(fmt(row[c], '%' if c == 'test accuracy' else ''))}</td>"
                  for c in LEADERBOARD_COLUMNS)
        + f"<td>{checkpoint_link(row)}</td></tr>\n"
        for rank, row in enumerate(rows, 1))
    columns = ("rank", *LEADERBOARD_COLUMNS, "checkpoint")
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    write_atomic(page, f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST series leaderboard</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left}}
th{{background:#f5f5f7}}img{{max-width:100%}}.meta{{color:#666}}</style></head><body>
<h1>Every model of the series</h1>
<p class="meta">{html.escape(note)}</p>
<img src="{png.name}" alt="test error against parameters, each model numbered by its rank">
<p>{html.escape(LEADERBOARD_NOTE)}</p>
<table><thead><tr>{header}</tr></thead><tbody>
{cells or f'<tr><td colspan="{len(columns)}">No results yet: run the notebooks.</td></tr>'}</tbody></table>
</body></html>
""".encode())
    return png, page
