"""`python -m mnist_utils test | predict` with a real checkpoint: the files and lines they produce, and one
line, exit status 2 and nothing written for each kind of bad input."""
import csv
import io
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from mnist_utils.checkpoints import paths
from mnist_utils.cli import answer_line, main
from mnist_utils.config import PROJECT_ROOT
from mnist_utils.preprocess import FILE_MAX_BYTES, MAX_BYTES


@pytest.fixture
def smoke(monkeypatch):
    """The smoke profile: `test` evaluates 1,024 test digits instead of 10,000."""
    monkeypatch.setenv("MNIST_PROFILE", "smoke")


def test_test_writes_every_result_and_logs_a_line(step3_checkpoint, tmp_path, smoke, capsys, monkeypatch):
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
    assert 0 < metrics["loss"] < 0.3 and f"loss {metrics['loss']:.4f}" in printed, "a 95% model's cross-entropy"
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

    monkeypatch.chdir(tmp_path)  # given relative to here, logged whole: the log may be read from anywhere
    assert main(["test", "--model", str(step3_checkpoint), "--out", "results", "--log", "performance.jsonl"]) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["accuracy"] == metrics["accuracy"] and lines[1]["results"] == str(out)
    assert lines[1]["checkpoint"] == str(step3_checkpoint.resolve())
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
    sure, unsure = ({"digit": 7, "confidence": c, "top": [{"digit": 7, "probability": c}]} for c in (1.0, 0.894))
    lines = [answer_line("seven.png", sure, 9), answer_line("a.png", unsure, 9)]
    assert lines[1] == "a.png      7   89.4%   top 3: 7 89.4%"
    assert lines[0].index("top 3:") == lines[1].index("top 3:"), "one column, whatever each confidence's width"

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


def test_predict_reads_a_photo_larger_than_the_page_takes(step3_checkpoint, mnist, make_picture, tmp_path, capsys):
    notes = PngImagePlugin.PngInfo()
    notes.add_text("Comment", "x" * (MAX_BYTES + 1))  # a camera's metadata: the file over the page's 5 MB
    photo = tmp_path / "photo.png"
    Image.open(io.BytesIO(make_picture(mnist.test.images[0]))).save(photo, pnginfo=notes)
    assert MAX_BYTES < photo.stat().st_size < FILE_MAX_BYTES
    assert main(["predict", "--model", str(step3_checkpoint), str(photo)]) == 0
    assert capsys.readouterr().out.split()[1] == str(mnist.test.labels[0].item())


def test_without_model_out_or_log_test_and_predict_use_the_reports_folder(step3_checkpoint, mnist, make_picture,
                                                                           tmp_path, smoke, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    reports, image = tmp_path / "reports" / "smoke", tmp_path / "digit.png"
    image.write_bytes(make_picture(mnist.test.images[0]))
    (reports / "models").mkdir(parents=True)
    for arguments in (["test"], ["predict", str(image)]):
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: No saved model in {reports / 'models'}")
        assert "`make train CONFIG=configs/step3.yaml PROFILE=smoke`" in error, "the profile that saves there"
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
    assert main(["predict", "--model", "step3", str(image)]) == 0, "a saved model's id, as predict names it"
    assert f"model step3 (Model_3, {reports / 'models' / 'step3.safetensors'})" in capsys.readouterr().err


def test_the_module_entry_point_answers_bad_input_with_status_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_utils", "predict", "--model", str(tmp_path / "x"), "y.png"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(  # the project first, then what the caller had
                              filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: No checkpoint at") and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("case", ["file", "foreign-file", "current-folder", "log-folder", "out-in-a-file",
                                  "log-in-a-file", "log-another-file", "log-another-jsonl"])
def test_test_refuses_a_results_folder_it_would_lose_something_by_replacing(case, step3_checkpoint, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "precious.txt").write_text("mine")
    (tmp_path / "a-file").write_text("mine too")
    (tmp_path / "lines.jsonl").write_text('{"a": 1}\nnot a record\n')
    out, log, words = {"file": ("a-file", "log.jsonl", "a file is there"),
                       "foreign-file": ("notes", "log.jsonl", "it holds precious.txt, which `test` did not write"),
                       "current-folder": (".", "log.jsonl", "not the current one or one above it"),
                       "log-folder": ("results", "notes", "--log notes: a folder is there"),
                       # checked before the evaluation: no results folder is written where no log line can be
                       "out-in-a-file": ("a-file/results", "log.jsonl", "a-file is a file, not a folder; give a path"),
                       "log-in-a-file": ("results", "a-file/log.jsonl", "--log a-file/log.jsonl: a-file is a file"),
                       # a line appended to another file (a checkpoint's metadata, notes) would spoil it
                       "log-another-file": ("results", "a-file", "--log a-file: the performance log is a .jsonl file"),
                       "log-another-jsonl": ("results", "lines.jsonl", "its last line is not a JSON record"),
                       }[case]
    before = sorted(tmp_path.rglob("*"))
    assert main(["test", "--model", str(step3_checkpoint), "--out", out, "--log", log]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and words in error and error.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "notes" / "precious.txt").read_text() == "mine"


