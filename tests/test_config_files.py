"""Config files: bases, names and paths, what a file must say, and a file that cannot be read, each one clear error."""
import os
import re

import pytest
import yaml

from mnist_utils.config_values import load_yaml
from mnist_utils.config_files import CONFIGS_DIR, config_files
from mnist_utils.recipes import PRETRAINED, ConfigError, load_config, model_names


def test_a_file_naming_another_model_than_its_base_takes_none_of_the_base_s_model_args(tmp_path):
    """A base's model_args were its model's: a file that trains another architecture gives that one's own, or
    none; one that keeps the base's model changes its model_args key by key."""
    (tmp_path / "other.yaml").write_text("base: step3.yaml\nmodel: Model_2\n")
    assert load_config(tmp_path / "other.yaml").model_args == {}, "Model_2 with its defaults, not Model_3's widths"
    (tmp_path / "own.yaml").write_text("base: step3.yaml\nmodel: Model_2\nmodel_args: {dropout: 0.1}\n")
    assert load_config(tmp_path / "own.yaml").model_args == {"dropout": 0.1}
    (tmp_path / "same.yaml").write_text("base: step2.yaml\nmodel: Model_2\nmodel_args: {widths: [8, 8, 8, 8, 8]}\n")
    assert load_config(tmp_path / "same.yaml").model_args == {"dropout": 0.05, "widths": [8] * 5}, "key by key"
    (tmp_path / "shared.yaml").write_text("model_args: {dropout: 0.1}\n")  # a base naming no model: its args stay
    (tmp_path / "child.yaml").write_text("base: shared.yaml\nmodel: Model_2\n")
    assert load_config(tmp_path / "child.yaml").model_args == {"dropout": 0.1}


def test_a_command_line_naming_another_model_takes_none_of_the_config_s_model_args():
    assert load_config("step3", ["model=Model_2"]).model_args == {}, "Model_2 with its defaults, as a file would"
    assert load_config("step3", ["model_args.dropout=0.1", "model=Model_2"]).model_args == {"dropout": 0.1}, \
        "what the command line itself gives is kept, in any order"
    assert load_config("step3", ["model=Model_3"]).model_args == load_config("step3").model_args, "the same model"


def test_a_config_naming_no_model_keeps_its_model_args_for_the_model_the_command_line_names(tmp_path):
    (tmp_path / "shared.yaml").write_text("model_args: {dropout: 0.1}\n")  # as a base naming no model keeps them
    assert load_config(tmp_path / "shared.yaml", ["model=Model_2"]).model_args == {"dropout": 0.1}


def test_a_config_file_whose_tag_cannot_make_its_value_is_one_error_naming_the_file(tmp_path):
    (tmp_path / "tagged.yaml").write_text("model: Model_3\nepochs: !!bool maybe\n")
    with pytest.raises(ConfigError, match=r"tagged.yaml: not valid YAML: a value its tag cannot make \(KeyError"):
        load_config(tmp_path / "tagged.yaml")


def test_a_key_given_twice_is_refused_where_yaml_would_keep_the_last_silently(tmp_path):
    (tmp_path / "twice.yaml").write_text("base: step1.yaml\nepochs: 1\naugment:\n  rotation: 5\n  rotation: 10\n")
    with pytest.raises(ConfigError, match=r"twice.yaml, line 5, column 3: not valid YAML: 'rotation' is given twice"):
        load_config(tmp_path / "twice.yaml")
    (tmp_path / "once.yaml").write_text("base: step1.yaml\nepochs: 1\naugment:\n  rotation: 5\n")
    assert load_config(tmp_path / "once.yaml").augment.rotation == 5, "written once, it loads"
    # merge keys copy keys in, which a mapping may then override: no key is written twice there
    merges = "a: &a {x: 1, y: 1}\nb: &b\n  <<: *a\n  x: 2\nc:\n  <<: *b\n  y: 3\n"
    assert load_yaml(merges) == yaml.safe_load(merges) and load_yaml(merges)["b"] == {"x": 2, "y": 1}


