"""`python -m mnist_utils test | predict` with a real checkpoint: the files and lines they produce, and one
line, exit status 2 and nothing written for each kind of bad input."""
import csv
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from mnist_utils.checkpoints import paths
from mnist_utils.cli import main
from mnist_utils.config import PROJECT_ROOT


@pytest.fixture
def smoke(monkeypatch):
    """The smoke profile: `test` evaluates 1,024 test digits instead of 10,000."""
    monkeypatch.setenv("MNIST_PROFILE", "smoke")


def test_test_writes_every_result_and_logs_a_line(step3_checkpoint, tmp_path, smoke, capsys):
    out, log = tmp_path / "results", tmp_path / "performance.jsonl"
    assert main(["test", "--model", str(step3_checkpoint), "--out", str(out), "--log", str(log)]) == 0
    printed = capsys.readouterr().out
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
        "unknown-option": (["test", "--model", model, "--epochs", "3"], "unrecognized arguments: --epochs 3"),
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


def test_the_module_entry_point_answers_bad_input_with_status_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_utils", "predict", "--model", str(tmp_path / "x"), "y.png"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: No checkpoint at") and len(done.stderr.splitlines()) == 1
