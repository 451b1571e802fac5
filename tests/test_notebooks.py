"""Every notebook runs end to end in the smoke profile, and source notebooks are committed clean."""
import json

import nbformat
import pytest

from mnist_utils.config import PROJECT_ROOT, reports_dir
from mnist_utils.results import unfinished
from mnist_utils.run import execute_notebook, find_notebooks
from mnist_utils.series import waits_for

NOTEBOOKS = find_notebooks(PROJECT_ROOT / "notebooks", [])


def test_the_series_is_numbered_and_starts_with_the_eda():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_eda.ipynb"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), "one notebook per number, in order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_holds_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"
    assert notebook.metadata.kernelspec.name == "mnist-notebooks"
    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]  # as written, before nbformat fills any
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: every cell needs an id of its own (nbformat 4.5)"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Runs a notebook in the smoke profile once, into one reports folder, after the notebooks whose results it
    reads (config.READS_RESULTS_OF): any one case, run alone or in any order, finds what it needs."""
    reports, outcomes = tmp_path_factory.mktemp("reports"), {}

    def run(path):
        if path.stem not in outcomes:
            for stem in sorted(waits_for([p.stem for p in find_notebooks()])[path.stem]):  # unlisted: every earlier
                run(path.with_name(f"{stem}.ipynb"))
            outcomes[path.stem] = execute_notebook(path, reports, "smoke", 600)
        return reports, outcomes[path.stem]
    return run


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_the_smoke_profile(path, smoke_run):
    reports, outcome = smoke_run(path)
    assert outcome["status"] == "ok", outcome.get("error")
    smoke = reports_dir("smoke", reports)
    assert (smoke / f"{path.stem}.html").stat().st_size > 10_000
    results = json.loads((smoke / "results" / f"{path.stem}.json").read_text())
    assert results["notebook"] == path.stem, "the notebook's Report is named after its file"
    assert results["profile"] == "smoke"
    assert results["targets"], "every notebook declares its targets"
    assert results["analysis"], "every notebook shows an Analysis block"
    assert unfinished(results) is None, "a whole run: it checks its claims and ends in its Analysis"
