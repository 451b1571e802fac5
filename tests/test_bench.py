"""The benchmark: a --quick run end to end (its figures in the JSON and in the printout), and its helpers.
No assertion is about speed: these check that the figures are measured, kept and reported consistently."""
import json

import pytest
import torch

from mnist_utils import bench
from mnist_utils.bench import Sizes
from mnist_utils.commands import UsageError
from mnist_utils.recipes import load_config


def test_quick_run_prints_and_writes_every_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path))
    full = tmp_path / "bench.json"  # a full run's figures, which `make readme` reads: a quick run leaves them alone
    full.write_text('{"quick": false}\n')
    assert bench.main(["--quick"]) == 0
    printed = capsys.readouterr().out
    path = tmp_path / "smoke" / "bench.json"
    assert full.read_text() == '{"quick": false}\n' and f"machine's facts: {path}" in printed
    results = json.loads(path.read_text())
    assert results["quick"] is True

    pipeline = results["pipeline"]
    reference, project = pipeline["reference_best_images_per_s"], pipeline["project_images_per_s"]
    assert set(pipeline["reference_images_per_s"]) == {str(w) for w in bench.REFERENCE_WORKERS}
    assert min(pipeline["reference_images_per_s"].values()) > 0 and project > 0
    assert reference == max(pipeline["reference_images_per_s"].values())
    assert pipeline["ratio"] == pytest.approx(project / reference)
    assert f"{reference:,.0f} images/s" in printed and f"{project:,.0f} images/s" in printed
    assert f"project / reference = {pipeline['ratio']:.1f}×" in printed
    # The steps alone, fed batches made ahead, bound the ratio any pipeline could reach.
    assert pipeline["steps_images_per_s"] > 0
    assert pipeline["ceiling_ratio"] == pytest.approx(pipeline["steps_images_per_s"] / reference)
    assert f"no pipeline, however fast, gets past {pipeline['ceiling_ratio']:.1f}× here" in printed

    accuracy = results["accuracy"]
    assert accuracy["train_images"] == bench.QUICK.train_images and len(accuracy["epochs"]) == bench.QUICK.epochs
    assert set(accuracy["reached"]) == {str(t) for t in bench.STEP3_GOALS} and accuracy["config"] == "step3"
    assert accuracy["reproduced"] is None, "one run: nothing to compare it with"
    fastest = results["fastest"]
    assert fastest["config"] == "fastest" and set(fastest["reached"]) == {str(t) for t in bench.FASTEST_GOALS}
    assert all(hit["goal_seconds"] == bench.FASTEST_GOALS[float(t)] for t, hit in fastest["reached"].items())
    # Run again from the same seed, the fastest recipe gives the same accuracies: its time is the runs' median.
    assert len(fastest["runs"]) == bench.QUICK.fastest_runs == 2 and fastest["reproduced"] is True
    assert fastest["epochs"][0]["seconds"] == pytest.approx(sum(run[0] for run in fastest["runs"]) / 2)
    assert "2 runs, seconds since the start after each epoch: " in printed and "their median below" in printed
    example = results["example"]
    assert len(example["epochs"]) == bench.QUICK.epochs and 0 <= example["epochs"][0]["test_acc"] <= 100
    assert "PyTorch's MNIST example" in printed and example["met"] is ((example["ratio"] or 0) >= bench.EXAMPLE_GOAL_RATIO)
    assert results["machine"]["torch_threads"] >= 1 and results["machine"]["hardware"] in printed
    assert "knobs" not in results, "--knobs is off by default"


def test_first_reaching_finds_the_first_epoch_at_or_above_a_threshold():
    rows = [{"epoch": 1, "test_acc": 98.7, "seconds": 10.0}, {"epoch": 2, "test_acc": 99.0, "seconds": 21.0},
            {"epoch": 3, "test_acc": 98.9, "seconds": 32.0}, {"epoch": 4, "test_acc": 99.45, "seconds": 43.0}]
    assert bench.first_reaching(rows, 99.0)["epoch"] == 2
    assert bench.first_reaching(rows, 99.4)["seconds"] == 43.0
    assert bench.first_reaching(rows, 99.5) is None
    assert bench.first_reaching([], 99.0) is None


