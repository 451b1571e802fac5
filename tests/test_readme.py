"""`make readme` given a README, a results file or an output it cannot use: one line naming it and the fix, no
traceback, and the README left as it was."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_utils.config import PROJECT_ROOT
from mnist_utils.readme import README_END, README_START, main
from mnist_utils.report import Report
from test_report import BENCH


@pytest.fixture
def project(tmp_path, monkeypatch):
    """What `make readme` reads: a README, a notebook, its full-profile results and the benchmark's figures."""
    monkeypatch.setenv("MNIST_PROFILE", "full")
    report = Report("01_demo", "Demo", output_dir=tmp_path / "reports" / "results")
    report.record(acc=99.5)
    report.check("Accurate", True, "99.5%")
    report.show_analysis("Done.")
    (tmp_path / "reports" / "bench.json").write_text(json.dumps(BENCH))
    (tmp_path / "README.md").write_text(f"intro\n{README_START}\nold\n{README_END}\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_demo.ipynb").write_text("{}")
    return tmp_path


def make_readme(project):
    return main(project / "README.md", project / "reports", project / "notebooks")


def as_it_is(path):
    return path.read_bytes() if path.is_file() else None


RESTORE = "restore README.md with `git checkout README.md` and run `make readme` again."
SAID = {  # of each damage to the README
    "missing": f"cannot be read (No such file or directory): {RESTORE}",
    "a folder": f"is a folder, not a file: remove it, then {RESTORE}",
    "latin-1": "is not UTF-8 text (byte 3: invalid continuation byte): save it as UTF-8 and run `make readme` again.",
    "markers swapped": f"lacks the markers {README_START} … {README_END}, in that order: put them around its results "
                       "section and run `make readme` again.",
}


@pytest.mark.parametrize("damage", SAID)
def test_a_readme_it_cannot_use_is_named_in_one_line_with_the_fix(project, capsys, damage):
    readme = project / "README.md"
    text = readme.read_text()
    if damage != "markers swapped":
        readme.unlink()
    if damage == "a folder":
        readme.mkdir()
    elif damage == "latin-1":  # as an editor saving in the machine's old code page writes "café"
        readme.write_bytes("café\n".encode("latin-1") + text.encode())
    elif damage == "markers swapped":
        readme.write_text(text.replace(README_START, "@").replace(README_END, README_START).replace("@", README_END))
    before = as_it_is(readme)
    assert make_readme(project) == 1
    assert capsys.readouterr().err == f"error: {readme} {SAID[damage]}\n"
    assert as_it_is(readme) == before


@pytest.mark.parametrize("field", ["hardware", "targets", "seconds"])
def test_a_results_file_with_a_null_field_is_set_aside_with_the_fix(project, capsys, field):
    results = project / "reports" / "results" / "01_demo.json"
    results.write_text(json.dumps({**json.loads(results.read_text()), field: None}))  # edited by hand
    kind = {"hardware": "a string", "targets": "a list", "seconds": "a number"}[field]
    assert make_readme(project) == 1
    assert capsys.readouterr().err == (
        f"warning: {results} is not a readable results file ('{field}' is null, not {kind}); set aside as "
        "01_demo.json.corrupt. Run notebook 01_demo again to rewrite it.\n"
        "error: No full-profile results for 01_demo: run `make notebooks NB=01` first.\n")
    assert "old" in (project / "README.md").read_text()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full, the device every write to fails")
def test_make_readme_with_its_output_on_a_full_disk_ends_in_one_line(project):
    # a copy of the package, whose PROJECT_ROOT is `project`: the command rewrites that README, not this one's
    shutil.copytree(PROJECT_ROOT / "mnist_utils", project / "mnist_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "MNIST_REPORTS_DIR": str(project / "reports"), "PYTHONPATH": str(project)}
    with open("/dev/full", "w") as full:  # every write to it: ENOSPC
        done = subprocess.run([sys.executable, "-m", "mnist_utils.readme"], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=project, env=env, timeout=300)
    assert (done.returncode, done.stderr) == (1, "error: the output could not be written (No space left on device): "
                                                 "send it where there is room\n")
    assert "01_demo: Demo" in (project / "README.md").read_text(), "the README itself was written"


def test_a_readme_it_may_not_read_is_told_to_be_made_readable(project, capsys, monkeypatch):
    readme, read = project / "README.md", Path.read_text
    def refused(path, *args, **kwargs):  # as a README of another user's, mode 600, reads (root reads anything)
        if path == readme:
            raise PermissionError(13, "Permission denied", str(path))
        return read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refused)
    assert make_readme(project) == 1
    assert capsys.readouterr().err == (f"error: {readme} cannot be read (Permission denied): make it readable and run "
                                       "`make readme` again.\n")
