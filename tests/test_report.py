import json

import pytest
import torch

from mnist_utils.clock import CellClock
from mnist_utils.config import PROJECT_ROOT, counted, get_profile, hardware, reports_dir
from mnist_utils.report import Report, Target, fmt, markdown_table, typeset
from mnist_utils.results import MissingResults, load_result, load_results


@pytest.fixture
def report(tmp_path):
    return Report("01_demo", "Demo", seed=3, output_dir=tmp_path)


def test_targets_are_judged_from_recorded_metrics(report):
    report.target("params", "<", 8000, "Parameters")
    report.target("acc", ">=", 99.4, "Accuracy", "%")
    report.target("epochs", "<=", 15, "Epochs")
    report.record(params=7999, acc=99.39)
    judged = {t["metric"]: t for t in report.evaluated_targets()}
    assert judged["params"]["met"] and not judged["acc"]["met"]
    assert judged["epochs"]["actual"] is None and not judged["epochs"]["met"], "unmeasured is not met"
    assert not report.all_targets_met
    text = report.result_markdown()
    assert "| Parameters | < 8,000 | 7,999 | ✅ met |" in text
    assert "| Accuracy | ≥ 99.40% | 99.39% | ❌ not met |" in text
    assert "profile, seed 3," in text.splitlines()[0]
    report.seed = [1, 2, 3, 4, 5]  # a run over several seeds names them all
    assert "profile, seeds 1, 2, 3, 4, 5," in report.result_markdown().splitlines()[0]
    report.seed = None
    assert "seed" not in report.result_markdown().splitlines()[0]


def test_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match="Unknown comparison"):
        Target("x", "=>", 1, "x")


def test_results_json_holds_what_the_index_needs(report, tmp_path, monkeypatch):
    from mnist_utils import report as report_module

    monkeypatch.setattr(report_module, "hardware", lambda device=None: f"the machine, computing on {device}")
    ticks = [0.0]
    report.clock = CellClock(now=lambda: ticks[0])
    report.target("acc", ">", 50, "Accuracy", "%")
    report.headline("acc", "Test accuracy", "%")
    report.record(acc=99.5, history=[{"epoch": 1, "test_acc": 99.5}])
    report.add_model("Model_1", params=100, test_acc=99.5, seconds=1.5)
    ticks[0] = 12.5
    report.check("It works", True, "acc 99.5")
    saved = json.loads((tmp_path / "01_demo.json").read_text())
    assert saved["headline"] == {"metric": "acc", "label": "Test accuracy", "unit": "%", "value": 99.5}
    assert saved["targets"][0]["met"] and saved["all_targets_met"]
    assert saved["models"][0]["name"] == "Model_1" and saved["checks"][0]["met"]
    assert saved["seed"] == 3 and saved["metrics"]["acc"] == 99.5 and saved["title"] == "Demo"
    assert saved["profile"] == get_profile().name and saved["device"] == str(report.device)
    assert saved["torch"] == torch.__version__ and saved["hardware"] == f"the machine, computing on {report.device}"
    assert saved["seconds"] == 12.5, "the notebook's cells' time, from the report's clock"
    assert saved["models"][0] == {"name": "Model_1", "params": 100, "test_acc": 99.5, "seconds": 1.5}
    assert saved["checks"][0] == {"claim": "It works", "met": True, "evidence": "acc 99.5"}
    assert load_results(tmp_path)[0]["notebook"] == "01_demo"
    assert not list(tmp_path.glob("*.part")), "no temporary files left"


def test_forget_drops_the_leaderboard_entries_and_histories_a_prefix_names(report):
    # 03 run again in Jupyter after its seeds changed from 1-5 to 6-10: the new entries replace the old
    for seeds in ((1, 2), (6, 7)):
        report.forget("03 Model_3, ")
        report.add_model(f"03 Model_3, seed {seeds[0]} of 2 trained at once", params=1, test_acc=99.0, seconds=1.0)
        for seed in seeds:
            report.add_run(f"03 Model_3, seed {seed}", history=[])
    report.add_model("02 Model_2", params=1, test_acc=99.0, seconds=1.0)
    report.forget("nothing of that name")
    assert [m["name"] for m in report.models] == ["03 Model_3, seed 6 of 2 trained at once", "02 Model_2"]
    assert list(report.runs) == ["03 Model_3, seed 6", "03 Model_3, seed 7"]


