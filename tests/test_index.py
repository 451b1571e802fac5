"""The reports folder's index page (index.html), runs.json and series.json, and the README's series line: written
from results files and run records alone, no kernel."""
from __future__ import annotations

import html
import json
from pathlib import Path

from mnist_utils import index
from mnist_utils.report import Report


def test_unreadable_runs_and_results_files_are_named_set_aside_and_the_index_still_written(tmp_path: Path, capsys) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "01_cut.json").write_text('{"notebook": "01_cut", "title": "Cut')
    (tmp_path / "results" / "02_empty.json").write_text("{}")
    (tmp_path / "runs.json").write_text('{"01_cut": {"status": "ok", "sec')
    entry = {"status": "ok", "seconds": 1.0, "profile": "smoke", "finished": "2024-01-01T00:00:00+00:00", "error": None}

    index.record_run(tmp_path, "03_new", entry)
    page = index.write_index(tmp_path).read_text()

    assert "03_new" in page and "01_cut" not in page
    assert json.loads((tmp_path / "runs.json").read_text()) == {"03_new": entry}
    err = capsys.readouterr().err
    for name in ("runs.json", "results/01_cut.json", "results/02_empty.json"):
        assert f"warning: {tmp_path / name} is not a readable" in err
        assert (tmp_path / f"{name}.corrupt").exists()


def test_index_lists_every_notebook_with_link_headline_and_targets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    report = Report("01_step1", "Step 1 <the skeleton>", output_dir=tmp_path / "results")
    report.target("test_acc", ">=", 99.4, "Test accuracy", "%")
    report.target("params", "<", 8000, "Parameters")
    report.headline("test_acc", "Test accuracy", "%")
    report.record(test_acc=99.1, params=7412)
    report.add_model("01 Model_1", params=7412, test_acc=99.1, seconds=80.0, checkpoint="models/step1-seed1.safetensors")
    report.show_analysis("Done.")
    (tmp_path / "01_step1.html").write_text("<html></html>")
    index.record_run(tmp_path, "01_step1", {"status": "ok", "seconds": 192.0, "profile": "smoke",
                                          "finished": "2024-01-01T00:00:00+00:00", "error": None})
    index.record_run(tmp_path, "02_failed", {"status": "error", "seconds": 4.0, "profile": "smoke",
                                           "finished": "2024-01-01T00:00:00+00:00", "error": "ValueError: <oops>"})

    page = index.write_index(tmp_path).read_text()

    assert "<title>MNIST notebook series — reports</title>" in page
    assert "Step 1 &lt;the skeleton&gt;" in page and "<the skeleton>" not in page  # escaped
    assert "href='01_step1.html'" in page and "Test accuracy: 99.10%" in page
    assert "Test accuracy ≥ 99.40%: 99.10% ❌ not met" in page
    assert "Parameters &lt; 8,000: 7,412 ✅ met" in page
    assert "3m12s" in page and "ValueError: &lt;oops&gt;" in page
    assert "<a href='models/step1-seed1.safetensors'>01 Model_1</a>" in page, "each saved model is linked"
    assert "02_failed" in page and "href='02_failed.html'" not in page  # no results, no HTML: still a row
    # The leaderboard of every model, from the same results files, written beside the page and linked
    assert "href='leaderboard.html'" in page and "href='leaderboard.png'" in page
    board = (tmp_path / "leaderboard.html").read_text()
    assert "01 Model_1" in board and "7,412" in board and "99.10%" in board and "1 model from 1 notebook ·" in board
    assert (tmp_path / "leaderboard.png").read_bytes().startswith(b"\x89PNG")
    assert "torch " in page and "CPU threads" in page  # hardware and torch version from the results
    assert "http" not in page  # self-contained: no external assets


