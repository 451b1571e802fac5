"""`python -m mnist_utils train`: a config trained into a run folder, its checkpoint kept and published, bad
input refused in one line before any file."""
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mnist_utils.checkpoints import paths
from mnist_utils.cli import main
from mnist_utils.config import PROJECT_ROOT
from mnist_utils.recipes import load_config


def test_train_a_tiny_config_then_test_and_predict_with_its_checkpoint(tmp_path, monkeypatch, capsys, make_picture,
                                                                       mnist):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")  # 2,048 training digits, one epoch
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    run = tmp_path / "run"
    # A validation split and keep_best: the checkpoint carries its validation figures (which epoch it keeps:
    # test_train_keeps_the_best_validation_epoch_not_the_last).
    overrides = ["--set", "val_fraction=1/8", "--set", "patience=2", "--set", "keep_best=true"]
    assert main(["train", "--config", "configs/step3.yaml", *overrides, "--out", str(run)]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "history.csv", "history.json", "run.json",
                                                     "run.safetensors", "train.log"]
    log = (run / "train.log").read_text()
    assert "test accuracy" in log
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1] and "val_acc" in history[0]

    weights, metadata = paths(tmp_path / "reports" / "smoke" / "models" / "step3-seed1")
    meta = json.loads(metadata.read_text())
    assert meta["model"] == {"name": "Model_3", "args": load_config("step3").model_args}
    assert f"step3: Model_3(widths={meta['model']['args']['widths']}), {meta['parameters']:,} parameters;" in log
    assert meta["seed"] == 1 and meta["epochs"] == 1
    assert meta["config"]["val_fraction"] == 0.125 and meta["source"] == "configs/step3.yaml"
    assert set(meta["metrics"]) >= {"val_loss", "val_acc", "test_acc"}
    printed = capsys.readouterr().out
    shown = printed.split("checkpoint: ", 1)[1].split()[0].rstrip(";,.")
    assert Path(shown).resolve() == Path(weights).resolve(), printed

    assert main(["test", "--model", str(weights), "--out", str(tmp_path / "tested"),
                 "--log", str(tmp_path / "log.jsonl")]) == 0
    tested = json.loads((tmp_path / "tested" / "metrics.json").read_text())
    assert tested["accuracy"] == pytest.approx(meta["metrics"]["test_acc"], abs=1e-6)
    image = tmp_path / "digit.png"
    image.write_bytes(make_picture(mnist.test.images[0]))
    assert main(["predict", "--model", str(weights), str(image)]) == 0
    assert str(image) in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--config", "configs/step4.yaml"], "no such config file; choose one of"),
    (["--config", "step3", "--set", "epoch=3"], "unknown key epoch; did you mean epochs?"),
    (["--config", "step3", "--set", "epochs=three"], "epochs: expected int, got 'three'"),
    (["--config", "step3", "--set", "model=Model_9"], "model: unknown 'Model_9'; choose one of Model_1"),
    (["--config", "step3", "--set", "lr=-1"], "lr: must be above 0 and finite, got -1.0"),
    (["--config", "step3", "--set", "augment.scale=[2,1]"], "augment.scale: [smallest, largest] zoom"),
    (["--config", "step3", "--set", "augment.translate=5"], "augment.translate: a share of the image in [0, 0.5]"),
    (["--config", "step3", "--device", "foo"], "--device 'foo' is not a device this project runs on"),
    (["--config", "step3", "--set", "model_args.widths=[8,8]"],  # what the model takes, with its types
     "do not fit Model_3 on 28×28 digits (it takes Model_3(widths: tuple[int, ...] = (12, 10, 14, 12, 10))): not "
     "enough values"),
    (["--config", "step3", "--set", "model_args.depth=3"],
     "do not fit Model_3 on 28×28 digits (it takes Model_3(widths"),
    (["--config", "step3", "--set", "model_args.widths=[0,0,0,0,0]"], "weight of size [0, 1, 5, 5]"),  # at a batch
    (["--config", "step3", "--set", "model_args.widths=[12,10,14,12,-4]"], "negative dimension -4"),
    (["--config", "step3", "--set", "image_size=5"], "do not fit Model_3 on 5×5 digits"),
    (["--config", "step3", "--set", "image_size=5"], "to 28×28 first. Give it model_args and an image_size that fit"),
    (["--config", "step3", "--set", "batches_per_epoch=0"], "batches_per_epoch: must be at least 1"),
    (["--config", "step3", "--set", "freeze_backbone=true"],
     "freeze_backbone: only model: pretrained has a backbone to freeze, not Model_3"),
    (["--config", "step3", "--set", "model=Model_1", "--set", "model_args.widths=[8]"], "got an unexpected keyword "
     "argument 'widths'. Give it the model_args it takes (model_args={} for its defaults)"),
    (["--config", "finetune_full", "--set", "val_fraction=0.99"], "add up to more than the whole training set"),
    (["--config", "step3", "--set", "batch_size=100000", "--set", "drop_last=true"],  # what the data decide
     "training images make no whole batch of 100000, and drop_last drops the rest"),
    (["--config", "finetune_full", "--set", "model_args.family=x"], "family: unknown 'x'; choose one of auto"),
])
def test_train_refuses_a_bad_config_in_one_line_and_writes_nothing(arguments, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["train", *arguments, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "reports").exists()


def test_train_publishes_to_reports_models_only_where_no_model_of_its_name_is(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    published = paths(tmp_path / "reports" / "smoke" / "models" / "step1-seed1")[0]
    def same_weights(a, b):  # the tensors; the files' bytes too (see test_the_same_weights_save_to_the_same_bytes)
        tensors_a, tensors_b = load_file(a), load_file(b)
        same = tensors_a.keys() == tensors_b.keys() and all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)
        assert same == (a.read_bytes() == b.read_bytes())
        return same

    assert main(["train", "--config", "step1", "--out", str(tmp_path / "first")]) == 0
    first = published.read_bytes()
    assert same_weights(published, tmp_path / "first" / "first.safetensors"), "the run's own, published"

    # A second run with other weights keeps the model already there (a notebook's, say), and says where its own is.
    assert main(["train", "--config", "step1", "--seed", "1", "--set", "lr=0.02", "--out", str(tmp_path / "second")]) == 0
    printed = capsys.readouterr().out
    assert published.read_bytes() == first and "is there already and is kept (pass --replace" in printed
    assert printed.count("kept") == 1, "said once"
    second = tmp_path / "second" / "second.safetensors"
    assert not same_weights(second, published) and str(second) in printed

    assert main(["train", "--config", "step1", "--set", "lr=0.02", "--out", str(tmp_path / "third"), "--replace"]) == 0
    assert same_weights(published, second), "--replace puts the new model there (same seed and recipe, same weights)"

    # A model there whose files are damaged is not kept: a truncated file would stay the one the page and `test` find.
    published.write_bytes(published.read_bytes()[:1000])
    assert main(["train", "--config", "step1", "--out", str(tmp_path / "fourth")]) == 0
    printed = capsys.readouterr().out
    assert "the checkpoint there cannot be loaded, so this run's replaces it" in printed
    assert "is 1,000 bytes where its metadata" in printed
    assert same_weights(published, tmp_path / "fourth" / "fourth.safetensors")


@pytest.mark.parametrize("keep_best, kept_epoch", [("true", 2), ("false", 3)])
def test_train_keeps_the_epoch_its_config_keeps_the_best_or_the_last(keep_best, kept_epoch, tmp_path, monkeypatch):
    """The smoke profile runs one epoch, where best and last are the same: here a stand-in for the training runs
    three, changing the weights each time, and validation improves only at the second. With keep_best the run keeps
    that epoch; without it the last, as fit gives it back to a notebook (05's configs validate without keep_best)."""
    from mnist_utils import trainer
    from mnist_utils.engine import History
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    weights_after = {}  # epoch → the model's weights when that epoch ended

    def three_epochs(model, recipe, *args, on_epoch, **kwargs):
        assert recipe.monitor_from == 1, "scheduler none: validation is watched from the first epoch"
        rows = []
        for epoch, val_loss in ((1, 0.3), (2, 0.2), (3, 0.25)):
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(0.01 * epoch)
            weights_after[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
            rows.append({"epoch": epoch, "train_loss": 0.1, "val_loss": val_loss, "val_acc": 90.0, "seconds": 1.0})
            on_epoch(rows[-1], val_loss == min(row["val_loss"] for row in rows))
        return History(rows), 0.0

    monkeypatch.setattr(trainer, "train_model", three_epochs)
    run = tmp_path / "run"
    assert main(["train", "--config", "step1", "--set", "val_fraction=1/8", "--set", f"keep_best={keep_best}",
                 "--out", str(run)]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["epochs"] == kept_epoch and meta["metrics"]["epochs_run"] == 3
    assert meta["metrics"]["val_loss"] == {2: 0.2, 3: 0.25}[kept_epoch]
    kept = load_file(run / "run.safetensors")
    assert all(torch.equal(kept[k], weights_after[kept_epoch][k]) for k in kept), f"epoch {kept_epoch}'s weights"
    other = 5 - kept_epoch  # the epoch not kept: 3 or 2
    assert not all(torch.equal(kept[k], weights_after[other][k]) for k in kept)


def test_a_config_outside_the_project_is_recorded_by_its_own_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    mine = tmp_path / "mine.yaml"
    mine.write_text((PROJECT_ROOT / "configs" / "step1.yaml").read_text())
    assert main(["train", "--config", str(mine), "--out", str(tmp_path / "run")]) == 0
    meta = json.loads(paths(tmp_path / "reports" / "smoke" / "models" / "mine-seed1")[1].read_text())
    assert meta["source"] == str(mine.resolve())


def test_train_seed_trains_and_publishes_that_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    models = tmp_path / "reports" / "smoke" / "models"
    for seed in (1, 2):  # step1.yaml's seed is 1
        assert main(["train", "--config", "step1", "--seed", str(seed), "--out", str(tmp_path / f"seed{seed}")]) == 0
    assert json.loads(paths(models / "step1-seed2")[1].read_text())["seed"] == 2
    one, two = load_file(paths(models / "step1-seed1")[0]), load_file(paths(models / "step1-seed2")[0])
    assert not all(torch.equal(one[k], two[k]) for k in one), "another seed, other weights"


def test_a_diverging_run_stops_with_one_line_and_publishes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["train", "--config", "step1", "--set", "lr=1e6", "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    error = captured.err.splitlines()[-1]  # after the epoch's progress bar
    assert error.startswith("error: ") and "training diverged; lower the learning rate" in error
    assert error.endswith(f"the run folder keeps its 1 finished epoch (stopped before its checkpoint was written): "
                          f"{tmp_path / 'run'}"), "what the folder keeps, and where"
    assert "diverged" not in captured.out, "said once, by the command: the log's line goes to train.log only"
    assert not (tmp_path / "reports" / "smoke" / "models").exists() and not (tmp_path / "run" / "run.json").exists()
    assert "stopped: step1: train_loss is nan" in (tmp_path / "run" / "train.log").read_text()
    assert json.loads((tmp_path / "run" / "history.json").read_text())[0]["epoch"] == 1, "the epoch it ran is kept"


def test_ctrl_c_during_train_keeps_the_run_folder_and_ends_with_one_line(tmp_path, monkeypatch, capsys):
    from mnist_utils import trainer
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    real = trainer.train_model

    def stopped_after_one_epoch(*args, on_epoch, **kwargs):
        real(*args, on_epoch=on_epoch, **kwargs)  # the smoke profile's one epoch, checkpoint included
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_model", stopped_after_one_epoch)
    assert main(["train", "--config", "step1", "--out", str(tmp_path / "run")]) == 130
    captured = capsys.readouterr()
    last = captured.err.splitlines()[-1]  # after the epoch's progress bar
    run = tmp_path / "run"
    assert last == f"stopped (Ctrl-C): the run folder keeps its 1 finished epoch and its checkpoint: {run}"
    assert "stopped" not in captured.out
    assert {"run.safetensors", "run.json", "history.json", "curves.png"} <= {p.name for p in run.iterdir()}
    assert "stopped (Ctrl-C)" in (run / "train.log").read_text()
    assert not (tmp_path / "reports" / "smoke" / "models").exists(), "an unfinished run publishes nothing"
    assert json.loads((run / "run.json").read_text())["title"] == (  # what `predict` and the page call it
        "Step 1: a light skeleton with BatchNorm (smoke profile: 1 of 15 epochs, the first 2,048 training and 1,024 "
        "test images) — epoch 1 of 1, kept before its run ended"), "its title says the run did not end"


@pytest.mark.parametrize("stopped_in, kept, files", [
    ("train_model", "no epoch had finished: the run folder holds only train.log", ["train.log"]),
    ("save_checkpoint", "the run folder keeps its 1 finished epoch (stopped before its checkpoint was written)",
     ["history.csv", "history.json", "train.log"]),  # Ctrl-C while the first checkpoint was being written
])
def test_ctrl_c_says_what_the_run_folder_really_keeps(stopped_in, kept, files, tmp_path, monkeypatch, capsys):
    from mnist_utils import trainer
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, stopped_in, stopped)
    run = tmp_path / "run"
    assert main(["train", "--config", "step1", "--out", str(run)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == f"stopped (Ctrl-C): {kept}: {run}"
    assert sorted(p.name for p in run.iterdir() if p.name != "curves.png") == files


def test_the_epochs_so_far_are_on_disk_after_each_epoch_not_only_when_the_run_ends(tmp_path, monkeypatch):
    import dataclasses

    from mnist_utils import config, trainer
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setitem(config._PROFILES, "smoke", dataclasses.replace(config._PROFILES["smoke"], max_epochs=2))
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    seen = []

    def look_after_each_epoch(*args, on_epoch, **kwargs):  # what a Ctrl-C in the run's last writes would leave
        def looked(row, improved):
            on_epoch(row, improved)
            seen.append(json.loads((tmp_path / "run" / "history.json").read_text())[-1]["epoch"])
        return real(*args, on_epoch=looked, **kwargs)

    real = trainer.train_model
    monkeypatch.setattr(trainer, "train_model", look_after_each_epoch)
    assert main(["train", "--config", "step1", "--set", "epochs=2", "--out", str(tmp_path / "run")]) == 0
    assert seen == [1, 2] and (tmp_path / "run" / "history.csv").read_text().count("\n") == 3


def test_a_checkpoint_trained_with_changes_or_cuts_says_so_in_its_title(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    untitled = tmp_path / "untitled.yaml"
    untitled.write_text("base: step1.yaml\ntitle: ''\n")
    assert main(["train", "--config", str(untitled), "--set", "lr=0.04", "--out", str(tmp_path / "run")]) == 0
    title = json.loads((tmp_path / "run" / "run.json").read_text())["title"]
    assert title == ("untitled (--set lr=0.04; smoke profile: 1 of 15 epochs, the first 2,048 training and 1,024 "
                     "test images)"), "the config's name where it has no title"


class LeftPipe:
    """A console whose reader has left (`| head` has read its lines)."""

    def write(self, _):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass

    def isatty(self):
        return False


def test_a_console_nobody_reads_any_more_stops_getting_lines_and_the_run_goes_on(tmp_path, capsys):
    from mnist_utils import trainer
    log = trainer._logger(tmp_path / "train.log")
    console = log.handlers[0]
    console.setStream(trainer.Console(LeftPipe()))
    log.info("first")
    log.info("second")
    assert capsys.readouterr().err == "", "no logging error's traceback"
    assert console.stream.left

    class Closed(LeftPipe):  # a console that fails otherwise still says so
        def write(self, _):
            raise ValueError("I/O operation on closed file")

    console.setStream(trainer.Console(Closed()))
    log.info("third")
    assert "Logging error" in capsys.readouterr().err
    for handler in log.handlers:
        handler.close()
    assert (tmp_path / "train.log").read_text().count("\n") == 3, "train.log keeps every line"


def test_a_run_whose_progress_bars_reader_left_goes_on_to_publish_its_model(tmp_path, monkeypatch, capsys):
    # `train ... 2>&1 | head -1`: the progress bars write to stderr, whose reader has gone
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setattr(sys, "stderr", LeftPipe())
    assert main(["train", "--config", "step1", "--out", str(tmp_path / "run")]) == 0
    assert paths(tmp_path / "reports" / "smoke" / "models" / "step1-seed1")[0].exists(), "tested and published"
    assert "test accuracy" in (tmp_path / "run" / "train.log").read_text()


def test_a_command_whose_reader_left_ends_quietly_with_the_shells_status(monkeypatch, capsys):
    from mnist_utils import cli, commands
    silenced = []
    def reader_left(args):  # as print does once `| head` has read its lines
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "run_predict", reader_left)
    monkeypatch.setattr(commands, "stdout_to_nowhere", lambda: silenced.append(True))
    assert main(["predict", "x.png"]) == 141 and silenced == [True]
    assert capsys.readouterr().err == ""


def test_a_run_folder_given_as_dot_names_its_checkpoint_after_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    (tmp_path / "myrun").mkdir()
    monkeypatch.chdir(tmp_path / "myrun")
    assert main(["train", "--config", "step1", "--out", "."]) == 0
    assert {"myrun.safetensors", "myrun.json", "train.log"} <= {p.name for p in (tmp_path / "myrun").iterdir()}


def test_train_refuses_an_out_folder_an_earlier_run_wrote_and_its_default_folder_is_new(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["train", "--config", "step1"]) == 0  # without --out: reports/smoke/runs/step1-seed1-TIME
    (earlier,) = (tmp_path / "reports" / "smoke" / "runs").iterdir()
    assert earlier.name.startswith("step1-seed1-") and (earlier / f"{earlier.name}.safetensors").exists()
    kept = {p.name: p.read_bytes() for p in earlier.iterdir()}
    capsys.readouterr()

    assert main(["train", "--config", "step2", "--out", str(earlier)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: --out {earlier}: it holds ") and captured.err.count("\n") == 1
    assert "give a new or empty folder, or remove this one" in captured.err and captured.out == ""
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == kept, "the earlier run untouched, its log too"

    # Refused first, before the config is even read: a pretrained backbone's weights would load before it otherwise.
    assert main(["train", "--config", "no-such-config", "--out", str(earlier)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {earlier}: it holds ")

    # The Python API refuses it as the command line does: the check is the trainer's, not the parser's.
    from mnist_utils.recipes import ConfigError
    from mnist_utils.trainer import train_from_config
    with pytest.raises(ConfigError, match="it holds .* give a new or empty folder"):
        train_from_config("step2", out_dir=earlier)
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == kept


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    from mnist_utils.trainer import _new_folder
    wanted = tmp_path / "runs" / "step1-seed1-20261205-071500"
    made = [_new_folder(wanted) for _ in range(3)]
    assert [p.name for p in made] == [wanted.name, f"{wanted.name}-2", f"{wanted.name}-3"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)


def test_a_smoke_train_says_what_the_profile_cut_and_how_to_test_in_that_profile(tmp_path, monkeypatch, capsys):
    from mnist_utils.config import get_profile
    from mnist_utils.trainer import profile_cuts
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["train", "--config", "step1", "--set", "epochs=200", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split(" ", 1)[1].startswith("smoke profile: 1 of 200 epochs, the first 2,048 training and 1,024 "
                                                  "test images; step1: Model_1, 6,950 parameters; 1 epoch"), printed[0]
    # As printed, the command tests in the profile that trained it, into reports/smoke/, not the full run's.
    assert " MNIST_PROFILE=smoke python -m mnist_utils test --model " in printed[-1], printed[-1]
    assert printed[-1].endswith("/reports/smoke/models/step1-seed1.safetensors`"), printed[-1]
    recipe = load_config("step1", ["epochs=200"])
    assert profile_cuts(recipe, recipe.for_profile(get_profile("full")), get_profile("full")) == "", \
        "the full profile cuts nothing and says nothing"


@pytest.mark.parametrize("arguments, message", [
    (["--config", "step1", "--bogus"], "unrecognized arguments: --bogus. See `python -m mnist_utils train --help`."),
    (["--config", "step1", "--seed", "-1"], "argument --seed: a seed is a whole number from 0 to 2**64 - 1, got -1: give e.g. --seed 2"),
])
def test_train_refuses_a_wrong_option_in_one_line_naming_its_own_help(arguments, message, tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")  # were it accepted, a short run
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    with pytest.raises(SystemExit) as exit_:  # argparse's own mistakes
        main(["train", *arguments, "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.startswith("error: ") and message in error and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == [], "nothing trained, nothing published"


def test_an_out_folder_is_refused_where_a_file_is_and_named_by_its_first_file_and_how_many_more(tmp_path):
    from mnist_utils.recipes import ConfigError
    from mnist_utils.trainer import _check_run_folder
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ConfigError, match="notes.txt: a file is there; give the path of a folder for the run"):
        _check_run_folder(tmp_path / "notes.txt")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("train.log", "history.csv", "earlier.json"):
        (earlier / name).write_text("")
    with pytest.raises(ConfigError, match=r"it holds earlier\.json and 2 more \(an earlier run's\?\)"):
        _check_run_folder(earlier)
    with pytest.raises(ConfigError, match="notes.txt is a file, not a folder; give a folder you can write to"):
        _check_run_folder(tmp_path / "notes.txt" / "run")  # a folder that cannot be made: refused before any work
    assert (tmp_path / "notes.txt").read_text() == "", "the file in the way is left as it was"
    # what a file browser leaves in a folder it showed is no run's: the folder counts as empty
    shown = tmp_path / "shown"
    shown.mkdir()
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (shown / name).write_text("")
    _check_run_folder(shown)


def test_train_refuses_a_reports_folder_it_cannot_write_before_any_work(tmp_path, monkeypatch):
    from mnist_utils.recipes import ConfigError
    from mnist_utils.trainer import _check_run_folder
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "a-file"))
    # the runs folder by default; the models folder, where the checkpoint is published, with --out too
    for out in (None, tmp_path / "run"):
        with pytest.raises(ConfigError, match="where `train` writes its model: .*a-file is a file, not a folder; "
                                              "set MNIST_REPORTS_DIR to a folder you can write to"):
            _check_run_folder(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "nothing made"


def test_train_from_config_says_whether_it_published_its_model_or_kept_the_one_there(tmp_path, monkeypatch):
    from mnist_utils.trainer import train_from_config
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    first = train_from_config("step1", out_dir=tmp_path / "first")
    assert first.published and first.path == paths(tmp_path / "reports" / "smoke" / "models" / "step1-seed1")[0]
    second = train_from_config("step1", out_dir=tmp_path / "second")  # a model of its name is there: kept
    assert not second.published and second.path == tmp_path / "second" / "second.safetensors"


def _notebook_01_loop() -> str:
    """The training loop notebook 01 writes out, as its source holds it."""
    notebook = json.loads((PROJECT_ROOT / "notebooks" / "01_step1_skeleton.ipynb").read_text())
    loops = ["".join(cell["source"]) for cell in notebook["cells"]
             if cell["cell_type"] == "code" and "for epoch in range(1, recipe.epochs + 1)" in "".join(cell["source"])]
    assert len(loops) == 1, "notebook 01 writes its training loop out in one cell"
    return loops[0]


def test_notebook_01s_written_out_loop_trains_what_train_on_its_config_trains(mnist, capsys):
    from mnist_utils.config import computing_on
    from mnist_utils.data import MNIST
    from mnist_utils.training import build_seeded, check_plain_loop, train_recipe
    from models import Model_1
    import utils

    data = MNIST(mnist.train.head(1_024), mnist.test.head(500))
    recipe = load_config("step1", ["train_probe=300"]).with_epochs(2)
    check_plain_loop(recipe, Model_1)
    cpu = torch.device("cpu")
    with computing_on(recipe.threads):  # what the notebook's use_threads does
        cli = train_recipe(build_seeded(recipe, 1), recipe, data, cpu, seed=1, progress=None)
        scope = {**vars(utils), "Model_1": Model_1, "recipe": recipe, "data": data, "device": cpu, "SEED": 1}
        exec(_notebook_01_loop(), scope)
    written = scope["history"]
    timing = {"seconds", "images_per_s"}
    assert [{k: v for k, v in row.items() if k not in timing} for row in written.rows] == \
           [{k: v for k, v in row.items() if k not in timing} for row in cli.rows]
    assert len(written) == 2 and written.rows[0]["train_eval_acc"] > 0, "two epochs, the probe scored in each"


@pytest.mark.parametrize("changes, named", [
    (["ema=0.99", "scheduler=onecycle"], "would ignore scheduler: onecycle; ema: 0.99"),
    (["label_smoothing=0.1"], "would ignore label_smoothing: 0.1"),
    (["val_fraction=0.1", "keep_best=true"], "val_fraction: 0.1; keep_best: True"),
    (["model=Model_2"], "model: Model_2 (it builds Model_1() as it is: set model: Model_1)"),
    (["model_args.dropout=0.1"], "set model: Model_1, no model_args"),
])
def test_notebook_01s_loop_refuses_a_config_it_would_not_train_as_written(changes, named):
    from mnist_utils.recipes import ConfigError
    from mnist_utils.training import check_plain_loop
    from models import Model_1

    with pytest.raises(ConfigError, match=r"train it with run_recipe \(as notebook 02 does\)") as refused:
        check_plain_loop(load_config("step1", changes), Model_1)
    assert named in str(refused.value)
    with pytest.raises(ConfigError, match="set train_probe to how many"):
        check_plain_loop(load_config("step1", ["train_probe=0"]), Model_1)