def test_numpy_and_torch_values_are_recorded_as_json_has_them(report, tmp_path):
    import numpy as np
    report.record(a=np.float64("nan"), b=np.array([1.5, np.inf]), c=np.int64(3), d=torch.tensor([2.0, float("nan")]))
    text = (tmp_path / "01_demo.json").read_text()
    assert "NaN" not in text and "Infinity" not in text, "a browser's JSON.parse refuses them"
    assert json.loads(text)["metrics"] == {"a": None, "b": [1.5, None], "c": 3, "d": [2.0, None]}


def test_analysis_shows_each_check(report):
    report.check("Overfits", False, "gap 0.1 points")
    text = report.analysis_markdown("Because.")
    assert "Because." in text and "| Overfits | gap 0.1 points | ❌ not met |" in text


def test_markdown_table_formats_numbers():
    table = markdown_table([{"seed": 1, "acc": 99.456}], units={"acc": "%"})
    assert table.splitlines()[-1] == "| 1 | 99.46% |"


def test_markdown_table_gives_a_column_one_number_of_decimals():
    rows = [{"gap": 0.7967, "loss": 0.01918, "speed": 12568.19, "constant": 0.1307},
            {"gap": 0.07, "loss": 0.0185, "speed": 980.5, "constant": 0.13},
            {"gap": -0.17, "loss": None, "speed": 3, "constant": 0.3081}]
    assert markdown_table(rows).splitlines()[2:] == ["| 0.7967 | 0.01918 | 12,568.19 | 0.1307 |",
                                                     "| 0.0700 | 0.01850 | 980.50 | 0.1300 |",
                                                     "| −0.1700 | — | 3 | 0.3081 |"]


def test_negative_numbers_get_a_minus_sign_and_nothing_else_does():
    assert fmt(-0.02, "points") == "\u22120.02 points" and fmt(-4) == "\u22124" and fmt("-4") == "-4"
    assert fmt(float("-inf")) == "\u2212inf" and fmt(-0.5, decimals=2) == "\u22120.50"
    text = "gap -0.17 (-4 images), |-1| on 2026-12-05, lr 1e-05, x-1, seeds 1-5, **-0.02**, gap:-0.3, [1,-1]"
    minus = "\u2212"
    assert typeset(text) == (f"gap {minus}0.17 ({minus}4 images), |{minus}1| on 2026-12-05, lr 1e-05, x-1, seeds 1-5, "
                             f"**{minus}0.02**, gap:{minus}0.3, [1,{minus}1]")
    code = "run `head -1` or `--seed 3`:\n```yaml\nlr: -1\n```\nthen -2"
    assert typeset(code) == code.replace("then -2", f"then {minus}2"), "code keeps its hyphens"


def test_a_count_takes_its_nouns_plural_unless_it_is_one():
    assert (counted(1, "epoch"), counted(0, "seed"), counted(15, "epoch"), counted(12000, "image")) == (
        "1 epoch", "0 seeds", "15 epochs", "12,000 images")


def test_a_column_keeps_each_figure_as_precise_as_alone():
    # no value loses a digit to its column; one only e-notation can show leaves each value its own format
    assert markdown_table([{"value": 0.5}, {"value": 0.0004}]).splitlines()[2:] == ["| 0.5000 |", "| 0.0004 |"]
    assert markdown_table([{"value": 0.5}, {"value": 1e-7}]).splitlines()[2:] == ["| 0.5 |", "| 1e-07 |"]


def test_a_result_block_formats_each_measurement_alone(report):
    report.record(acc=99.514, std=0.03209, speed=9934.73)
    text = report.result_markdown({"acc": "Accuracy", "std": "Spread", "speed": "Images/s"})
    assert "| Accuracy | 99.51 |" in text and "| Spread | 0.03209 |" in text and "| Images/s | 9,934.73 |" in text