def test_a_notebooks_results_cut_short_in_jupyter_read_unfinished_on_the_index(tmp_path: Path) -> None:
    report = Report("01_step1", "Step 1", output_dir=tmp_path / "results")
    report.record(test_acc=99.1)  # run in Jupyter only, and cut short: no runner's entry
    page = index.write_index(tmp_path).read_text()
    assert "<span class='unfinished'>unfinished</span>" in page and html.escape("runner's") not in page, "no runner"
    report.record(test_acc=99.1)
    report.check("Accurate", True, "99.1%")
    report.show_analysis("Done.")
    index.record_run(tmp_path, "01_step1", {"status": "ok", "seconds": 192.0, "profile": "smoke",
                                          "finished": "2024-01-01T00:00:00+00:00", "error": None})
    page = index.write_index(tmp_path).read_text()
    assert "<span class='ok'>ok</span>" in page and "<span class='unfinished'>" not in page
    report.record(test_acc=98.0)  # a cell above the checks run again in Jupyter, and no further
    page = index.write_index(tmp_path).read_text()
    assert "<span class='unfinished'>unfinished</span>" in page and "<span class='ok'>" not in page
    assert html.escape("results of a run in Jupyter that did not reach its Analysis (stopped part-way, or a cell that "
                       "records numbers ran again since): the headline and targets are that run's, the HTML report "
                       "the runner's") in page
    index.record_run(tmp_path, "01_step1", {"status": "ok", "seconds": 192.0, "profile": "smoke",  # the runner's own
                                          "finished": "2999-01-01T00:00:00+00:00", "error": None})
    assert "<span class='ok'>ok</span>" in index.write_index(tmp_path).read_text()


def test_a_runners_error_stays_on_the_index_when_a_later_run_in_jupyter_was_cut_short(tmp_path: Path) -> None:
    index.record_run(tmp_path, "01_step1", {"status": "error", "seconds": 4.0, "profile": "smoke",
                                          "finished": "2024-01-01T00:00:00+00:00", "error": "ValueError: boom"})
    Report("01_step1", "Step 1", output_dir=tmp_path / "results").record(test_acc=99.1)  # saved since, no Analysis
    page = index.write_index(tmp_path).read_text()
    assert "<span class='error'>error</span>" in page and "ValueError: boom" in page
    assert "<span class='unfinished'>" not in page


def test_a_time_missing_or_unreadable_is_never_after_another() -> None:
    earlier, later = "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"
    assert index._after(later, earlier) and not index._after(earlier, later)
    assert not index._after(None, earlier) and not index._after(later, None) and not index._after("yesterday", earlier)
    assert not index._after("2024-01-02T00:00:00", earlier), "a time without its zone cannot be compared"


def test_the_index_and_the_progress_line_show_a_full_runs_time_against_its_budget(tmp_path: Path) -> None:
    stem = "03_step3_augment_onecycle"  # budget: config.NOTEBOOK_PLANS
    from mnist_utils.config import budget_minutes
    from mnist_utils.index import progress_suffix

    budget = budget_minutes(stem, "full")
    over = {"status": "ok", "seconds": budget * 60 + 1, "profile": "full", "error": None}
    assert progress_suffix(stem, over, None) == f"ok in {index.fmt_duration(budget * 60 + 1)} of a " \
                                                f"{index.fmt_duration(budget * 60)} budget ❌ not met"
    index.record_run(tmp_path, stem, {**over, "seconds": budget * 60 - 1})
    index.record_run(tmp_path, "00_eda", {"status": "ok", "seconds": 3.0, "profile": "smoke", "error": None})
    page = index.write_index(tmp_path).read_text()
    assert f"{index.fmt_duration(budget * 60 - 1)} of a {index.fmt_duration(budget * 60)} budget ✅ met" in page
    assert "<td>3.0s</td>" in page, "a smoke run has no budget"
    failed = {**over, "status": "error", "seconds": 12.0}  # quick, but not a run that kept to its budget
    assert progress_suffix(stem, failed, None) == f"error in 12.0s of a {index.fmt_duration(budget * 60)} budget"


