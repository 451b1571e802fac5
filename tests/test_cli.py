"""`python -m mnist_utils test | predict` with a real checkpoint: the files and lines they produce, and one
line, exit status 2 and nothing written for each kind of bad input."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from mnist_utils.checkpoints import paths
from mnist_utils.cli import main
from mnist_utils.config import PROJECT_ROOT
from mnist_utils.recipes import load_config


@pytest.fixture
def smoke(monkeypatch):
    """The smoke profile: `test` evaluates 1,024 test digits instead of 10,000."""
    monkeypatch.setenv("MNIST_PROFILE", "smoke")


def test_test_writes_every_result_and_logs_a_line(step3_checkpoint, tmp_path, smoke, capsys):
    out, log = tmp_path / "results", tmp_path / "performance.jsonl"
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(out), "--log", str(log)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "testing on 1,024 images" in captured.err, "a progress bar while it evaluates"
    assert sorted(p.name for p in out.iterdir()) == ["confusion.csv", "confusion.png", "metrics.json",
                                                     "misclassified.png", "per_class.csv", "per_class.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 1024 and metrics["model"] == "Model_3" and metrics["profile"] == "smoke"
    assert 95 < metrics["accuracy"] <= 100 and f"accuracy {metrics['accuracy']:.2f}%" in printed
    confusion = metrics["confusion"]
    assert sum(map(sum, confusion)) == 1024
    assert metrics["accuracy"] == pytest.approx(100 * sum(confusion[i][i] for i in range(10)) / 1024, abs=1e-4)

    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert [r["class"] for r in rows] == [*map(str, range(10)), "macro"]
    assert sum(int(r["support"]) for r in rows[:10]) == 1024
    assert float(rows[-1]["f1"]) == pytest.approx(metrics["macro_f1"])
    assert json.loads((out / "per_class.json").read_text()) == metrics["per_class"]
    table = list(csv.reader((out / "confusion.csv").open()))
    assert [list(map(int, row[1:])) for row in table[1:]] == confusion
    for name in ("confusion.png", "misclassified.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300

    assert main(["test", "--model", str(step3_checkpoint), "--out", str(out), "--log", str(log)]) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["accuracy"] == metrics["accuracy"] and lines[1]["results"] == str(out)
    assert lines[0]["weights_sha256"] == json.loads(paths(step3_checkpoint)[1].read_text())["weights"]["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["performance.jsonl", "results"], "no staging folder left"


def test_predict_reads_pictures_as_the_page_does(step3_checkpoint, mnist, make_picture, tmp_path, capsys):
    images = []
    for index, fmt in ((0, "PNG"), (1, "JPEG"), (2, "PNG")):
        path = tmp_path / f"digit{index}.{fmt.lower()}"
        path.write_bytes(make_picture(mnist.test.images[index], fmt=fmt, dark_ink=index != 2))
        images.append(str(path))
    assert main(["predict", "--model", str(step3_checkpoint), *images]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, image, label in zip(lines, images, mnist.test.labels[:3].tolist()):
        assert line.startswith(image) and line.split()[1] == str(label) and "top 3:" in line

    assert main(["predict", "--model", str(step3_checkpoint), "--json", *images]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["digit"] for a in answers] == mnist.test.labels[:3].tolist()
    assert [a["inverted"] for a in answers] == [True, True, False]
    assert all(len(a["top"]) == 3 and a["top"][0]["probability"] == a["confidence"] for a in answers)


def bad_checkpoint(tmp_path, step3_checkpoint):
    weights, metadata = paths(step3_checkpoint)
    (tmp_path / "cut.json").write_bytes(metadata.read_bytes())
    (tmp_path / "cut.safetensors").write_bytes(weights.read_bytes()[:1000])
    return tmp_path / "cut.safetensors"


@pytest.mark.parametrize("case", ["missing-model", "truncated-model", "foreign-model", "lone-weights", "missing-image",
                                  "folder-as-image", "text-as-image", "unknown-option", "no-command"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, step3_checkpoint, mnist, make_picture, tmp_path,
                                                          capsys):
    good = tmp_path / "seven.png"
    good.write_bytes(make_picture(mnist.test.images[0]))
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(paths(step3_checkpoint)[0].read_bytes())
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    model = str(step3_checkpoint)
    argv, words = {
        "missing-model": (["test", "--model", str(tmp_path / "nope.safetensors")], "No checkpoint at"),
        "truncated-model": (["test", "--model", str(bad_checkpoint(tmp_path, step3_checkpoint))], "truncated"),
        "foreign-model": (["predict", "--model", str(text), str(good)], "notes.png is not a checkpoint"),
        "lone-weights": (["predict", "--model", str(lone), str(good)], "has no metadata file lone.json"),
        "missing-image": (["predict", "--model", model, str(good), str(tmp_path / "gone.png")],
                          "gone.png does not exist"),
        "folder-as-image": (["predict", "--model", model, str(tmp_path)], "is a folder"),
        "text-as-image": (["predict", "--model", model, str(good), str(text)], "notes.png: This is not an image"),
        "unknown-option": (["test", "--model", model, "--epochs", "3"],  # the command's help lists its options
                           "unrecognized arguments: --epochs 3. See `python -m mnist_utils test --help`"),
        "no-command": ([], "required: COMMAND"),
    }[case]
    before = sorted(tmp_path.iterdir())
    try:
        status = main([*argv, *(["--out", str(out), "--log", str(log)] if argv[:1] == ["test"] else [])])
    except SystemExit as exit_:  # argparse's own mistakes
        status = exit_.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == "", "nothing printed as a result"
    assert len(captured.err.strip().splitlines()) == 1 and words in captured.err and captured.err.startswith("error: ")
    assert sorted(tmp_path.iterdir()) == before, "nothing written"


def test_without_model_out_or_log_test_and_predict_use_the_reports_folder(step3_checkpoint, mnist, make_picture,
                                                                           tmp_path, smoke, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    reports, image = tmp_path / "reports" / "smoke", tmp_path / "digit.png"
    image.write_bytes(make_picture(mnist.test.images[0]))
    (reports / "models").mkdir(parents=True)
    for arguments in (["test"], ["predict", str(image)]):
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: No saved model in {reports / 'models'}") and "make train" in error
    assert sorted(p.name for p in reports.iterdir()) == ["models"], "a refusal writes nothing"

    for path in paths(step3_checkpoint):  # the default: the best Model_3 in reports/models
        (reports / "models" / path.name).write_bytes(path.read_bytes())
    assert main(["test"]) == 0
    logged = [json.loads(line) for line in (reports / "performance_log.jsonl").read_text().splitlines()]
    assert len(logged) == 1 and logged[0]["checkpoint"] == str(reports / "models" / "step3.safetensors")
    results = Path(logged[0]["results"])
    assert results.parent == reports / "evaluations" and (results / "metrics.json").exists()
    assert main(["predict", str(image)]) == 0
    assert str(image) in capsys.readouterr().out


def test_the_module_entry_point_answers_bad_input_with_status_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_utils", "predict", "--model", str(tmp_path / "x"), "y.png"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(  # the project first, then what the caller had
                              filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: No checkpoint at") and len(done.stderr.splitlines()) == 1


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
    assert "step3: 1 epoch" in log and "test accuracy" in log
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1] and "val_acc" in history[0]

    weights, metadata = paths(tmp_path / "reports" / "smoke" / "models" / "step3-seed1")
    meta = json.loads(metadata.read_text())
    assert meta["model"] == {"name": "Model_3", "args": load_config("step3").model_args}
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
    (["--config", "step3", "--set", "lr=-1"], "lr: must be above 0, got -1.0"),
    (["--config", "step3", "--set", "augment.scale=[2,1]"], "augment.scale: [smallest, largest] zoom"),
    (["--config", "step3", "--set", "augment.translate=5"], "augment.translate: a share of the image in [0, 0.5]"),
    (["--config", "step3", "--device", "foo"], "--device 'foo' is not a device this project runs on"),
    (["--config", "step3", "--set", "model_args.widths=[8,8]"], "do not fit Model_3: not enough values to unpack"),
    (["--config", "step3", "--set", "model_args.depth=3"], "do not fit Model_3: "),
    (["--config", "finetune_full", "--set", "model_args.depth=3"], "do not fit pretrained: "),
])
def test_train_refuses_a_bad_config_in_one_line_and_writes_nothing(arguments, message, tmp_path, monkeypatch,
                                                                    capsys):
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


def test_train_keeps_the_best_validation_epoch_not_the_last(tmp_path, monkeypatch):
    """The smoke profile runs one epoch, where best and last are the same: here a stand-in for the training runs
    three, changing the weights each time, and validation improves only at the second."""
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
    assert main(["train", "--config", "step1", "--set", "val_fraction=1/8", "--out", str(run)]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["epochs"] == 2 and meta["metrics"]["val_loss"] == 0.2 and meta["metrics"]["epochs_run"] == 3
    kept = load_file(run / "run.safetensors")
    assert all(torch.equal(kept[k], weights_after[2][k]) for k in kept), "the second epoch's weights"
    assert not all(torch.equal(kept[k], weights_after[3][k]) for k in kept)


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
    assert "diverged" not in captured.out, "said once, by the command: the log's line goes to train.log only"
    assert not (tmp_path / "reports" / "smoke" / "models").exists() and not (tmp_path / "run" / "run.json").exists()
    assert "stopped: TrainingDiverged" in (tmp_path / "run" / "train.log").read_text()
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
    assert last == "stopped (Ctrl-C): the run folder keeps the epochs so far" and "stopped" not in captured.out
    run = tmp_path / "run"
    assert {"run.safetensors", "run.json", "history.json", "curves.png"} <= {p.name for p in run.iterdir()}
    assert "stopped (Ctrl-C)" in (run / "train.log").read_text()
    assert not (tmp_path / "reports" / "smoke" / "models").exists(), "an unfinished run publishes nothing"


@pytest.mark.parametrize("case", ["file", "foreign-file", "current-folder", "log-folder"])
def test_test_refuses_a_results_folder_it_would_lose_something_by_replacing(case, step3_checkpoint, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "precious.txt").write_text("mine")
    (tmp_path / "a-file").write_text("mine too")
    out, log, words = {"file": ("a-file", "log.jsonl", "a file is there"),
                       "foreign-file": ("notes", "log.jsonl", "it holds precious.txt, which `test` did not write"),
                       "current-folder": (".", "log.jsonl", "not the current one or one above it"),
                       "log-folder": ("results", "notes", "--log notes: a folder is there")}[case]
    before = sorted(tmp_path.rglob("*"))
    assert main(["test", "--model", str(step3_checkpoint), "--out", out, "--log", log]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and words in error and error.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "notes" / "precious.txt").read_text() == "mine"


def test_the_results_folder_holds_exactly_the_files_test_writes(step3_checkpoint, tmp_path, smoke):
    from mnist_utils.cli import RESULT_FILES
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(tmp_path / "r"),
                 "--log", str(tmp_path / "log.jsonl")]) == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(RESULT_FILES)


@pytest.mark.parametrize("variable, value, words", [("MNIST_PROFILE", "bogus", "Unknown MNIST_PROFILE 'bogus'"),
                                                    ("MNIST_DEVICE", "cuda", "unset MNIST_DEVICE")])
def test_a_setting_this_machine_cannot_use_is_one_line_before_anything_runs(variable, value, words, step3_checkpoint,
                                                                            tmp_path, monkeypatch, capsys):
    if value == "cuda" and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU: MNIST_DEVICE=cuda is usable here")
    monkeypatch.setenv(variable, value)
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and words in error and "--device None" not in error
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_given_as_dot_names_its_checkpoint_after_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    (tmp_path / "myrun").mkdir()
    monkeypatch.chdir(tmp_path / "myrun")
    assert main(["train", "--config", "step1", "--out", "."]) == 0
    assert {"myrun.safetensors", "myrun.json", "train.log"} <= {p.name for p in (tmp_path / "myrun").iterdir()}


def test_a_results_folder_whose_swap_fails_keeps_the_old_results(tmp_path, monkeypatch):
    from mnist_utils import cli
    folder = tmp_path / "results"
    cli.write_folder_atomic(folder, {"metrics.json": b"old"})
    real, calls = os.replace, []

    def second_rename_fails(source, target):
        calls.append(target)
        if len(calls) == 2:  # the new folder into place
            raise OSError("disk gone")
        real(source, target)

    monkeypatch.setattr(cli.os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="disk gone"):
        cli.write_folder_atomic(folder, {"metrics.json": b"new"})
    assert (folder / "metrics.json").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["results"], "nothing left beside it"


def test_predict_names_the_model_that_answered_once_and_in_each_json_record(step3_checkpoint, mnist, make_picture,
                                                                            tmp_path, capsys):
    images = []
    for index in range(2):
        images.append(tmp_path / f"digit{index}.png")
        images[-1].write_bytes(make_picture(mnist.test.images[index]))
    named = f"model step3 (Model_3, {step3_checkpoint})"  # the id, the architecture and the path
    assert main(["predict", "--model", str(step3_checkpoint), *map(str, images)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count(named) == 1 and len(captured.err.splitlines()) == 1, captured.err
    assert [line.split()[0] for line in captured.out.splitlines()] == list(map(str, images)), "one line per image"

    assert main(["predict", "--model", str(step3_checkpoint), "--json", *map(str, images)]) == 0
    captured = capsys.readouterr()
    assert [a["model"] for a in json.loads(captured.out)] == ["step3", "step3"], "as the API's reply names it"
    assert captured.err.count(named) == 1


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
    assert printed[0].split(" ", 1)[1].startswith("smoke profile: 1 of 200 epochs, the first 2,048 training and "
                                                  "1,024 test images; step1: 1 epoch"), printed[0]
    # As printed, the command tests in the profile that trained it, into reports/smoke/, not the full run's.
    assert "test it with `MNIST_PROFILE=smoke python -m mnist_utils test --model " in printed[-1], printed[-1]
    assert printed[-1].endswith("/reports/smoke/models/step1-seed1.safetensors`"), printed[-1]
    recipe = load_config("step1", ["epochs=200"])
    assert profile_cuts(recipe, recipe.for_profile(get_profile("full")), get_profile("full")) == "", \
        "the full profile cuts nothing and says nothing"


def test_a_folder_given_as_model_is_named_as_a_folder_with_the_checkpoints_in_it(step3_checkpoint, tmp_path,
                                                                               capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (tmp_path / "runs.json").write_text('{"other": "results"}')  # what `runs` would name as a checkpoint NAME
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    for held in ("it holds none (saved models are in", "it holds step3.safetensors"):
        if "step3" in held:
            for path in paths(step3_checkpoint):
                (runs / path.name).write_bytes(path.read_bytes())
        before = sorted(tmp_path.rglob("*"))
        for command in (["test", "--out", str(out), "--log", str(log)], ["predict", str(tmp_path / "seven.png")]):
            assert main([command[0], "--model", str(runs), *command[1:]]) == 2
            error = capsys.readouterr().err
            assert error.startswith(f"error: --model {runs} is a folder: pass NAME.safetensors") and held in error
            assert "runs.json" not in error and error.count("\n") == 1
        assert sorted(tmp_path.rglob("*")) == before, "nothing written"


@pytest.mark.parametrize("arguments, message", [
    (["--config", "step1", "--bogus"], "unrecognized arguments: --bogus. See `python -m mnist_utils train --help`."),
    (["--config", "step1", "--seed", "-1"], "argument --seed: a seed is a whole number, 0 or more"),
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


def test_the_per_class_table_keeps_its_columns_at_100_percent():
    import re

    from mnist_utils.cli import per_class_table
    rows = [{"class": 0, "precision": 100.0, "recall": 100.0, "f1": 100.0, "support": 980},
            {"class": 1, "precision": 9.5, "recall": 99.12, "f1": 0.0, "support": 1135},
            {"class": "macro", "precision": 99.5, "recall": 100.0, "f1": 99.75, "support": 10000}]
    lines = per_class_table(rows)
    assert lines[0].split() == ["digit", "precision", "recall", "F1", "support"] and "100.00%" in lines[1]
    ends = [[m.end() for m in re.finditer(r"\S+", line)] for line in lines]  # every column right-aligned
    assert all(end == ends[0] for end in ends), "\n".join(lines)