def test_a_result_block_shows_a_figure_in_the_format_its_label_asks_for(report):
    report.record(gap=-0.03389, speed=9934.73, model="MiniVGG", ready=True)
    text = typeset(report.result_markdown({"gap": ("Gap (points)", "+.2f"), "speed": ("Images/s", ",.0f"),
                                           "model": ("Best model", "+.2f"), "ready": ("Weights found", ".1f")}))
    assert "| Gap (points) | −0.03 |" in text and "| Images/s | 9,935 |" in text
    assert "| Best model | MiniVGG |" in text and "| Weights found | yes |" in text, "a spec formats numbers only"


def test_readme_section_is_generated_from_full_results_only(report, tmp_path):
    from mnist_utils.readme import README_END, README_START, results_markdown, update_readme

    report.target("acc", ">=", 99.4, "Accuracy", "%")
    report.headline("acc", "Test accuracy", "%")
    report.record(acc=99.51)
    report.add_model("Model_3", params=5000, test_acc=99.51, seconds=100.0)
    report.publish_table("Seeds", [{"seed": 1, "min last 3": 99.47}], units={"min last 3": "%"})
    report.check("Accurate", True, "99.51%")
    report.show_analysis("Done.")  # a whole run checks its claims and ends in its Analysis
    full = report.to_dict()
    smoke = {**full, "notebook": "02_smoke", "profile": "smoke"}
    with pytest.raises(ValueError, match="make notebooks"):
        results_markdown([smoke])
    with pytest.raises(ValueError, match=r"Not a whole run: 01_demo stopped early \(ValueError: boom \(cell "
                                         r"\[7\]\)\)\. Run `make notebooks NB=01` first"):
        results_markdown([{**full, "stopped": "ValueError: boom (cell [7])"}])
    with pytest.raises(ValueError, match=r"Not a whole run: 01_demo did not reach its Analysis \(stopped part-way"):
        results_markdown([{**full, "analysis": []}])  # a run in Jupyter cut short: no Analysis
    with pytest.raises(ValueError, match=r'01_demo stopped early \(boom\); 02_demo has no checked claims .*NB="01 02"'):
        results_markdown([{**full, "stopped": "boom"}, {**full, "notebook": "02_demo", "checks": []}])
    text = results_markdown([full, smoke])
    assert "Test accuracy: 99.51%" in text and "| 1 | 99.47% |" in text and "02_smoke" not in text
    assert "| Model_3 | 01_demo | 5,000 | — | 99.51% |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\nrest\n")
    update_readme(readme, [full])
    updated = readme.read_text()
    assert updated.startswith("intro\n") and updated.endswith("rest\n") and "old" not in updated
    assert "Test accuracy: 99.51%" in updated


def test_readme_table_counts_the_targets_met_names_those_not_and_adds_up_the_notebooks_times(report):
    from mnist_utils.readme import results_markdown

    report.target("acc", ">=", 99.4, "Accuracy", "%")
    report.target("params", "<", 8000, "Parameters")
    report.target("epochs", "<=", 15, "Epochs")
    report.headline("acc", "Test accuracy", "%")
    report.record(acc=99.51, params=9000, epochs=15)  # too large: 2 targets of 3 met, 1 not (neither way round)
    first = {**report.to_dict(), "profile": "full", "seconds": 100.0, "saved": "2025-01-02T23:30:00+00:00",
             "analysis": ["Done."], "checks": [{"claim": "c", "met": True, "evidence": "e"}]}
    second = {**first, "notebook": "02_demo", "seconds": 200.0, "saved": "2025-03-04T08:00:00+00:00"}
    text = results_markdown([first, second])
    assert "the notebooks took 5m00s in all." in text, "100 s + 200 s"
    assert "| 01_demo: Demo | Test accuracy: 99.51% | 2/3 | Parameters < 8,000: 9,000 | 1m40s | 2025-01-02 |" in text
    assert "| 02_demo: Demo | Test accuracy: 99.51% | 2/3 | Parameters < 8,000: 9,000 | 3m20s | 2025-03-04 |" in text, \
        "each its own date; the target not met named, with what was measured"