def test_a_performance_log_is_told_by_its_last_record(tmp_path, monkeypatch):
    from mnist_utils.cli import _ends_in_a_record
    log = tmp_path / "log.jsonl"
    for text, is_log in (("", True), ('{"a": 1}\n', True), ('{"a": 1}\n\n  \n', True), ('{"a": 1}\n[1]\n', False),
                         ("notes\n", False)):
        log.write_text(text)
        assert _ends_in_a_record(log) is is_log, text
    log.write_bytes(b'{"a": 1}\n' + b"x" * 100_000)  # one long last line: only the file's end is read
    assert not _ends_in_a_record(log)

    def refused(*_, **__):  # a log that takes lines but cannot be read: nothing more can be told of it
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("builtins.open", refused)
    assert _ends_in_a_record(log)


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


def test_a_results_folder_whose_swap_fails_keeps_the_old_results(tmp_path, monkeypatch):
    from mnist_utils import files
    folder = tmp_path / "results"
    files.write_folder_atomic(folder, {"metrics.json": b"old"})
    real, calls = os.replace, []

    def second_rename_fails(source, target):
        calls.append(target)
        if len(calls) == 2:  # the new folder into place
            raise OSError("disk gone")
        real(source, target)

    monkeypatch.setattr(files.os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="disk gone"):
        files.write_folder_atomic(folder, {"metrics.json": b"new"})
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