def test_runs_of_one_seed_count_with_their_median_time_when_they_reproduce():
    runs = [[{"epoch": 1, "test_acc": 98.9, "seconds": s1}, {"epoch": 2, "test_acc": 99.2, "seconds": s2}]
            for s1, s2 in ((5.0, 10.0), (4.0, 12.0), (9.0, 20.0))]  # a slow run: not the mean, the median
    rows, reproduced = bench.typical_run(runs)
    assert reproduced and rows == [{"epoch": 1, "test_acc": 98.9, "seconds": 5.0},
                                   {"epoch": 2, "test_acc": 99.2, "seconds": 12.0}]
    runs[1][1] = {**runs[1][1], "test_acc": 99.1}  # one epoch scored otherwise: not the same run again
    assert bench.typical_run(runs) == (runs[0], False)
    shorter = [runs[0], runs[0][:1]]  # one run stopped an epoch sooner: not the same run either
    assert bench.typical_run(shorter) == (runs[0], False) and bench.typical_run(shorter[::-1]) == (runs[0][:1], False)


def test_reached_table_times_each_threshold_against_its_goal(capsys):
    rows = [{"epoch": 1, "test_acc": 99.1, "seconds": 8.0}, {"epoch": 2, "test_acc": 99.3, "seconds": 16.0},
            {"epoch": 3, "test_acc": 99.45, "seconds": 41.0}]
    reached = bench.reached_table(rows, {99.0: 10.0, 99.4: 40.0, 99.6: None})
    assert reached["99.0"] == {"epoch": 1, "seconds": 8.0, "goal_seconds": 10.0, "met": True}
    assert reached["99.4"]["met"] is False and reached["99.4"]["seconds"] == 41.0, "41 s misses a 40 s goal"
    assert reached["99.6"] == {"epoch": None, "seconds": None, "goal_seconds": None, "met": None}
    assert "99.6%: not reached" in capsys.readouterr().out


def test_the_example_is_timed_against_the_fastest_recipe_to_the_same_accuracy(monkeypatch, capsys):
    rows = [{"epoch": 1, "test_acc": 98.5, "seconds": 60.0}, {"epoch": 2, "test_acc": 99.1, "seconds": 120.0}]
    monkeypatch.setattr(bench.example_reference, "example_time_to_accuracy", lambda *args, **kwargs: rows)
    fastest = {"config": "fastest", "reached": {"99.0": {"epoch": 2, "seconds": 5.0}}}
    example = bench.against_example(fastest, torch.device("cpu"), bench.QUICK)
    assert example["reached"]["seconds"] == 120.0 and example["ratio"] == pytest.approx(24.0) and example["met"]
    printed = capsys.readouterr().out
    assert "the example 120.0 s, fastest 5.0 s: 24.0× faster" in printed
    slower = bench.against_example({**fastest, "reached": {"99.0": {"epoch": 3, "seconds": 8.0}}}, torch.device("cpu"),
                                   bench.QUICK)
    assert slower["ratio"] == pytest.approx(15.0) and not slower["met"], "15× misses the 20× goal"
    unreached = bench.against_example({**fastest, "reached": {"99.0": {"epoch": None, "seconds": None}}},
                                      torch.device("cpu"), bench.QUICK)
    assert unreached["ratio"] is None and not unreached["met"]
    assert "a ratio cannot be given" in capsys.readouterr().out


def test_time_to_accuracy_refuses_a_schedule_stepped_per_epoch(mnist):
    # train() would step a per-epoch schedule after every batch: 469 decays an epoch instead of one
    with pytest.raises(ValueError, match="after every batch .* not 'step'"):
        bench.accuracy_run(load_config("fastest").replace(scheduler="step"), mnist, torch.device("cpu"), 99.0)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_time_to_accuracy_trains_and_tests_as_train_recipe_does(mnist, ema):
    from mnist_utils.data import MNIST
    from mnist_utils.engine import seed_everything
    from mnist_utils.recipes import build_model
    from mnist_utils.training import train_recipe

    data = MNIST(train=mnist.train.head(512), test=mnist.test.head(256))
    recipe = load_config("fastest", [f"ema={ema}"] if ema else []).with_epochs(2)
    rows = bench.accuracy_run(recipe, data, torch.device("cpu"), stop_at=100.0)
    seed_everything(bench.SEED)
    history = train_recipe(build_model(recipe), recipe, data, torch.device("cpu"), seed=bench.SEED, progress=None)
    assert [row["test_acc"] for row in rows] == history["test_acc"], "the average is tested where the recipe asks"