def test_a_full_run_that_errored_shows_its_budget_on_the_index_without_a_verdict(tmp_path: Path) -> None:
    stem = "03_step3_augment_onecycle"
    index.record_run(tmp_path, stem, {"status": "error", "seconds": 12.0, "profile": "full", "error": "ValueError: x"})
    page = index.write_index(tmp_path).read_text()
    row = next(line for line in page.splitlines() if line.startswith("<tr>") and stem in line)
    assert "12.0s of a " in row and " budget" in row
    assert "✅" not in row and "❌" not in row, "quick because it stopped: no run that kept to its budget"


def test_durations_change_unit_at_a_minute_and_at_an_hour() -> None:
    assert [index.fmt_duration(s) for s in (59.0, 60, 3599, 3600)] == ["59.0s", "1m00s", "59m59s", "1h00m"]
    assert [index.fmt_duration(s) for s in (59.94, 59.96)] == ["59.9s", "1m00s"], "never 60.0s"


def test_an_index_without_models_links_no_older_leaderboard(tmp_path: Path) -> None:
    for name in ("leaderboard.html", "leaderboard.png"):
        (tmp_path / name).write_text("an older run's board")
    index.record_run(tmp_path, "00_eda", {"status": "ok", "seconds": 3.0, "profile": "smoke", "error": None})
    page = index.write_index(tmp_path).read_text()
    assert "leaderboard" not in page and not (tmp_path / "leaderboard.html").exists()


