"""Which notebook of a series starts when (mnist_utils/series.py): waiting for the results a notebook reads,
the longest chain, the schedule the budgets must fit. No kernel here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from mnist_utils import run, series
from mnist_utils.config import find_notebooks


def test_a_notebook_waits_for_the_ones_whose_results_it_reads_and_an_unlisted_one_for_all_before_it() -> None:
    stems = ["00_eda", "01_step1_skeleton", "02_step2_gap_dropout", "04_vgg_resnet_blocks", "05_pretrained_finetune",
             "99_new"]
    after = series.waits_for(stems)  # config.READS_RESULTS_OF
    assert after["00_eda"] == after["01_step1_skeleton"] == after["04_vgg_resnet_blocks"] == set()
    assert after["02_step2_gap_dropout"] == {"01_step1_skeleton"}
    assert after["05_pretrained_finetune"] == {"04_vgg_resnet_blocks"}
    assert after["99_new"] == set(stems[:-1])
    # 01 not selected: 02 reads 01's last results, and need not wait.
    assert series.waits_for(["02_step2_gap_dropout"]) == {"02_step2_gap_dropout": set()}


def test_a_notebook_asked_for_alone_brings_the_ones_it_builds_on_that_have_not_run() -> None:
    three, two, one = "03_step3_augment_onecycle", "02_step2_gap_dropout", "01_step1_skeleton"
    assert series.inputs_to_run([three], have_results=set()) == [one, two], "a fresh checkout: the whole chain"
    assert series.inputs_to_run([three], have_results={two}) == [], "02's results are there: 03 reads them"
    assert series.inputs_to_run([three], have_results={one}) == [two]
    assert series.inputs_to_run([two, three], have_results=set()) == [one], "02 is asked for: run as asked"
    assert series.inputs_to_run(["05_pretrained_finetune", "06_cnn_comparison"], set()) == ["04_vgg_resnet_blocks"]
    assert series.inputs_to_run(["00_eda", "99_new"], set()) == []  # reads nothing (or is not in the map)


def test_notebooks_that_read_other_notebooks_results_name_them() -> None:
    """What NOTEBOOK_PLANS' `reads` say is what the notebooks do: each notebook that loads another's results
    lists it (or is left out of the table, and so waits for every notebook before it)."""
    from mnist_utils.config import READS_RESULTS_OF

    for path in find_notebooks():
        nb = nbformat.read(path, as_version=4)
        source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
        if path.stem not in READS_RESULTS_OF:
            continue
        named = set(re.findall(r'load_result\("(\d\d_\w+)"\)', source))
        assert named <= set(READS_RESULTS_OF[path.stem]), f"{path.stem} reads {named}: list them in its plan's reads"
        if "load_results(" in source:  # every results file: it must name the notebooks it uses them from
            used = set(re.findall(r'"(\d\d_\w+)"', source)) - {path.stem}
            assert used and used <= set(READS_RESULTS_OF[path.stem]), (path.stem, used)


def test_the_longest_chain_is_the_one_the_series_cannot_end_before() -> None:
    minutes = {"00_eda": 1, "01_step1_skeleton": 3, "02_step2_gap_dropout": 3, "03_step3_augment_onecycle": 5,
               "04_vgg_resnet_blocks": 3, "05_pretrained_finetune": 3, "06_cnn_comparison": 8}
    assert series.longest_chain(minutes) == ["01_step1_skeleton", "02_step2_gap_dropout", "03_step3_augment_onecycle"]
    minutes.update({"04_vgg_resnet_blocks": 10})  # now 04 → 05 is longer: 13 against 11 minutes
    assert series.longest_chain(minutes) == ["04_vgg_resnet_blocks", "05_pretrained_finetune"]
    minutes.update({"06_cnn_comparison": 14})  # 06 waits for none and none waits for it: never a chain
    assert series.longest_chain(minutes) == ["04_vgg_resnet_blocks", "05_pretrained_finetune"]
    assert series.longest_chain({"06_cnn_comparison": 14}) == [] and series.longest_chain({"01_x": 1}, {"01_x": ()}) == []


def test_the_schedule_starts_each_notebook_as_soon_as_a_slot_and_its_inputs_are_free() -> None:
    seconds = {"00_eda": 1, "01_step1_skeleton": 10, "02_step2_gap_dropout": 10, "03_step3_augment_onecycle": 20,
               "04_vgg_resnet_blocks": 15, "05_pretrained_finetune": 5, "06_cnn_comparison": 30}
    in_number_order = series.schedule(seconds, at_once=2, order=())
    assert in_number_order["00_eda"] == (0, 1) and in_number_order["01_step1_skeleton"] == (0, 10)
    assert in_number_order["04_vgg_resnet_blocks"] == (1, 16)  # 02 waits for 01: 04 takes 00's slot
    assert in_number_order["02_step2_gap_dropout"] == (10, 20) and in_number_order["05_pretrained_finetune"] == (16, 21)
    # 06 waits for no notebook, only for a slot: in number order, after 05, and it ends the series alone
    assert in_number_order["03_step3_augment_onecycle"] == (20, 40) and in_number_order["06_cnn_comparison"] == (21, 51)
    # config.START_ORDER: 06 before 05 when both are ready; 05 takes 03's slot, and the series ends sooner
    times = series.schedule(seconds, at_once=2)
    assert times["06_cnn_comparison"] == (16, 46) and times["05_pretrained_finetune"] == (40, 45)
    assert {stem: times[stem] for stem in list(seconds)[:5]} == {stem: in_number_order[stem] for stem in list(seconds)[:5]}
    assert max(end for _, end in series.schedule(seconds, at_once=1).values()) == sum(seconds.values())


def test_every_notebook_has_a_budget_the_series_fits_twenty_minutes_and_timeouts_leave_headroom() -> None:
    from mnist_utils import config

    stems = [p.stem for p in config.find_notebooks()]
    listed = list(config.NOTEBOOK_PLANS)  # a plan for each notebook (a dict: each once), none stale
    assert sorted(listed) == stems, (f"config.NOTEBOOK_PLANS: add {sorted(set(stems) - set(listed))}, remove "
                                     f"{sorted(set(listed) - set(stems))}")
    # Run as make notebooks runs them on 2 cores (2 side by side), notebooks taking their budgets end in time.
    times = series.schedule({stem: 60 * config.budget_minutes(stem, "full") for stem in stems}, at_once=2)
    end = max(end for _, end in times.values()) / 60
    assert end <= config.SERIES_BUDGET_MINUTES, (
        f"config.NOTEBOOK_PLANS' budgets, scheduled as make notebooks runs them, end at {end:g} minutes, past the "
        f"series' {config.SERIES_BUDGET_MINUTES}: they fill it, so a notebook's minutes must come from another's")
    for stem in stems:
        assert config.notebook_timeout(stem, "full") >= 1.5 * 60 * config.budget_minutes(stem, "full")
        assert config.budget_minutes(stem, "smoke") is None and config.notebook_timeout(stem, "smoke") == config.SMOKE_TIMEOUT
    assert config.notebook_timeout("99_new", "full") == config.UNBUDGETED_TIMEOUT


def test_the_runner_runs_first_the_inputs_with_no_whole_run(tmp_path: Path, monkeypatch, capsys) -> None:
    notebooks, results = tmp_path / "notebooks", tmp_path / "reports" / "smoke" / "results"
    stems = ("01_step1_skeleton", "02_step2_gap_dropout", "03_step3_augment_onecycle")
    notebooks.mkdir()
    for stem in stems:
        nbformat.write(nbformat.v4.new_notebook(), notebooks / f"{stem}.ipynb")
    results.mkdir(parents=True)
    whole = {"title": "t", "profile": "smoke", "targets": [], "seconds": 1.0, "saved": "2026-12-05", "hardware": "CPU",
             "torch": "2", "analysis": ["Done."], "checks": [{"claim": "c", "met": True, "evidence": "e"}]}
    (results / f"{stems[0]}.json").write_text(json.dumps({**whole, "notebook": stems[0]}))
    (results / f"{stems[1]}.json").write_text(json.dumps({**whole, "notebook": stems[1], "analysis": []}))  # cut short
    ran = []
    monkeypatch.setattr(run, "run_notebooks", lambda paths, *args, **kwargs: ran.extend(p.stem for p in paths) or {})
    arguments = ["03", "--profile", "smoke", "--notebooks", str(notebooks), "--reports", str(tmp_path / "reports")]
    assert run.main(arguments) == 0
    assert ran == list(stems[1:]), "02 stopped short of its Analysis: it runs again, before 03; 01's whole run stays"
    printed = capsys.readouterr().out
    assert "read the results of 02_step2_gap_dropout, which the smoke profile has no whole run of" in printed
    # Where the notebooks folder lacks an input, the runner says so in a line, and runs nothing.
    (notebooks / f"{stems[1]}.ipynb").unlink()
    ran.clear()
    assert run.main(arguments) == 2 and ran == []
    assert capsys.readouterr().err.startswith("error: the notebooks asked for read the results of 02_step2_gap_dropout")


def test_at_once_must_be_one_or_more_and_no_notebooks_is_no_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"notebooks at once \(--at-once\) must be at least 1"):
        run.run_notebooks([tmp_path / "01_x.ipynb"], tmp_path, "smoke", at_once=0)
    with pytest.raises(ValueError, match=r"notebooks at once \(--at-once\) must be at least 1"):
        series.schedule({"01_x": 1.0}, at_once=0)
    assert run.run_notebooks([], tmp_path, "smoke", at_once=2) == {} and series.longest_chain({}) == []


def test_notebooks_share_the_machine_only_where_they_can_run_side_by_side() -> None:
    full = ["00_eda", "01_step1_skeleton", "02_step2_gap_dropout", "03_step3_augment_onecycle",
            "04_vgg_resnet_blocks", "05_pretrained_finetune", "06_cnn_comparison"]
    assert series.most_side_by_side(full, at_once=2) == 2
    assert series.most_side_by_side(full, at_once=8) == 4  # 00, one of 01-03, one of 04-05, 06
    chain = ["01_step1_skeleton", "02_step2_gap_dropout", "03_step3_augment_onecycle"]  # each reads the one before
    assert series.most_side_by_side(chain, at_once=2) == 1
    assert series.most_side_by_side(["01_step1_skeleton", "03_step3_augment_onecycle"], at_once=2) == 2  # 03 reads 02's last
    assert series.most_side_by_side(["06_cnn_comparison"], at_once=2) == 1
    assert series.most_side_by_side(["01_a", "02_b", "03_after"], at_once=2, reads={"01_a": (), "02_b": ()}) == 2


def test_the_ready_notebooks_start_in_the_start_order_then_by_number_while_slots_are_free() -> None:
    after = {"01_a": set(), "02_b": set(), "03_c": set(), "04_d": {"01_a"}}
    waiting = list(after)
    # 03 is named first in the start order; the unnamed ones follow it, by number; 04 waits for 01
    assert series.ready_to_start(waiting, after, set(), 0, 8, order=("03_c",)) == ["03_c", "01_a", "02_b"]
    assert series.ready_to_start(waiting, after, {"01_a"}, 0, 8, order=()) == waiting
    assert series.ready_to_start(waiting, after, set(), 1, 3, order=()) == ["01_a", "02_b"], "two slots left"
    assert series.ready_to_start(waiting, after, set(), 3, 2, order=()) == [], "none free: more run than at_once"


def test_a_series_runs_one_notebook_at_a_time_on_a_gpu_and_one_per_cpu_elsewhere(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(series, "usable_cpus", lambda: 6)
    monkeypatch.setattr(series, "get_device", lambda: torch.device("cuda"))
    assert series.default_at_once() == 1, "one notebook's training fills a GPU"
    monkeypatch.setattr(series, "get_device", lambda: torch.device("cpu"))
    assert series.default_at_once() == 6


def test_results_of_another_profile_are_no_input_and_the_runner_runs_that_notebook_first(tmp_path: Path, monkeypatch,
                                                                                         capsys) -> None:
    notebooks, results = tmp_path / "notebooks", tmp_path / "reports" / "smoke" / "results"
    stems = ("01_step1_skeleton", "02_step2_gap_dropout")
    notebooks.mkdir()
    for stem in stems:
        nbformat.write(nbformat.v4.new_notebook(), notebooks / f"{stem}.ipynb")
    results.mkdir(parents=True)  # a full run's results, copied into the smoke folder: not this profile's
    (results / f"{stems[0]}.json").write_text(json.dumps({"notebook": stems[0], "title": "t", "profile": "full",
                                                          "targets": [], "seconds": 1.0, "saved": "2026-12-05",
                                                          "hardware": "CPU", "torch": "2", "analysis": ["Done."],
                                                          "checks": [{"claim": "c", "met": True, "evidence": "e"}]}))
    ran = []
    monkeypatch.setattr(run, "run_notebooks", lambda paths, *args, **kwargs: ran.extend(p.stem for p in paths) or {})
    arguments = ["02", "--profile", "smoke", "--notebooks", str(notebooks), "--reports", str(tmp_path / "reports")]
    assert run.main(arguments) == 0 and ran == list(stems)
    captured = capsys.readouterr()
    assert captured.err == "", "a readable results file: read, not set aside"
    assert captured.out.splitlines()[0] == (f"{stems[1]} read the results of {stems[0]}, which the smoke profile "
                                            "has no whole run of: running it first")
