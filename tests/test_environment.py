import os
import re
import shutil
import subprocess
import sys

from mnist_utils.config import PROJECT_ROOT, get_profile

import pytest


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    # pyproject.toml's list read as text: tomllib came with Python 3.11, and the project runs on 3.10 too
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    declared = re.findall(r'"([^"]+)"', re.search(r"^dependencies = \[(.*?)^\]", pyproject, flags=re.M | re.S)[1])
    assert any(dep.startswith("torch==") for dep in declared), "the whole list, as pyproject.toml writes it"
    text = (PROJECT_ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = re.findall(r"^\s+-\s+(\S+)\s*$", pip_section, flags=re.M)
    assert sorted(listed) == sorted(declared)


def test_profiles(monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    smoke = get_profile()
    assert smoke.is_smoke and smoke.epochs(15) == 1 and smoke.subset(60000) < 60000
    monkeypatch.delenv("MNIST_PROFILE")
    full = get_profile()
    assert full.name == "full" and full.epochs(15) == 15 and full.subset(60000) == 60000
    with pytest.raises(ValueError, match="Unknown profile 'huge': use one of full, smoke"):
        get_profile("huge")


# ----------------------------------------------------------------------------- `make setup` with a bad interpreter

FAKE_PYTHON = """#!/bin/sh
# A Python without the venv module (as Debian's python3 is without python3-venv); FAKE_OLD=1 also makes it 3.9.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    printf '#!/bin/sh\\necho "No module named pip" >&2\\nexit 1\\n' > "$3/bin/python"
    chmod +x "$3/bin/python"
    echo "The virtual environment was not created successfully because ensurepip is not available." >&2
    exit 1
fi
if [ "$FAKE_OLD" = 1 ]; then export PYTHONPATH="$(dirname "$0")/old"; fi
exec {real} "$@"
"""


@pytest.fixture
def make_setup(tmp_path):
    """Runs `make setup` in a copy of the project's Makefile with the fake interpreter above."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    tools = tmp_path / "tools"
    (tools / "old").mkdir(parents=True)
    (tools / "old" / "sitecustomize.py").write_text(
        "import sys\nsys.version_info = (3, 9, 18, 'final', 0)\nsys.version = '3.9.18 (main)'\n")
    fake = tools / "python"
    fake.write_text(FAKE_PYTHON.replace("{real}", sys.executable))
    fake.chmod(0o755)

    def run(**env):
        return subprocess.run(["make", "setup", f"PYTHON={fake}"], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=120)
    return run


def test_a_python_without_venv_leaves_no_half_made_environment(make_setup, tmp_path):
    done = make_setup()
    assert done.returncode != 0
    assert "could not make a virtual environment with pip in .venv (removed)" in done.stderr
    assert "apt install python3-venv" in done.stderr and "make PYTHON=python3.12 setup" in done.stderr
    assert not (tmp_path / ".venv").exists()

    # A .venv without pip, as an interrupted or failed creation leaves it, is not trusted either.
    subprocess.run([tmp_path / "tools" / "python", "-m", "venv", tmp_path / ".venv"], capture_output=True)
    assert (tmp_path / ".venv" / "bin" / "python").exists()
    done = make_setup()
    assert done.returncode != 0 and not (tmp_path / ".venv").exists()


def test_an_old_python_is_refused_even_under_pythonoptimize_naming_how_to_choose_another(make_setup, tmp_path):
    done = make_setup(FAKE_OLD="1", PYTHONOPTIMIZE="1")
    assert done.returncode != 0
    assert "error: Python 3.10+ needed, found 3.9.18" in done.stderr
    assert "Choose another interpreter: make PYTHON=python3.12 setup" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_runners_headless_and_pending_variables_count_as_unset_when_set_empty(monkeypatch, tmp_path):
    # `export MNIST_RESULTS_PENDING=` clears it in a shell: results must then go straight into place, not to ./
    from mnist_utils.config import HEADLESS_ENV, PENDING_ENV, headless, pending_dir
    monkeypatch.setenv(HEADLESS_ENV, "")
    monkeypatch.setenv(PENDING_ENV, "")
    assert not headless() and pending_dir() is None
    monkeypatch.setenv(HEADLESS_ENV, "1")
    monkeypatch.setenv(PENDING_ENV, str(tmp_path / ".pending" / "01_x"))
    assert headless() and pending_dir() == tmp_path / ".pending" / "01_x"


def test_make_train_without_a_config_says_so_before_setting_up_or_fetching_anything(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):  # no .venv here: setup would take minutes
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    alone = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(["make", "train"], cwd=tmp_path, capture_output=True, text=True, env=alone, timeout=60)
    assert done.returncode == 2 and not (tmp_path / ".venv").exists()
    assert done.stdout == "" and done.stderr.startswith("error: name a config: make train CONFIG=configs/step3.yaml")
    planned = subprocess.run(["make", "-n", "train", "CONFIG=configs/step3.yaml"], cwd=tmp_path, capture_output=True,
                             text=True, env=alone, timeout=60).stdout
    assert "mnist_utils.data" in planned and "mnist_utils train --config configs/step3.yaml" in planned
