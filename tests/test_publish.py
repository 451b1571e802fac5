"""What a notebook's run leaves in the reports folder (mnist_utils/publish.py), on folders made by hand: no kernel."""
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from mnist_utils.config import find_notebooks, first_line
from mnist_utils.publish import ANALYSIS_TAG, publish_results, publish_run, render_html


def test_an_error_is_shown_by_its_first_line_that_is_not_blank_cut_to_the_limit() -> None:
    assert first_line("\n   \n  disk full  \n  more detail") == "disk full"
    assert first_line("x" * 200) == "x" * 200, "exactly at the limit: whole"
    assert first_line("x" * 201) == "x" * 199 + "…" and len(first_line("y" * 500, limit=50)) == 50
    assert first_line(None) == "None" and first_line("") == ""


def test_a_run_that_wrote_no_results_of_its_own_leaves_none_and_keeps_the_other_notebooks(tmp_path) -> None:
    folder, pending = tmp_path / "reports", tmp_path / "reports" / ".pending" / "02_x"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "02_x.json").write_text('{"notebook": "02_x", "title": "Old numbers"}')
    (folder / "results" / "01_y.json").write_text('{"notebook": "01_y"}')
    (pending / "models").mkdir(parents=True)
    (pending / "models" / "m.json").write_text("{}")

    publish_results(pending, folder, "02_x")

    # the index must not show the previous run's numbers as this run's
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["01_y.json"]
    assert (folder / "models" / "m.json").exists() and not pending.exists()


def test_a_runs_models_move_weights_first_then_metadata_as_a_save_renames_them(tmp_path, monkeypatch) -> None:
    folder, pending, moved = tmp_path / "reports", tmp_path / "reports" / ".pending" / "02_x", []
    (pending / "models").mkdir(parents=True)
    for name in ("a.json", "a.safetensors", "b.json", "b.safetensors"):
        (pending / "models" / name).write_text(name)
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (moved.append(Path(target).name),
                                                               real_replace(source, target)))
    publish_results(pending, folder, "02_x")
    assert moved == ["a.safetensors", "b.safetensors", "a.json", "b.json"], "a name's metadata only after its weights"


def test_a_notebook_that_could_not_be_read_leaves_no_executed_copy_or_report_of_an_earlier_run(tmp_path) -> None:
    folder, pending = tmp_path / "reports", tmp_path / "reports" / ".pending" / "03_z"
    pending.mkdir(parents=True)
    for name in ("03_z.ipynb", "03_z.html"):
        (folder / name).write_text("the previous run's")
    (pending / "03_z.json").write_text(json.dumps({"notebook": "03_z", "title": "t"}))

    status, error = publish_run(None, "03_z", folder, pending, "error", "NotJSONError: not a notebook")

    assert (status, error) == ("error", "NotJSONError: not a notebook")
    assert not (folder / "03_z.ipynb").exists() and not (folder / "03_z.html").exists()
    published = json.loads((folder / "results" / "03_z.json").read_text())
    assert published["stopped"] == "NotJSONError: not a notebook", "what it wrote is kept, marked as stopped"


def test_the_report_shows_an_analysis_as_filled_in_without_its_template(tmp_path) -> None:
    template = nbformat.v4.new_code_cell('ANALYSIS = """{seeds_met} of {seeds} seeds"""\nshow(ANALYSIS)',
                                         metadata={"tags": [ANALYSIS_TAG]})
    template.outputs = [nbformat.v4.new_output("stream", name="stdout", text="5 of 5 seeds\n")]
    notebook = nbformat.v4.new_notebook(cells=[template, nbformat.v4.new_code_cell("accuracy = 99.45")])
    assert render_html(notebook, tmp_path / "06_x.html") is None
    html = (tmp_path / "06_x.html").read_text()
    assert "5 of 5 seeds" in html and "accuracy" in html, "the filled-in Analysis and every other cell's code"
    assert "seeds_met" not in html and "ANALYSIS" not in html, "not the template as well"


def test_a_reports_page_the_notebook_links_is_linked_beside_the_report_in_any_reports_folder(tmp_path) -> None:
    quoted = nbformat.v4.new_code_cell("print('<a href=\"../reports/x.html\">')")
    quoted.outputs = [nbformat.v4.new_output("stream", name="stdout", text='<a href="../reports/x.html">\n')]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "The [leaderboard](../reports/leaderboard.html) beside the [index page](../reports/index.html), as 06 links "
        "them; the [data](https://example.org/reports/x.html), <a data-href=\"../reports/y.html\">y</a>"), quoted])
    folder = tmp_path / "elsewhere" / "smoke"  # not reports/: the notebook's own link would miss it
    folder.mkdir(parents=True)
    assert render_html(notebook, folder / "06_x.html") is None
    html = (folder / "06_x.html").read_text()
    assert 'href="leaderboard.html"' in html and 'href="index.html"' in html and '<a href="../reports/' not in html
    assert html.count('&lt;a href="../reports/x.html"&gt;') == 2, "code and its output are shown as written"
    assert 'href="https://example.org/reports/x.html"' in html and 'data-href="../reports/y.html"' in html, (
        "a link elsewhere, or another attribute, is left as it is")


@pytest.mark.parametrize("path", find_notebooks(), ids=lambda path: path.stem)
def test_every_cell_that_writes_an_analysis_and_no_other_is_tagged_to_hide_its_code_in_the_report(path) -> None:
    writes_analysis = re.compile(r'^[A-Z_]*ANALYSIS[A-Z_]* = """|show_analysis\(', re.M)
    for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            tagged = ANALYSIS_TAG in cell.metadata.get("tags", [])
            assert tagged == bool(writes_analysis.search(cell.source)), (
                f"{path.name}, cell {number}: " + ("tag it" if not tagged else "untag it") + f" {ANALYSIS_TAG!r}: the "
                "report hides the code of the cells that write the Analysis (its template and the call filling it in)")