def test_the_index_and_the_readme_give_a_full_series_wall_time_against_its_budget(tmp_path: Path) -> None:
    from mnist_utils.config import NOTEBOOK_PLANS, SERIES_BUDGET_MINUTES
    from mnist_utils.index import record_series
    from mnist_utils.readme import results_markdown

    every = {stem: {"status": "ok", "seconds": 300.0, "profile": "full"} for stem in NOTEBOOK_PLANS}
    record_series(tmp_path, every, seconds=60 * SERIES_BUDGET_MINUTES + 1, side_by_side=2)
    page = index.write_index(tmp_path).read_text()
    assert (f"Last finished run: {len(every)} notebooks, {len(every)} ok, up to 2 side by side, in "
            f"{index.fmt_duration(60 * SERIES_BUDGET_MINUTES + 1)} of a "
            f"{index.fmt_duration(60 * SERIES_BUDGET_MINUTES)} budget ❌ not met") in page
    assert f"their own times add up to {index.fmt_duration(300.0 * len(every))}" in page

    results = [{"notebook": stem, "title": stem, "profile": "full", "hardware": "CPU", "torch": "2.14.1",
                "seconds": 300.0, "targets": [], "saved": "2026-12-03T00:00:00", "analysis": ["Done."],
                "checks": [{"claim": "c", "met": True, "evidence": "e"}]}
               for stem in NOTEBOOK_PLANS]
    series = json.loads((tmp_path / "series.json").read_text())
    text = results_markdown(results, series=series, runs=every)
    assert (f"the series ran in **{index.fmt_duration(60 * SERIES_BUDGET_MINUTES + 1)} of a "
            f"{index.fmt_duration(60 * SERIES_BUDGET_MINUTES)} budget ❌ not met** by the clock, up to 2 notebooks") in text
    assert f"their own times add up to {index.fmt_duration(300.0 * len(every))})" in text
    # Each notebook's time, as the index gives it: the runner's, against the notebook's budget.
    budget = NOTEBOOK_PLANS["03_step3_augment_onecycle"].budget
    assert (f"| {index.fmt_duration(300.0)} of a {index.fmt_duration(budget * 60)} budget "
            f"{'✅ met' if 300 <= budget * 60 else '❌ not met'} |") in text
    # A run of some notebooks only says nothing of the series: the README adds up the notebooks' own times.
    record_series(tmp_path, {"03_step3_augment_onecycle": every["03_step3_augment_onecycle"]}, seconds=300.0,
                  side_by_side=1)
    part = json.loads((tmp_path / "series.json").read_text())
    assert "by the clock" not in results_markdown(results, series=part)
    # Which clock a run time is read from is said only where it is the runner's.
    assert "as the runner timed it" in text and "as the runner timed it" not in results_markdown(results, series=part)
    page = index.write_index(tmp_path).read_text()
    assert "Last finished run: 1 notebook, 1 ok, up to 1 side by side, in 5m00s (their own times add up to 5m00s)" in page
    # A full run with a failed notebook is not the series' time either.
    record_series(tmp_path, {**every, "02_step2_gap_dropout": {**every["02_step2_gap_dropout"], "status": "error"}},
                  seconds=600.0, side_by_side=2)
    assert "budget" not in index.write_index(tmp_path).read_text().split("Last finished run")[1].split("</p>")[0]
    assert "by the clock" not in results_markdown(results, series=json.loads((tmp_path / "series.json").read_text()))
    # With the kernels' CPU times: how busy they kept the machine, on the page and in the README.
    busy = {stem: {**entry, "cpu_seconds": 480.0} for stem, entry in every.items()}
    record_series(tmp_path, busy, seconds=1200.0, side_by_side=2)
    series = json.loads((tmp_path / "series.json").read_text())
    assert series["cpu_seconds"] == 480.0 * len(busy) and series["cpus"] >= 1
    series["cpus"] = 2  # as on the 2-CPU machine the budgets are for
    (tmp_path / "series.json").write_text(json.dumps(series))
    share = f"{480.0 * len(busy) / 2400:.0%}"
    expected = f"their kernels computed for {480.0 * len(busy) / 60:.1f} CPU-minutes, {share} of 2 CPUs over the run"
    assert expected in index.write_index(tmp_path).read_text() and expected in results_markdown(results, series=series)
    one_unknown = {**busy, "00_eda": {**busy["00_eda"], "cpu_seconds": None}}  # e.g. not on Linux
    record_series(tmp_path, one_unknown, seconds=1200.0, side_by_side=2)
    assert "CPU-minutes" not in index.write_index(tmp_path).read_text()
    # A record written before CPU times were measured still shows, without them.
    old = {k: v for k, v in series.items() if k not in ("cpu_seconds", "cpus")}
    (tmp_path / "series.json").write_text(json.dumps(old))
    page = index.write_index(tmp_path).read_text()
    assert "Last finished run" in page and "CPU-minutes" not in page
    # A series.json without what the page needs is named and set aside, not a crash of the runner.
    (tmp_path / "series.json").write_text('{"seconds": 5}')
    assert "Last finished run" not in index.write_index(tmp_path).read_text()
    assert (tmp_path / "series.json.corrupt").exists()
    for bad in ({"cpu_seconds": "lots"}, {"cpu_seconds": float("nan")}, {"cpu_seconds": -1.0}, {"cpus": True}):
        (tmp_path / "series.json").write_text(json.dumps({**series, **bad}))
        assert "Last finished run" not in index.write_index(tmp_path).read_text(), f"{bad} is no CPU time"


def test_a_smoke_run_of_every_notebook_is_not_judged_against_the_series_budget(tmp_path: Path) -> None:
    from mnist_utils.config import NOTEBOOK_PLANS
    from mnist_utils.index import is_full_series, record_series

    every = {stem: {"status": "ok", "seconds": 3.0, "profile": "smoke"} for stem in NOTEBOOK_PLANS}
    record_series(tmp_path, every, seconds=30.0, side_by_side=2)
    series = json.loads((tmp_path / "series.json").read_text())
    assert not is_full_series(series, NOTEBOOK_PLANS) and is_full_series({**series, "profile": "full"}, NOTEBOOK_PLANS)
    line = index.write_index(tmp_path).read_text().split("Last finished run")[1].split("</p>")[0]
    assert "in 30.0s (their own times" in line and "budget" not in line
