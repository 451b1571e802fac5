import re
import tomllib

from mnist_utils.config import PROJECT_ROOT, get_profile

import pytest


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
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
    with pytest.raises(ValueError, match="MNIST_PROFILE"):
        get_profile("huge")