def test_a_missing_config_lists_the_ones_there_are(tmp_path):
    with pytest.raises(ConfigError, match=r"no such config file; choose one of .*step3"):
        load_config("step4")
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("base: gone.yaml\nepochs: 3\n")
    with pytest.raises(ConfigError, match=rf"orphan.yaml: base gone.yaml: no such file in {re.escape(str(tmp_path))} "
                                          rf"or {re.escape(str(CONFIGS_DIR))}; name a config file in either"):
        load_config(tmp_path / "orphan.yaml")
    (tmp_path / "broken.yaml").write_text("epochs: [3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml, line 2, column 1: not valid YAML: expected ',' or '\]', "
                                          r"but got '<stream end>' \(while parsing a flow sequence from line 1, "
                                          r"column 9\)$"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected keys and values"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary.yaml: not a text file \(UTF-8\): a config is YAML text$"):
        load_config(tmp_path / "binary.yaml")
    with pytest.raises(ConfigError, match=r"a folder; name a config file \(a .yaml file\) in it$"):
        load_config(tmp_path)
    os.mkfifo(tmp_path / "pipe.yaml")  # there, but not a file: it was 'no such config file'
    with pytest.raises(ConfigError, match=r"pipe.yaml: not a file; name a config file \(a .yaml file\)$"):
        load_config(tmp_path / "pipe.yaml")


def test_a_config_of_the_project_is_found_by_its_name_with_or_without_yaml(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the project's folder: the name alone finds configs/step3.yaml
    assert load_config("step3.yaml") == load_config("step3") == load_config(CONFIGS_DIR / "step3.yaml")
    (tmp_path / "step3.yaml").write_text(f"base: {CONFIGS_DIR / 'step3.yaml'}\n"
                                         "epochs: 3\nanneal_epochs: 3\nclean_epochs: 1\n")
    assert load_config("step3.yaml").epochs == 3, "a file of that name where it runs wins"


def test_a_config_must_name_its_model_itself_or_through_its_base(tmp_path):
    """The Recipe's default model is for code: an empty file, or one that never says what it trains, is refused."""
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "nomodel.yaml").write_text("epochs: 3\n")
    for name in ("empty.yaml", "nomodel.yaml"):
        with pytest.raises(ConfigError, match=rf"{name}: no model; name the architecture, e.g. model: Model_3 "
                                              r"\(models.py has Model_1, Model_2, Model_3, .*; or model: pretrained"):
            load_config(tmp_path / name)
    assert load_config(tmp_path / "empty.yaml", ["model=Model_2"]).model == "Model_2", "or the command line does"
    (tmp_path / "variant.yaml").write_text(f"base: {CONFIGS_DIR / 'step1.yaml'}\nepochs: 3\n")
    assert load_config(tmp_path / "variant.yaml").model == "Model_1", "named by the base"
    # A misspelt key is named as one, not read as a missing model; keys and bases that are not names are refused.
    for text, message in (("modle: Model_3\n", "unknown key modle; did you mean model?"),
                          ("3: 4\nmodel: Model_3\n", "unknown key 3; the keys are"),
                          ("model: Model_3\naugment: {3: 1}\n", "augment: unknown key 3; the keys are"),
                          ("base: 3\n", r"base: expected a config file's name \(base: step3.yaml\), got 3")):
        (tmp_path / "odd.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "odd.yaml")


def test_every_config_and_search_start_names_its_model_directly_or_through_its_base():
    files = sorted(CONFIGS_DIR.rglob("*.yaml"))
    configs = [f for f in files if "candidates" not in yaml.safe_load(f.read_text())]  # searches are not configs
    assert {f.name for f in configs} >= {"step3.yaml", "step3_start.yaml"}
    for path in configs:
        assert load_config(path).model in model_names() + [PRETRAINED]


def test_a_config_kept_elsewhere_builds_on_a_project_config_by_its_name(tmp_path):
    """The base is looked for beside the file first, then in configs/."""
    (tmp_path / "mine.yaml").write_text("base: step3.yaml\nlr: 0.2\n")
    recipe = load_config(tmp_path / "mine.yaml")
    assert recipe.replace(lr=0.1, name="step3") == load_config("step3") and recipe.lr == 0.2
    assert [path for path, _ in config_files(tmp_path / "mine.yaml")] == [CONFIGS_DIR / "step3.yaml",
                                                                           tmp_path / "mine.yaml"]
    (tmp_path / "step3.yaml").write_text("model: Model_1\ntitle: a local step3\n")  # beside it: that one comes first
    assert load_config(tmp_path / "mine.yaml").model == "Model_1"
    (tmp_path / "inside.yaml").write_text("base: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"base gone.yaml: no such file in .* or .*configs; name a config file"):
        load_config(tmp_path / "inside.yaml")
    (tmp_path / "deeper.yaml").write_text("base: sub/gone.yaml\n")  # both places, with the base's folder
    with pytest.raises(ConfigError, match=rf"no such file in {re.escape(str(tmp_path / 'sub'))} or "
                                          rf"{re.escape(str(CONFIGS_DIR / 'sub'))}; name"):
        load_config(tmp_path / "deeper.yaml")