BENCH = {"quick": False,
         "machine": {"hardware": "AMD EPYC, 2 CPU threads", "usable_cpus": 2, "torch": "2.14.1+cpu",
                     "date": "2026-11-22T08:00:00+00:00"},
         "pipeline": {"batch_size": 64, "reference_best_workers": 0, "reference_best_images_per_s": 1500.0,
                      "project_images_per_s": 6000.0, "ratio": 4.0},
         "accuracy": {"config": "step3", "model": "Model_3",
                      "reached": {"99.0": {"epoch": 3, "seconds": 41.2, "goal_seconds": None, "met": None},
                                  "99.4": {"epoch": None, "seconds": None, "goal_seconds": 120.0, "met": False}}},
         "fastest": {"config": "fastest", "model": "Model_3",
                     "reached": {"99.0": {"epoch": 1, "seconds": 9.5, "goal_seconds": 10.0, "met": True},
                                 "99.4": {"epoch": 5, "seconds": 44.0, "goal_seconds": 40.0, "met": False}}},
         "example": {"threshold": 99.0, "reached": {"epoch": 2, "seconds": 190.0}, "ratio": 20.0,
                     "goal_ratio": 20.0, "met": True}}


def test_readme_speed_paragraph_comes_from_a_full_bench_run_only():
    from mnist_utils.readme import bench_markdown

    bench = BENCH
    text = bench_markdown(bench)
    assert "Model_3, batches of 64:" in text
    assert "| this project: tensors in memory, batched augmentation, channels_last | 6,000 |" in text
    assert "Speed-up: **4.0×**." in text  # a bench.json from before the pipeline had a goal
    short = bench_markdown({**bench, "pipeline": {**bench["pipeline"], "goal_ratio": 3.0, "met": False, "ratio": 2.2}})
    assert "Speed-up: **2.2×** (goal ≥ 3×: ❌ not met)." in short
    assert "no pipeline could get past" not in text  # a bench.json from before the ceiling was measured
    ceiling = bench_markdown({**bench, "pipeline": {**bench["pipeline"], "steps_images_per_s": 7500.0,
                                                    "ceiling_ratio": 5.0}})
    assert "fed batches made ahead, run at 7,500 images/s: no pipeline could get past 5.0× on this machine" in ceiling
    assert "| the Step 3 recipe (`configs/step3.yaml`, Model_3) | 41.2 s (epoch 3) | not reached, goal ≤ 120 s: ❌ not met |" in text
    assert "9.5 s (epoch 1), goal ≤ 10 s: ✅ met | 44.0 s (epoch 5), goal ≤ 40 s: ❌ not met |" in text
    assert "190.0 s (epoch 2) to 99.0%; the fastest recipe gets there **20.0×** sooner (goal ≥ 20×: ✅ met)." in text
    for partial in ({k: v for k, v in bench.items() if k != "example"}, {**bench, "whole": False}):
        with pytest.raises(ValueError, match="less in it than `make bench` measures"):  # --skip-accuracy, --steps 3
            bench_markdown(partial)
    # Several runs of the fastest recipe: the median after each epoch, then the runs' range at that epoch.
    runs = [[9.5, 20.0, 31.0, 40.0, 44.0], [9.1, 19.0, 30.0, 39.0, 42.0], [10.4, 21.0, 33.0, 41.0, 47.0]]
    repeated = bench_markdown({**bench, "fastest": {**bench["fastest"], "runs": runs, "reproduced": True}})
    assert ("9.5 s (epoch 1; the median of 3 runs, 9.1 to 10.4 s), goal ≤ 10 s: ✅ met | "
            "44.0 s (epoch 5; the median of 3 runs, 42.0 to 47.0 s), goal ≤ 40 s: ❌ not met |") in repeated
    differed = bench_markdown({**bench, "fastest": {**bench["fastest"], "runs": runs, "reproduced": False}})
    assert ("Model_3), whose runs gave different accuracies: the first run's times | 9.5 s (epoch 1), goal" in differed
            and "median" not in differed)
    with pytest.raises(ValueError, match="make bench"):
        bench_markdown({**bench, "quick": True})


def test_the_analysis_is_prose_with_the_runs_numbers_filled_in(report, tmp_path):
    report.check("It generalises", False, "gap +0.50 points")
    report.show_analysis("""
    Model_1 reaches {acc:.2f}%
    with {params:,} parameters.

    Second paragraph: {verdict}.
    """, acc=99.123, params=6950, verdict="overfits")
    assert report.analysis == ["Model_1 reaches 99.12% with 6,950 parameters.", "Second paragraph: overfits."]
    saved = json.loads((tmp_path / "01_demo.json").read_text())
    assert saved["analysis"] == report.analysis
    assert "| It generalises | gap +0.50 points | ❌ not met |" in report.analysis_markdown(*report.analysis)
    with pytest.raises(KeyError, match="uses 'missing' but no value of that name was given"):
        report.show_analysis("{missing}")