def test_epochs_until_stops_at_the_first_epoch_that_reaches_the_threshold():
    from mnist_utils.engine import epochs_until

    accuracies, ran = [97.0, 99.1, 98.9, 99.5, 99.6], []
    rows = epochs_until(lambda epoch: ran.append(epoch) or accuracies[epoch - 1], epochs=5, stop_at=99.4)
    assert ran == [1, 2, 3, 4] and [r["test_acc"] for r in rows] == accuracies[:4], "epoch 5 never runs"
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(0 <= a["seconds"] <= b["seconds"] for a, b in zip(rows, rows[1:]))
    assert len(epochs_until(lambda epoch: 50.0, epochs=3, stop_at=99.0)) == 3, "never reached: every epoch runs"


def test_pipeline_contestants_are_timed_in_turn_and_each_keeps_its_fastest_round(monkeypatch):
    order, clock = [], iter([0.0, 1.0, 1.0, 3.0, 3.0, 3.5, 3.5, 7.5])  # a: 1 s then 0.5 s; b: 2 s then 4 s
    monkeypatch.setattr(bench, "take_steps",
                        lambda model, batches, optimizer, device, steps: order.append((model, steps)) or 100)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    contestants = {"a": (torch.nn.Linear(1, 1), None, None), "b": (torch.nn.Linear(1, 1), None, None)}
    speed = bench.speeds_in_turn(contestants, torch.device("cpu"), Sizes(steps=3, warmup=2, repeats=2))
    a, b = contestants["a"][0], contestants["b"][0]
    assert order == [(a, 2), (b, 2), (a, 3), (b, 3), (a, 3), (b, 3)], "both warm up, then rounds, each in turn"
    assert speed == {"a": 200.0, "b": 50.0}, "each contestant's fastest round: 100 images in 0.5 s and in 2 s"


def test_a_profile_that_does_not_exist_is_one_usage_error_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setenv("MNIST_PROFILE", "bogus")  # a whole run's figures go to the profile's folder: it is read first
    with pytest.raises(UsageError, match="Unknown MNIST_PROFILE 'bogus'"):
        bench.main([])
    assert "Machine:" not in capsys.readouterr().out


def test_a_run_with_less_in_it_than_make_bench_leaves_the_whole_runs_figures_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path))
    (tmp_path / "bench.json").write_text("{}\n")  # a whole run's, which `make readme` reads
    assert bench.main(["--skip-accuracy", "--steps", "1", "--repeats", "1"]) == 0
    results = json.loads((tmp_path / "smoke" / "bench.json").read_text())
    assert results["whole"] is False and results["quick"] is False and "accuracy" not in results
    assert (tmp_path / "bench.json").read_text() == "{}\n"
    capsys.readouterr()


@pytest.mark.parametrize("where, why", [("a_file/bench.json", "is a file, not a folder"),
                                        ("a_folder", "is a folder, not a file")])
def test_figures_that_could_not_be_written_are_refused_before_anything_is_measured(where, why, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(UsageError, match=f"the figures cannot be written: .*{why}. Give --json a file that can be"):
        bench.main(["--quick", "--json", str(tmp_path / where)])
    assert "Machine:" not in capsys.readouterr().out, "nothing measured"


def test_the_reference_pipeline_augments_as_its_recipe_does_and_no_more():
    """The pipelines differ in how they augment, not in what: each transform the recipe has, and none it has not
    (one left in, off, would still cost the reference a draw per image)."""
    step3, more = load_config("step3"), load_config("step3", ["augment.shear=10", "augment.erase_p=0.5"])
    plain, augmented = (bench.reference_loader(recipe, 0, torch.device("cpu")).dataset.transform.transforms
                        for recipe in (step3, more))
    assert bench.reference_loader(step3, 0, torch.device("cuda")).pin_memory, "for a GPU, as PyTorch's example"
    assert [type(t).__name__ for t in plain] == ["RandomRotation", "RandomAffine", "ToTensor", "Normalize"]
    wanted = step3.augment  # its amounts, as the project's pipeline draws them
    assert (plain[0].degrees, plain[1].translate, plain[1].shear) == ([-wanted.rotation, wanted.rotation],
                                                                      (wanted.translate,) * 2, None)
    assert tuple(plain[1].scale) == tuple(wanted.scale)
    assert [type(t).__name__ for t in augmented] == ["RandomRotation", "RandomAffine", "ToTensor", "RandomErasing",
                                                    "Normalize"]
    assert augmented[1].shear == [-10.0, 10.0]
    assert (augmented[3].p, augmented[3].scale) == (0.5, more.augment.erase_area)
