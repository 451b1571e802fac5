"""The search command: its file is checked before anything trains, each candidate's row is written as soon as it
is done, a rerun skips what is recorded, and the notebook's table comes from the record."""
import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from mnist_utils import search
from mnist_utils.engine import History
from mnist_utils.recipes import load_config


def fake_runs(recipe, data, device):
    """'Trained' seeds whose epochs are known: seed s scores 99 + s / 10 + epoch / 100."""
    runs = []
    for seed in recipe.seeds:
        history = History()
        history.rows = [{"epoch": e, "test_acc": 99.0 + seed / 10 + e / 100, "train_acc": 99.5} for e in range(1, 4)]
        runs.append((torch.nn.Linear(3, 2), history))
    return runs


@pytest.fixture
def search_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "full")
    monkeypatch.setattr(search, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(search, "load_data", lambda: SimpleNamespace(train=range(60_000)))  # its size, no images
    path = tmp_path / "search.yaml"
    path.write_text('config: step3\nrecord: docs/record.json\ncandidates:\n'
                    '  - ["model_args.widths=[8,8,12,10,10]"]\n  - ["epochs=5", "anneal_epochs=5", "lr=0.1"]\n')
    return path


def test_a_bad_search_file_is_one_clear_error_before_any_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(search, "train_seeds", lambda *a: pytest.fail("nothing may train"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: step3\ncandidates: [[lr=0.1]]\n")
    assert search.main([str(bad)]) == 2 and "exactly the keys config, record and candidates" in capsys.readouterr().err
    bad.write_text("config: step3\nrecord: r.json\ncandidates: [[lr=0.1], [\"epohcs=3\"]]\n")
    assert search.main([str(bad)]) == 2 and "epohcs" in capsys.readouterr().err
    bad.write_text("config: step3\nrecord: r.json\ncandidates: [[lr=0.1], [bf16=true]]\n")  # what packing cannot train
    assert search.main([str(bad)]) == 2 and "packed seeds train in float32" in capsys.readouterr().err


@pytest.mark.parametrize("text, said", [
    ("config: step3\nrecord: r.json\ncandidates: [[], [model_args.foo=1]]\n",  # a model its args cannot build:
     "do not fit Model_3 on 28×28 digits"),  # said before the first candidate trains, not after it
    ("config: step3\nrecord: r.json\ncandidates: [[], [\"model_args.widths=[0,0,0,0,0]\"]]\n", "do not fit Model_3"),
    ("config: step3\nrecord:\ncandidates: [[]]\n",
     "record is a file name such as reports/searches/step3.json, got None"),
    ("config: [step3]\nrecord: r.json\ncandidates: [[]]\n", "config is a file name such as step3, got ['step3']"),
    ("config: step3\nrecord: 5\ncandidates: [[]]\n", "record is a file name"),
    ("config: [step3\n", "bad.yaml, line 2, column 1: not a valid search file (YAML): expected ',' or ']'"),
    ("config: step3\ncandidates: [[]]\nextra: 1\n",
     "exactly the keys config, record and candidates, got ['candidates', 'config', 'extra']")])
def test_a_search_file_the_search_cannot_run_is_refused_in_one_line_before_any_training(text, said, tmp_path,
                                                                                          monkeypatch, capsys):
    monkeypatch.setattr(search, "train_seeds", lambda *a: pytest.fail("nothing may train"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    state = torch.get_rng_state()
    assert search.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert torch.equal(torch.get_rng_state(), state), "the models built to be checked drew nothing a run would"


def test_each_candidate_is_recorded_and_a_rerun_skips_what_is_done(search_file, monkeypatch):
    trained = []
    monkeypatch.setattr(search, "train_seeds", lambda recipe, data, device: trained.append(recipe) or fake_runs(recipe, data, device))
    rows = search.run_search(search_file)
    assert [r["changes"] for r in rows] == [["model_args.widths=[8,8,12,10,10]"], ["epochs=5", "anneal_epochs=5", "lr=0.1"]]
    assert trained[0].model_args == {"widths": [8, 8, 12, 10, 10]} and trained[1].lr == 0.1
    first = rows[0]
    assert first["lowest_last3"] == [pytest.approx(99.01 + s / 10) for s in range(1, 6)]
    assert first["lowest"] == pytest.approx(99.11) and first["seeds_met"] == 2  # seeds 4 and 5 reach 99.4
    assert first["parameters"] == 8 and first["final_mean"] == pytest.approx(99.33)
    assert not search.held_on_every_seed(first), "2 of 5 seeds met the goal"
    assert search.held_on_every_seed(first | {"seeds": [4, 5]})
    assert json.loads((search_file.parent / "docs/record.json").read_text()) == rows

    assert search.run_search(search_file) == rows and len(trained) == 2, "recorded candidates are not run again"
    search.run_search(search_file, only=[1])
    assert len(trained) == 3 and len(json.loads((search_file.parent / "docs/record.json").read_text())) == 2

    table = search.search_table(search.recorded_candidates(search_file))
    assert [r["changes"] for r in table] == ["model_args.widths=[8,8,12,10,10]", "epochs=5, anneal_epochs=5, lr=0.1"]
    assert table[0]["seeds meeting the goal"] == "2/5" and table[0]["lowest"] == first["lowest"]


def test_a_rerun_replaces_its_own_row_and_keeps_another_recipes_row_with_the_same_changes(search_file, monkeypatch):
    monkeypatch.setattr(search, "train_seeds", fake_runs)
    rows = search.run_search(search_file)
    other = {**rows[1], "recipe": {**rows[1]["recipe"], "epochs": 99}, "lowest": 0.0}  # the start config was different
    record = search_file.parent / "docs/record.json"
    record.write_text(json.dumps(rows + [other]))
    after = search.run_search(search_file, only=[1])
    assert len(after) == 3 and other in after, "another recipe's row is not this candidate's to replace"
    assert [r["changes"] for r in after].count(["epochs=5", "anneal_epochs=5", "lr=0.1"]) == 2
    assert search.recorded_candidates(search_file)[1]["lowest"] == rows[1]["lowest"], "the table shows this recipe's row"


def test_the_projects_search_files_load_every_candidate_and_read_the_same_from_any_folder(monkeypatch, tmp_path):
    from mnist_utils.config import PROJECT_ROOT

    files = sorted((PROJECT_ROOT / "configs" / "searches").glob("*.yaml"))
    searches = [f for f in files if "candidates" in yaml.safe_load(f.read_text())]  # not the configs they start from
    assert searches, "configs/searches holds at least the search behind Step 3"
    monkeypatch.chdir(tmp_path)  # a notebook's kernel runs in notebooks/, not at the root
    for path in searches:
        relative = path.relative_to(PROJECT_ROOT)
        spec = search.read_search(relative)
        assert len(search.candidate_recipes(spec)) == len(spec["candidates"])
        assert len(search.recorded_candidates(relative)) == len(spec["candidates"]), "every candidate has its row"


def test_only_must_name_a_candidate_of_the_file(search_file, capsys):
    assert search.main([str(search_file), "--only", "7"]) == 2
    assert "--only [7]: the search has candidates 0 to 1" in capsys.readouterr().err


def test_the_record_of_a_search_not_yet_run_names_the_command(search_file):
    with pytest.raises(FileNotFoundError, match="python -m mnist_utils.search"):
        search.recorded_candidates(search_file)


def test_a_row_written_before_a_recipe_key_existed_matches_only_that_keys_default():
    recipe = load_config("step3")
    row = {"recipe": {k: v for k, v in recipe.to_dict().items() if k != "threads"}}  # as older records hold it
    assert search._trained(row, recipe)
    assert not search._trained(row, recipe.replace(threads=1)), "one thread sums differently: another run"


def test_what_a_run_measures_after_each_epoch_does_not_make_it_another_run():
    recipe = load_config("step3")
    row = {"recipe": recipe.replace(train_probe=0).to_dict()}  # the fresh-seed record, written before the probe
    assert recipe.train_probe and search._trained(row, recipe)
    older = {"recipe": {**recipe.to_dict(), "eval_batch_size": 1000}}  # the record's rows, tested in batches of 1,000
    assert search._trained(older, recipe), "how many images are tested at once changes no accuracy"
    assert not search._trained(row, recipe.replace(lr=0.2)), "a setting that trains differently still tells runs apart"


@pytest.mark.parametrize("damage", ['[{"changes": ["lr=0.1"], "lowest"', "{}", '[{"lowest": 99.5}]', "\udcff"])
def test_a_record_that_is_not_one_is_named_and_never_written_over(damage, search_file, monkeypatch, capsys):
    monkeypatch.setattr(search, "train_seeds", lambda *a: pytest.fail("nothing may train"))
    record = search_file.parent / "docs" / "record.json"
    record.parent.mkdir()
    record.write_bytes(damage.encode("utf-8", "surrogateescape"))
    assert search.main([str(search_file)]) == 2
    said = capsys.readouterr().err
    assert f"error: {record} is not a search record, a JSON list of rows, each with its changes (" in said
    assert ("(row 0 has none)" in said) == damage.startswith('[{"lowest"'), "the row without its changes is named"
    assert record.read_bytes() == damage.encode("utf-8", "surrogateescape"), "left as it was, for a look"


def test_a_record_that_cannot_be_written_is_refused_before_the_first_candidate_trains(search_file, monkeypatch, capsys):
    monkeypatch.setattr(search, "train_seeds", lambda *a: pytest.fail("nothing may train"))
    (search_file.parent / "docs").write_text("a file where the record's folder would be")
    assert search.main([str(search_file)]) == 2
    err = capsys.readouterr().err
    assert "error: the record cannot be written: " in err
    assert err.rstrip().endswith("another `record:` (a JSON file, e.g. reports/searches/mine.json)"), "a whole sentence"


def test_a_candidate_whose_training_diverged_on_some_seeds_says_so_in_its_row_line_and_table(search_file, monkeypatch,
                                                                                            capsys):
    def diverging(recipe, data, device):  # seeds 2 and 4: their loss became nan in the last epoch
        runs = fake_runs(recipe, data, device)
        for seed, (_, history) in zip(recipe.seeds, runs):
            for row in history.rows:
                row["train_loss"] = float("nan") if seed in (2, 4) and row["epoch"] == 3 else 0.1
        return runs
    monkeypatch.setattr(search, "train_seeds", diverging)
    rows = search.run_search(search_file, only=[1])
    assert rows[0]["diverged"] == [2, 4] and "diverged on seeds 2, 4 (the training loss is not finite): a lower lr " \
        "than 0.1 may keep it finite" in capsys.readouterr().out
    monkeypatch.setattr(search, "train_seeds", fake_runs)  # no train_loss recorded: nothing said to diverge
    rows = search.run_search(search_file, only=[0])
    assert [row["diverged"] for row in rows] == [[2, 4], []]
    table = search.search_table(search.recorded_candidates(search_file))
    assert [row["seeds meeting the goal"] for row in table] == ["2/5", "2/5, 2 diverged"]
    written_before = {key: value for key, value in rows[0].items() if key != "diverged"}  # before it was kept
    assert search.search_table([written_before])[0]["seeds meeting the goal"] == "2/5"


def test_under_the_smoke_profile_a_search_trains_cut_runs_into_a_record_of_its_own(search_file, monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    trained = []
    monkeypatch.setattr(search, "train_seeds", lambda recipe, *rest: trained.append(recipe) or fake_runs(recipe, *rest))
    search.run_search(search_file)
    assert [(r.epochs, len(r.seeds)) for r in trained] == [(1, 2), (1, 2)], "as the smoke profile cuts a recipe"
    assert len(json.loads((tmp_path / "reports" / "smoke" / "docs" / "record.json").read_text())) == 2  # its own place
    assert not (search_file.parent / "docs" / "record.json").exists(), "the real record is the full profile's"
    with pytest.raises(FileNotFoundError, match="run MNIST_PROFILE=full python -m mnist_utils.search"):
        search.recorded_candidates(search_file)  # notebook 03 reads the real record, whatever its profile
    monkeypatch.setenv("MNIST_PROFILE", "full")
    rows = search.run_search(search_file)
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    assert search.recorded_candidates(search_file) == rows and [r.epochs for r in trained[2:]] == [15, 5]


def test_a_search_file_is_read_from_the_current_folder_first_and_needs_a_candidate(search_file, monkeypatch, tmp_path,
                                                                                   capsys):
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    (elsewhere / "mine.yaml").write_text(search_file.read_text())
    monkeypatch.chdir(elsewhere)
    assert len(search.read_search("mine.yaml")["candidates"]) == 2  # not looked for at the project's root only
    (elsewhere / "mine.yaml").write_text("config: step3\nrecord: r.json\ncandidates: []\n")
    assert search.main(["mine.yaml"]) == 2 and "candidates is a list, not empty," in capsys.readouterr().err



def test_changes_from_the_start_give_the_pick_back():
    """What notebook 03 lists under its search table: every training setting the pick changed from the search's
    start, nested ones key by key, written so that applying them to the start gives the pick again."""
    start, pick = load_config("configs/searches/step3_start.yaml"), load_config("step3")
    changes = search.changes_from(start, pick)
    assert "augment.scale=[0.9,1.1]" in changes and not any(c.split("=")[0] in search.NOT_TRAINING for c in changes)
    rebuilt = load_config("configs/searches/step3_start.yaml", changes).to_dict()
    assert {k: v for k, v in rebuilt.items() if k not in search.NOT_TRAINING} == \
        {k: v for k, v in pick.to_dict().items() if k not in search.NOT_TRAINING}
    assert search.changes_from(pick, pick.replace(eval_batch_size=1000, title="another")) == [], "no training changed"
    assert search.changes_from(pick, pick.replace(ema=None)) == ["ema=null"]
    assert search.changes_from(pick, pick) == []
