"""What a notebook's run leaves in the reports folder (mnist_utils/publish.py), on folders made by hand: no kernel."""
import json
import os
from pathlib import Path

from mnist_utils.config import first_line
from mnist_utils.publish import publish_results, publish_run


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
