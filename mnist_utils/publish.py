"""What a notebook's run leaves in the reports folder: its executed copy, its HTML report, and the results
files and models its Report wrote to a pending folder while it ran, moved into place only when it finishes, so
that a stopped run replaces nothing and a failed one is marked as such (see run.py)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from .checkpoints import METADATA_SUFFIX
from .config import first_line
from .files import folder_lock, read_json, write_atomic


def publish_results(pending: Path, folder: Path, stem: str, *, stopped: str | None = None) -> None:
    """Move the results files and models a finished run wrote to `pending` into the profile's `folder`
    (results/ and models/), replacing the previous run's. A run that wrote no results for its notebook leaves
    none: the index must not show old numbers as this run's. A run that `stopped` early (on an error or a
    timeout) has its results marked so (`stopped`: what stopped it), since they hold only what the cells before
    it recorded: the index shows them, and a later notebook refuses to build on them (`results.load_result`)."""
    models = sorted((pending / "models").glob("*"), key=lambda file: (file.suffix == METADATA_SUFFIX, file.name))
    if models:
        (folder / "models").mkdir(parents=True, exist_ok=True)
        with folder_lock(folder / "models"):  # as a save holds it: no other save's pair lands between these
            for model in models:  # weights, then metadata, as a save renames them: each file atomically
                os.replace(model, folder / "models" / model.name)
    if stopped and (own := pending / f"{stem}.json").exists():
        marked = read_json(own, "results file", f"Run notebook {stem} again.")
        if marked is not None:
            write_atomic(own, json.dumps({**marked, "stopped": stopped}, indent=2).encode())
    results, written = folder / "results", sorted(pending.glob("*.json"))
    for file in written:
        results.mkdir(parents=True, exist_ok=True)
        os.replace(file, results / file.name)
    if not any(file.stem == stem for file in written):
        (results / f"{stem}.json").unlink(missing_ok=True)
    discard(pending)


def discard(pending: Path) -> None:
    """Remove a run's pending folder. .pending/ itself stays: a notebook running beside this one may be creating
    its own folder in it."""
    shutil.rmtree(pending, ignore_errors=True)


# The cells that write a notebook's Analysis (its prose with {placeholders}, and the call that fills them in) carry
# this tag: the report shows the Analysis as the run filled it in, not its template as well; the notebook keeps both.
ANALYSIS_TAG = "remove-input"
# Printed output keeps its lines, as a terminal shows them: the template wraps them, which splits a progress bar's
# last figures onto a line of their own (test_acc=99.2 / 5); a line wider than the page scrolls instead.
_TEXT_OUTPUT_CSS = "<style>.jp-RenderedText pre{white-space:pre;overflow-x:auto}</style>\n"
# A notebook links another page of the reports as its folder sees it (../reports/leaderboard.html); its report lies
# beside that page, in whichever folder the run wrote to (reports/smoke/, a --reports folder), so the report's link
# drops the ../reports/. Anchors' href only: code and printed output show a tag's "<" as "&lt;" and stay as written.
_REPORTS_LINK = re.compile(r"""(<a\s[^>]*?(?<![\w-])href=["'])\.\./reports/""")
# A report opened on its own leads back to the index beside it, which lists every report and the leaderboard.
_BACK_TO_INDEX = ("\n<nav style='padding:8px 16px;font:14px system-ui,sans-serif'>"
                  "<a href='index.html'>← all reports</a></nav>")


def render_html(nb: Any, html: Path) -> str | None:
    """Write `nb` as an HTML report to `html`; None when done, else what went wrong, in a line."""
    try:
        exporter = HTMLExporter(template_name="lab", embed_images=True, config=Config(
            TagRemovePreprocessor={"enabled": True, "remove_input_tags": {ANALYSIS_TAG}}))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": html.stem}})
        body = _REPORTS_LINK.sub(r"\1", body.replace("</head>", _TEXT_OUTPUT_CSS + "</head>", 1))
        body = re.sub(r"<body[^>]*>", lambda tag: tag.group(0) + _BACK_TO_INDEX, body, count=1)
        write_atomic(html, body.encode())
    except Exception as exc:  # e.g. nbconvert installed without its templates
        return f"its HTML report could not be written ({type(exc).__name__}: {first_line(exc)})"
    return None


def publish_run(nb: Any, stem: str, folder: Path, pending: Path, status: str,
                 error: str | None) -> tuple[str, str | None]:
    """What a run of notebook `stem` leaves in the profile's `folder`: its executed copy `nb` (None: it could not
    be read), its HTML report and the results and models it wrote to `pending`; nothing new for an interrupted run.
    Returns the status and error, a report that cannot be rendered making an ok run an error."""
    executed, html = folder / f"{stem}.ipynb", folder / f"{stem}.html"
    if status == "interrupted":  # an interrupted run replaces nothing
        discard(pending)
        if html.exists():
            error += "; the report and results shown are the previous run's"
        return status, error
    # The previous run's report goes first, so that whatever fails below, the index never links it as this
    # run's; then the executed copy and the results, so that a report that cannot be rendered loses neither.
    html.unlink(missing_ok=True)
    if nb is None:  # the notebook could not even be read: no executed copy of this run
        executed.unlink(missing_ok=True)
    else:
        write_atomic(executed, nbformat.writes(nb).encode())
    publish_results(pending, folder, stem, stopped=error if status != "ok" else None)
    problem = None if nb is None else render_html(nb, html)
    if problem:
        status = "error" if status == "ok" else status  # a timeout stays a timeout
        problem += f"; the executed notebook is {executed}"
        error = f"{error}; {problem}" if error else problem
    return status, error