def test_help_shows_code_as_a_terminal_does_not_as_restructuredtext(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert "`python -m mnist_utils COMMAND`" in shown and "``" not in shown


@pytest.mark.parametrize("command", [[], ["train"], ["test"], ["predict"]])
def test_help_names_the_settings_read_from_the_environment_and_the_reports_folder_they_give(command, tmp_path,
                                                                                        monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "MNIST_PROFILE=smoke makes any command a quick check (1 epoch, the first 2,048 training" in shown
    assert "MNIST_REPORTS_DIR=DIR makes DIR the REPORTS folder" in shown and f"now {tmp_path / 'elsewhere'}." in shown


def test_test_refuses_a_log_it_cannot_append_to_before_evaluating(step3_checkpoint, tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("")

    def refused(*_, **__):  # a read-only or immutable log (root may write where its mode says no)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("mnist_utils.files.open", refused, raising=False)
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(tmp_path / "r"), "--log", str(log)]) == 2
    assert f"--log {log}: cannot append to {log}: Permission denied" in capsys.readouterr().err
    assert not (tmp_path / "r").exists(), "no results written where no log line can be"


@pytest.mark.parametrize("module", ["mnist_utils", "mnist_utils.app", "mnist_utils.app_bench", "mnist_utils.bench",
                                    "mnist_utils.data", "mnist_utils.readme", "mnist_utils.run", "mnist_utils.search"])
def test_ctrl_c_while_a_command_is_still_importing_ends_with_one_line(module, tmp_path):
    # Ctrl-C in its first second, while torch loads, ends as one pressed later does, not with a traceback: a torch
    # that stops as it is imported stands in for the key, and any other error there is still shown whole
    (tmp_path / "torch").mkdir()
    for raised, status, last_line in [("KeyboardInterrupt", -signal.SIGINT, "stopped (Ctrl-C)"),  # a shell reads 130
                                      ("ValueError('torch')", 1, "ValueError: torch")]:
        (tmp_path / "torch" / "__init__.py").write_text(f"raise {raised}\n")
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
        assert (done.returncode, done.stderr.splitlines()[-1:], done.stdout) == (status, [last_line], ""), done.stderr
        assert ("Traceback" in done.stderr) == (raised != "KeyboardInterrupt")


@pytest.mark.parametrize("module, interrupted, arguments", [
    ("mnist_utils.bench", "mnist_utils.data.load_mnist", ["--quick", "--json", "{tmp}/bench.json"]),  # at its data
    ("mnist_utils.search", "mnist_utils.training.train_seeds", ["{tmp}/search.yaml"])])  # in its first candidate
def test_ctrl_c_in_the_middle_of_the_bench_or_a_search_ends_with_one_line(module, interrupted, arguments, tmp_path):
    record = tmp_path / "record.json"
    record.write_text("[]\n")
    (tmp_path / "search.yaml").write_text(f"config: step3\nrecord: {record}\ncandidates: [[lr=0.05]]\n")
    where, name = interrupted.rsplit(".", 1)
    script = (f"import importlib, runpy\ndef ctrl_c(*args, **kwargs):\n    raise KeyboardInterrupt\n"
              f"setattr(importlib.import_module({where!r}), {name!r}, ctrl_c)\n"
              f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n")
    done = subprocess.run([sys.executable, "-c", script, *(a.format(tmp=tmp_path) for a in arguments)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MNIST_PROFILE": "full", "MNIST_REPORTS_DIR": str(tmp_path)})
    assert (done.returncode, done.stderr.splitlines()[-1:]) == (130, ["stopped (Ctrl-C)"]), done.stderr
    assert "Traceback" not in done.stderr and ("Machine:" in done.stdout if "bench" in module else "[0]" in done.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json", "search.yaml"] and record.read_text() == "[]\n"


def test_run_command_ends_as_a_command_does(capsys):
    from mnist_utils.commands import run_command

    def bad():
        raise ValueError("a bad value: give another")
    for command, status, said in [(lambda: 3, 3, ""), (bad, 2, "error: a bad value: give another\n")]:
        with pytest.raises(SystemExit) as ended:
            run_command(command, bad_input=(ValueError,))
        assert ended.value.code == status and capsys.readouterr().err == said
    with pytest.raises(ValueError):  # an error it was not told is bad input stays an error, traceback and all
        run_command(bad)


def test_a_command_whose_reader_left_ends_quietly_and_bad_input_in_one_line(capsys, monkeypatch):
    from mnist_utils import commands
    silenced = []
    monkeypatch.setattr(commands, "stdout_to_nowhere", lambda: silenced.append(True))

    def reader_left():  # `python -m mnist_utils.data | head -1`, once head has its line
        raise BrokenPipeError(32, "Broken pipe")

    def two_lines():
        raise commands.UsageError("a bad value\n  give another")
    for command, status, said in [(reader_left, 141, ""), (two_lines, 2, "error: a bad value give another\n")]:
        with pytest.raises(SystemExit) as ended:
            commands.run_command(command)
        assert ended.value.code == status and capsys.readouterr().err == said
    assert silenced == [True]


def test_train_whose_reader_left_before_its_last_line_exits_0_its_model_published(tmp_path, monkeypatch):
    from mnist_utils import cli
    silenced = []
    monkeypatch.setattr(cli, "train_from_config", lambda *args, **kwargs: (tmp_path / "step1-seed1.safetensors", None))
    monkeypatch.setattr(cli, "stdout_to_nowhere", lambda: silenced.append(True))

    class LeftReader(io.TextIOBase):  # `train ... | head -1`, once head has its line
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(sys, "stdout", LeftReader())
    assert main(["train", "--config", "step1"]) == 0 and silenced == [True]


def test_train_prints_a_test_command_that_works_pasted_as_it_is(tmp_path, monkeypatch, capsys):
    from mnist_utils import cli
    run = tmp_path / "my run" / "my run.safetensors"  # a space: the shell would read two arguments
    monkeypatch.setattr(cli, "train_from_config", lambda *args, **kwargs: (run, None))
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "my reports"))  # where `test` then writes its results
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    assert main(["train", "--config", "step1"]) == 0
    command = capsys.readouterr().out.splitlines()[-1].split("test it with `")[1].rstrip("`")
    assert shlex.split(command) == [f"MNIST_REPORTS_DIR={tmp_path / 'my reports'}", "MNIST_PROFILE=smoke", "python",
                                    "-m", "mnist_utils", "test", "--model", str(run)]


def test_a_path_option_makes_a_leading_tilde_the_home_folder_as_the_shell_does():
    from mnist_utils.cli import build_parser
    from mnist_utils.commands import user_path
    home = os.path.expanduser("~")
    tested = build_parser().parse_args(["test", "--out=~/eval", "--log=~/log.jsonl", "--model=~/m"])
    assert (tested.out, tested.log, tested.model) == (f"{home}/eval", f"{home}/log.jsonl", f"{home}/m")
    trained = build_parser().parse_args(["train", "--config=~/c.yaml", "--out=~/run"])
    assert (trained.config, trained.out) == (f"{home}/c.yaml", f"{home}/run")
    assert user_path("~/reports") == Path(home) / "reports" and user_path("a/~b") == Path("a/~b")


def test_a_diverged_runs_history_is_json_that_any_parser_reads():
    from mnist_utils.trainer import _history_tables
    tables = _history_tables([{"epoch": 1, "train_loss": float("nan")}])  # JSON has no NaN: strict parsers refuse it
    assert json.loads(tables["history.json"], parse_constant=pytest.fail) == [{"epoch": 1, "train_loss": None}]


def test_predict_keep_going_answers_the_good_images_and_names_the_bad_ones(step3_checkpoint, mnist, make_picture,
                                                                          tmp_path, capsys):
    good = [tmp_path / f"digit{index}.png" for index in range(2)]
    for index, path in enumerate(good):
        path.write_bytes(make_picture(mnist.test.images[index]))
    text, missing = tmp_path / "notes.png", tmp_path / "gone.png"
    text.write_text("not a picture")
    images = [str(good[0]), str(text), str(missing), str(good[1])]
    assert main(["predict", "--model", str(step3_checkpoint), "--keep-going", *images]) == 2, "not every image read"
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split()[:2] for line in lines] == [[str(good[0]), str(int(mnist.test.labels[0]))],
                                                   [str(good[1]), str(int(mnist.test.labels[1]))]]
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {text}: This is not an image that can be read as PNG, JPEG, WebP, GIF or BMP: use a "
                      "picture of a digit.", f"error: {missing} does not exist: check the path of the image."]
    assert main(["predict", "--model", str(step3_checkpoint), "--keep-going", "--json", str(good[0]), str(good[1])]) == 0
    assert [a["digit"] for a in json.loads(capsys.readouterr().out)] == mnist.test.labels[:2].tolist()
    assert main(["predict", "--model", str(step3_checkpoint), *images]) == 2, "without it, one bad image stops all"
    assert capsys.readouterr().out == ""
    assert main(["predict", "--model", str(step3_checkpoint), "--keep-going", str(text)]) == 2
    assert capsys.readouterr().out == "", "no image read: no answer"
    assert main(["predict", "--model", str(step3_checkpoint), "--keep-going", "--json", str(text)]) == 2
    assert json.loads(capsys.readouterr().out) == [], "what reads the JSON gets JSON: no answers"


def test_a_model_id_not_saved_is_refused_naming_the_saved_ids_and_the_one_likely_meant(step3_checkpoint, tmp_path,
                                                                                       smoke, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)
    assert main(["test", "--model", "step3-seed1"]) == 2
    assert "(none yet: train one with `make train CONFIG=configs/step3.yaml PROFILE=smoke`)" in capsys.readouterr().err
    models = tmp_path / "reports" / "smoke" / "models"
    models.mkdir(parents=True)
    for name, path in itertools.product(("step3-seed1", "step2-seed1", "step1-seed1", "cnn_simple-seed6"),
                                        paths(step3_checkpoint)):
        (models / f"{name}{path.suffix}").write_bytes(path.read_bytes())
    assert main(["test", "--model", "step3-sed1"]) == 2
    assert capsys.readouterr().err == (
        "error: --model step3-sed1: no checkpoint of that name here, nor a saved model of that id in reports/smoke/"
        "models (saved: cnn_simple-seed6, step1-seed1, step2-seed1 and 1 more); did you mean step3-seed1 for "
        "step3-sed1?\n")
    assert sorted(p.name for p in (tmp_path / "reports" / "smoke").iterdir()) == ["models"], "a refusal writes nothing"


def test_test_writes_where_a_link_points_and_names_the_reports_folder_it_cannot_write(step3_checkpoint, tmp_path,
                                                                                      monkeypatch, capsys):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")  # the link was replaced by a folder, the target left empty
    log = ["--log", str(tmp_path / "log.jsonl")]
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(tmp_path / "link"), *log]) == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target" / "metrics.json").is_file()
    (tmp_path / "a file").touch()
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(tmp_path / "a file"))
    assert main(["test", "--model", str(step3_checkpoint)]) == 2 and capsys.readouterr().err.endswith(
        "not a folder; set MNIST_REPORTS_DIR to a folder you can write to, or give --out a folder you can write to\n")