def test_a_later_notebook_reads_an_earlier_ones_results_or_says_what_to_run(report, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    report.record(acc=98.0)  # saved under the profile the report was made in
    # a run that stopped before its Analysis (its first cells run in Jupyter, say) is no run to build on
    with pytest.raises(MissingResults, match=r"01_demo's results .* did not reach its Analysis .*: run it to the end "
                                             r"first \(`make notebooks NB=01`, or run it to the end in Jupyter\)"):
        load_result("01_demo", report.profile.name, tmp_path)
    report.show_analysis("Done.")
    with pytest.raises(MissingResults, match=r"its last run there has no checked claims \(a cell that records numbers "
                                             r"ran again since, then the Analysis alone\)"):
        load_result("01_demo", report.profile.name, tmp_path)
    report.check("Accurate", True, "98.0%")
    assert load_result("01_demo", report.profile.name, tmp_path)["metrics"]["acc"] == 98.0
    with pytest.raises(MissingResults, match=r"builds on 02_other's results in the smoke profile.*"
                                             r"make notebooks NB=02 PROFILE=smoke`, or run it to the end in Jupyter "
                                             r"started with MNIST_PROFILE=smoke\)"):
        load_result("02_other", "smoke", tmp_path)


def test_an_unreadable_results_file_is_named_set_aside_and_skipped(report, tmp_path, capsys):
    report.record(acc=99.5)
    saved = (tmp_path / "01_demo.json").read_text()
    (tmp_path / "02_truncated.json").write_text(saved[: len(saved) // 2])
    (tmp_path / "03_empty.json").write_text("{}")

    assert [r["notebook"] for r in load_results(tmp_path)] == ["01_demo"]

    err = capsys.readouterr().err
    assert f"warning: {tmp_path / '02_truncated.json'} is not a readable results file (JSONDecodeError: " in err
    assert f"warning: {tmp_path / '03_empty.json'} is not a readable results file (no 'notebook', 'title'" in err
    assert "set aside as 02_truncated.json.corrupt. Run notebook 02_truncated again to rewrite it." in err
    assert (tmp_path / "02_truncated.json.corrupt").read_text() == saved[: len(saved) // 2]
    assert (tmp_path / "03_empty.json.corrupt").exists() and not (tmp_path / "03_empty.json").exists()
    assert load_results(tmp_path) and not capsys.readouterr().err, "set aside once, then out of the way"


def test_make_readme_names_unreadable_files_sets_them_aside_and_needs_the_benchmark(tmp_path, monkeypatch, capsys):
    from mnist_utils.readme import README_END, README_START, main

    monkeypatch.setenv("MNIST_PROFILE", "full")
    full = Report("01_demo", "Demo", output_dir=tmp_path / "reports" / "results")
    full.record(acc=99.5)
    full.check("Accurate", True, "99.5%")
    full.show_analysis("Done.")
    (tmp_path / "reports" / "results" / "02_cut.json").write_text('{"notebook": "02_cut", "tit')
    bench = tmp_path / "reports" / "bench.json"
    bench.write_text("")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_demo.ipynb").write_text("{}")

    # Without readable benchmark figures the README's speed section would go without a word: it stops instead.
    assert main(readme, tmp_path / "reports", tmp_path / "notebooks") == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'reports' / 'results' / '02_cut.json'} is not a readable results file" in err
    assert f"{bench} is not a readable benchmark file" in err
    assert f"No benchmark figures in {bench}: run `make bench`" in err
    assert (tmp_path / "reports" / "bench.json.corrupt").exists() and "old" in readme.read_text()
    bench.write_text(json.dumps({**BENCH, "pipeline": {"ratio": 4.0}}))  # JSON, but not all that make bench writes
    assert main(readme, tmp_path / "reports", tmp_path / "notebooks") == 1
    assert "bench.json is not as `make bench` writes it (KeyError: 'batch_size')" in capsys.readouterr().err
    assert "old" in readme.read_text()

    bench.write_text(json.dumps(BENCH))
    assert main(readme, tmp_path / "reports", tmp_path / "notebooks") == 0
    assert "01_demo: Demo" in readme.read_text() and "Speed-up: **4.0×**" in readme.read_text()
    assert "old" not in readme.read_text()


@pytest.mark.parametrize("folder", [None, "elsewhere"])
def test_each_profile_writes_its_own_results_so_a_smoke_run_never_replaces_a_full_one(tmp_path, monkeypatch, folder):
    base = tmp_path / folder if folder else PROJECT_ROOT / "reports"
    if folder:
        monkeypatch.setenv("MNIST_REPORTS_DIR", str(base))
    else:
        monkeypatch.delenv("MNIST_REPORTS_DIR", raising=False)
    monkeypatch.setenv("MNIST_PROFILE", "full")
    assert Report("01_demo", "Demo").path == base / "results" / "01_demo.json"
    monkeypatch.setenv("MNIST_PROFILE", "smoke")  # as `MNIST_PROFILE=smoke jupyter nbconvert --execute` runs it
    assert Report("01_demo", "Demo").path == base / "smoke" / "results" / "01_demo.json"
    assert reports_dir() == base / "smoke" and reports_dir("full") == base


def test_a_folder_variable_set_but_empty_is_its_default_not_the_current_folder(monkeypatch):
    # `MNIST_DATA_ROOT= make data` or an empty line in a .env file: the data and reports stay where they are
    from mnist_utils.config import data_root, reports_root
    monkeypatch.setenv("MNIST_DATA_ROOT", "")
    monkeypatch.setenv("MNIST_REPORTS_DIR", "")
    assert (data_root(), reports_root()) == (PROJECT_ROOT / "data", PROJECT_ROOT / "reports")


def test_make_readme_fails_naming_each_notebook_without_full_profile_results(tmp_path, monkeypatch, capsys):
    from mnist_utils.readme import README_END, README_START, main

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for stem in ("00_first", "01_second", "02_third"):
        (notebooks / f"{stem}.ipynb").write_text("{}")
    monkeypatch.setenv("MNIST_PROFILE", "full")
    Report("00_first", "First", output_dir=tmp_path / "reports" / "results").record(acc=1)
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    Report("01_second", "Second", output_dir=tmp_path / "reports" / "results").record(acc=1)  # smoke only
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\nold\n{README_END}\n")

    assert main(readme, tmp_path / "reports", notebooks) == 1

    assert capsys.readouterr().err == ("error: No full-profile results for 01_second, 02_third: "
                                       "run `make notebooks NB=\"01 02\"` first.\n")
    assert "old" in readme.read_text(), "left as it was"


def test_hardware_names_the_machines_threads_not_the_count_a_config_fixes(monkeypatch):

    from mnist_utils import config

    monkeypatch.setattr(config, "usable_cpus", lambda: 7)  # a machine unlike this one, whatever it has
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # as use_threads does for a config with threads: 1
        assert ", 7 CPU threads" in hardware()
    finally:
        torch.set_num_threads(before)


def test_points_against_says_above_below_or_level_to_the_decimals_shown():
    from mnist_utils.report import points_against

    assert points_against(99.75, 99.70) == "0.05 points above"
    assert points_against(99.70, 99.72) == "0.02 points below"
    assert points_against(99.704, 99.701) == "level with"


def test_a_cell_run_again_replaces_what_it_declared(report):
    # in Jupyter a reader runs a cell again: its target, check, table and model are listed once, where they were
    report.target("acc", ">=", 99.4, "Accuracy", "%")
    report.target("params", "<", 8000, "Parameters")
    report.target("acc", ">=", 99.5, "Accuracy", "%")
    report.add_model("m", params=10, test_acc=99.0, seconds=1.0)
    report.add_model("n", params=10, test_acc=98.0, seconds=1.0)
    report.add_model("m", params=10, test_acc=99.1, seconds=1.0)
    report.publish_table("t", [{"a": 1}])
    report.publish_table("u", [{"a": 3}])
    report.publish_table("t", [{"a": 2}])
    report.check("Overfits", False, "gap 0.1 points")
    report.check("Fast", True, "2 s")
    report.check("Overfits", True, "gap 0.3 points")
    assert [(t.metric, t.threshold) for t in report.targets] == [("acc", 99.5), ("params", 8000)]
    assert [(c.claim, c.met) for c in report.checks] == [("Overfits", True), ("Fast", True)]
    assert [(m["name"], m["test_acc"]) for m in report.models] == [("m", 99.1), ("n", 98.0)]
    assert [(t["title"], t["rows"]) for t in report.tables] == [("t", [{"a": 2}]), ("u", [{"a": 3}])]


def test_a_cell_above_the_checks_run_again_takes_the_last_runs_checks_and_analysis_away(report, tmp_path):
    """In Jupyter a reader runs the training cell again, say with another config: the last run's checks and its
    Analysis describe numbers that are gone, so they go too, and the results read as a run short of its Analysis
    (which a later notebook, the README and the index refuse or mark) until the notebook reaches it again."""
    from mnist_utils.results import unfinished

    for measure in (lambda: report.record(acc=98.0), lambda: report.add_run("r", history=[]),
                    lambda: report.forget("x"), lambda: report.add_model("m", params=1, test_acc=1.0, seconds=1.0),
                    lambda: report.publish_table("t", [{"a": 1}])):
        report.record(acc=99.0)
        report.check("Accurate", True, "99.0%")
        report.show_analysis("Done.")
        assert unfinished(json.loads((tmp_path / "01_demo.json").read_text())) is None
        measure()
        assert (report.checks, report.analysis) == ([], [])
        saved = json.loads((tmp_path / "01_demo.json").read_text())
        assert saved["checks"] == [] and unfinished(saved).startswith("did not reach its Analysis")
        report.show_analysis("Again.")  # the Analysis cell alone, its checks not run again
        assert unfinished(report.to_dict()).startswith("has no checked claims")


def test_a_training_cut_short_is_neither_saved_nor_put_on_the_leaderboard(tmp_path, monkeypatch):
    """Notebook 01 trains in a loop written out in its cell: stopped there in Jupyter, its model and history hold
    the epochs done so far, which the next cells would save and list as the notebook's model."""
    from mnist_utils.checkpoints import save_and_record
    from mnist_utils.engine import EpochStats, History
    from mnist_utils.recipes import load_config
    from models import Model_1

    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path))
    monkeypatch.delenv("MNIST_RESULTS_PENDING", raising=False)
    history = History()
    for epoch in (1, 2):
        history.record(epoch, 0.1, EpochStats(1.0, 90.0, 100, 1.0))
    report = Report("01_step1_skeleton", "test", seed=1)
    with pytest.raises(ValueError, match=r"01 Model_1: its history has 2 epochs and the recipe 15, so the model is "
                                         r"not that recipe's training .*: run the training cell to its end"):
        save_and_record(report, "01 Model_1", Model_1(), load_config("step1"), history, seed=1, test_acc=90.0,
                        seconds=1.0)
    with pytest.raises(ValueError, match=r"its history has 2 epochs and the recipe 1,"):  # nor more than them
        save_and_record(report, "01 Model_1", Model_1(), load_config("step1", ["epochs=1"]), history, seed=1,
                        test_acc=90.0, seconds=1.0)
    assert report.models == [] and not (tmp_path / "models").exists(), "nothing saved, nothing on the leaderboard"
    early = load_config("step1", ["val_fraction=1/12", "patience=2"])  # early stopping may end a training early
    save_and_record(report, "01 Model_1", Model_1(), early, history, seed=1, test_acc=90.0, seconds=1.0)
    assert [model["name"] for model in report.models] == ["01 Model_1"]


def test_hardware_names_a_gpu_only_for_a_run_on_it(monkeypatch):
    """A results file says where its run computed: a GPU beside the processor only when the run used it (one run
    with MNIST_DEVICE=cpu on a machine with a GPU computed on the CPU), and the GPU the device names."""
    named = []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: named.append(device) or "Some GPU")
    assert "GPU" not in hardware() and "GPU" not in hardware(torch.device("cpu"))
    assert hardware(torch.device("cuda:1")).endswith(", GPU Some GPU") and named == [torch.device("cuda:1")]
