"""The command line: ``python -m mnist_utils COMMAND``.

    python -m mnist_utils train --config configs/step3.yaml [--set epochs=5 ...]
    python -m mnist_utils test --model reports/models/step3-seed1.safetensors
    python -m mnist_utils predict --model reports/models/step3-seed1.safetensors digit.png photo.jpg

`train` trains a config file's recipe with the code the notebooks run (see mnist_utils/trainer.py for the
run folder it writes and when it saves the checkpoint). `test` evaluates a saved model on the MNIST test set (cut to the MNIST_PROFILE's size) and writes accuracy,
per-class precision / recall / F1 (CSV and JSON), the confusion matrix (PNG and CSV) and the most confident
mistakes (PNG) into a results folder, all at once, then appends a line to a performance log. `predict` reads
images through the web page's preprocessing and prints each one's digit, confidence and top 3.
Bad input (a missing or damaged checkpoint, a missing or non-image file, a wrong option, a device or profile
this machine does not have) ends the command with one line naming the problem and its fix, exit status 2, and
nothing written; Ctrl-C ends it with one line and exit status 130 (a stopped `train` keeps its run folder).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .checkpoints import (WEIGHTS_SUFFIX, CheckpointError, default_checkpoint, list_checkpoints, models_dir, paths,
                          train_one)
from .classifier import Classifier
from .commands import (EXIT_BAD_INPUT, CommandParser, UsageError, checked_settings, command_status, environment_help,
                       one_line, stdout_to_nowhere)
from .config import get_device, get_profile, reports_dir
from .config_values import SEEDS, misspelt, seed_problem
from .data import ImageSet, MNISTDataError, load_data
from .evaluation import confusion_matrix, log_loss, per_class_metrics
from .files import append_whole, cannot_append, held_besides, unwritable, write_folder_atomic
from .plots import plot_confusion, plot_misclassified, png_bytes
from .preprocess import FILE_MAX_BYTES, Digit, ImageError, preprocess, read_image_file
from .recipes import ConfigError
from .trainer import TrainingDiverged, train_from_config

RESULT_FILES = ("metrics.json", "per_class.json", "per_class.csv", "confusion.csv", "confusion.png",
                "misclassified.png")  # a `test` results folder: what `result_files` writes
PERFORMANCE_LOG = "performance_log.jsonl"  # one JSON object per `test` run, in the reports folder


# ----------------------------------------------------------------------------- test


def evaluate(classifier: Classifier, test: ImageSet) -> dict[str, Any]:
    """Accuracy, loss, confusion matrix and per-class metrics of `classifier` on `test`, and the predictions."""
    start = time.perf_counter()
    predictions = classifier.predict(test, desc=f"testing on {len(test):,} images")
    seconds = time.perf_counter() - start
    confusion = confusion_matrix(predictions.labels, predictions.predicted)
    per_class = per_class_metrics(confusion)
    return {"predictions": predictions, "confusion": confusion, "per_class": per_class,
            "accuracy": predictions.accuracy, "loss": log_loss(predictions), "seconds": seconds}


def _csv(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def result_files(evaluation: dict[str, Any], summary: dict[str, Any], images: torch.Tensor) -> dict[str, bytes]:
    """The contents of a `test` results folder, by file name."""
    confusion, per_class = evaluation["confusion"], evaluation["per_class"]
    columns = ("class", "precision", "recall", "f1", "support")
    return {
        "metrics.json": json.dumps({**summary, "per_class": per_class, "confusion": confusion.tolist()},
                                   indent=2).encode(),
        "per_class.json": json.dumps(per_class, indent=2).encode(),
        "per_class.csv": _csv([columns, *([row[c] for c in columns] for row in per_class)]),
        "confusion.csv": _csv([["true \\ predicted", *range(len(confusion))],
                               *([digit, *row] for digit, row in enumerate(confusion.tolist()))]),
        "confusion.png": png_bytes(plot_confusion(confusion, f"{summary['title']}: "
                                                        f"{int(confusion.sum() - confusion.trace())} errors "
                                                        f"of {int(confusion.sum()):,}")),
        "misclassified.png": png_bytes(plot_misclassified(images, evaluation["predictions"])),
    }


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append `record` to the JSON-lines file at `path`, whole or not at all (`append_whole`)."""
    append_whole(path, json.dumps(record) + "\n")


def _classifier(args: argparse.Namespace) -> Classifier:
    return Classifier.load(_checkpoint_path(args.model), get_device(args.device))


def results_folder(given: str | None, default: Path) -> Path:
    """Where `test` puts its results: `given` or `default`, refused (UsageError) where replacing that folder whole
    would lose something (a file, the current folder or one above it, a folder holding other files) or where it
    cannot be written."""
    folder = Path(given) if given else default
    refuse = f"--out {given}" if given else f"The results folder {folder}"
    if folder.is_symlink():  # results go where the link points; the swap would put a folder in the link's place
        folder = folder.resolve()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{refuse}: a file is there; `test` writes a folder of results: give a new folder")
    if folder.is_dir():
        here = Path.cwd().resolve()
        if folder.resolve() in (here, *here.parents):
            raise UsageError(f"{refuse}: `test` replaces its results folder whole: give a new folder, not the "
                             "current one or one above it")
        held = held_besides(folder, RESULT_FILES)
        if held:
            raise UsageError(f"{refuse}: it holds {held}, which `test` did not write; it replaces its results "
                             "folder whole: give a new or empty folder, or one an earlier `test` wrote")
    why = unwritable(folder.parent)  # where write_folder_atomic stages the results
    if why:
        raise UsageError(f"{refuse}: {why}; {_writable_fix(given, '--out a folder')}")
    return folder


def _writable_fix(given: str | None, option: str) -> str:
    """The fix for a place `test` cannot write to: the path given, else the reports folder it came from."""
    return "give a path you can write to" if given else f"set MNIST_REPORTS_DIR to a folder you can write to, or " \
                                                        f"give {option} you can write to"


def performance_log(given: str | None) -> Path:
    """The file `test` appends its line to: `given` or the reports folder's, refused (UsageError) where a folder is
    there or no line can be appended."""
    log = Path(given) if given else reports_dir() / PERFORMANCE_LOG
    refuse = f"--log {given}" if given else f"The performance log {log}"
    if log.is_dir():
        raise UsageError(f"{refuse}: a folder is there; the performance log is a file: give a file's path")
    if not log.name.endswith(".jsonl"):  # a line appended to another file (a checkpoint's metadata, notes) spoils it
        raise UsageError(f"{refuse}: the performance log is a .jsonl file (one JSON record a line): give a path "
                         "ending in .jsonl")
    why = cannot_append(log)
    if why:
        raise UsageError(f"{refuse}: {why}; {_writable_fix(given, '--log a file')}")
    if log.is_file() and not _ends_in_a_record(log):
        raise UsageError(f"{refuse}: its last line is not a JSON record, so it is not a performance log `test` "
                         "wrote: give a new .jsonl path")
    return log


def _ends_in_a_record(log: Path, tail: int = 65536) -> bool:
    """Whether the file at `log` has no line yet or its last line is a JSON object, as a performance log's are.
    A file that can be appended to but not read is taken as one: nothing else can be told of it."""
    try:
        with open(log, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail))  # the last line is within the file's end
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except OSError:
        return True
    try:
        return not lines or isinstance(json.loads(lines[-1]), dict)
    except ValueError:  # not JSON, not UTF-8
        return False


def per_class_table(per_class: Sequence[dict[str, Any]]) -> list[str]:
    """The lines of `test`'s per-class table, heading first: each column as wide as its widest value (100.00%)."""
    lines = [f"{'digit':>5}  {'precision':>9}  {'recall':>7}  {'F1':>7}  {'support':>7}"]
    for row in per_class:
        lines.append(f"{row['class']!s:>5}  {row['precision']:8.2f}%  {row['recall']:6.2f}%  {row['f1']:6.2f}%  "
                     f"{row['support']:7,}")
    return lines


def run_train(args: argparse.Namespace) -> int:
    # Where a model of its name was kept rather than replaced, the trainer's log has said so (and how to replace it).
    checkpoint, _ = train_from_config(args.config, args.set, args.out, seed=args.seed, device=args.device,
                                      replace=args.replace)
    # The reports folder and the profile pick the folders `test` reads and writes: pasted as printed (quoted as a
    # shell reads it), it tests where this run trained and writes beside it.
    reports = os.environ.get("MNIST_REPORTS_DIR")
    settings = [f"MNIST_REPORTS_DIR={shlex.quote(reports)}"] if reports else []
    if (profile := get_profile().name) != "full":
        settings.append(f"MNIST_PROFILE={profile}")
    shown = _shown(checkpoint)
    command = " ".join([*settings, "python -m mnist_utils test --model", shlex.quote(shown)])
    try:
        print(f"checkpoint: {shown}; test it with `{command}`")
    except BrokenPipeError:  # the reader left before this last line: the model is tested and published all the same
        stdout_to_nowhere()
    return 0


def run_test(args: argparse.Namespace) -> int:
    classifier = _classifier(args)
    meta = classifier.metadata
    # both checked before the evaluation: nothing is written unless all of it can be
    folder = results_folder(args.out, reports_dir() / "evaluations" / meta["id"])
    log = performance_log(args.log)
    test = load_data().test  # the profile's share: all 10,000 digits, or the smoke profile's few
    evaluation = evaluate(classifier, test)
    macro = evaluation["per_class"][-1]
    # Paths whole: a log read from another folder must still find what each record names.
    summary = {"checkpoint": str(Path(meta["path"]).resolve()), "weights_sha256": meta["weights"]["sha256"],
               "title": meta["title"], "model": meta["model"]["name"], "images": len(test),
               "accuracy": evaluation["accuracy"], "loss": evaluation["loss"], "macro_precision": macro["precision"],
               "macro_recall": macro["recall"], "macro_f1": macro["f1"], "profile": get_profile().name,
               "device": str(classifier.device), "seconds": round(evaluation["seconds"], 3),
               "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_folder_atomic(folder, result_files(evaluation, summary, test.images))
    append_line(log, {**summary, "results": str(folder.resolve())})

    print(f"{meta['title']} ({meta['model']['name']}, {_shown(meta['path'])}) on {len(test):,} MNIST test images: "
          f"accuracy {evaluation['accuracy']:.2f}%, loss {evaluation['loss']:.4f}, macro F1 {macro['f1']:.2f}%")
    print("\n".join(per_class_table(evaluation["per_class"])))
    print(f"Results in {_shown(folder)}: metrics.json, per_class.csv/.json, confusion.png/.csv, misclassified.png; "
          f"logged in {_shown(log)}")
    return 0


# ----------------------------------------------------------------------------- predict


def _read_digit(image: Path | str) -> Digit:
    """The digit in the picture file `image`; an ImageError that names the file."""
    # A picture on this machine may be larger than an upload to the page: the pixel limit still bounds the memory
    data = read_image_file(image, max_bytes=FILE_MAX_BYTES)  # its message names the file
    try:
        return preprocess(data, max_bytes=FILE_MAX_BYTES)
    except ImageError as error:  # its message speaks of "the image": say which
        raise ImageError(error.kind, f"{image}: {error}") from None


def answer_line(image: str, answer: dict[str, Any], width: int) -> str:
    """`predict`'s line for one image (its name padded to `width`): the digit, the confidence right-aligned, so
    that the top 3 start in one column whether it reads 99.9% or 100.0%, then the top 3."""
    top = ", ".join(f"{t['digit']} {t['probability']:.1%}" for t in answer["top"])
    return f"{image:<{width}}  {answer['digit']}  {answer['confidence']:>6.1%}   top 3: {top}"


def run_predict(args: argparse.Namespace) -> int:
    classifier = _classifier(args)
    # Every image is read and checked before any answer is printed: a bad one stops the run with no output, or
    # with --keep-going is named on stderr while the others are answered (exit status 2 all the same).
    read, problems = [], []
    for image in args.images:
        try:
            read.append((image, _read_digit(image)))
        except ImageError as error:
            if not args.keep_going:
                raise
            problems.append(error)
    for problem in problems:
        print(f"error: {one_line(problem)}", file=sys.stderr)
    if not read:
        if args.json:  # a reader parsing stdout gets JSON still: no answers
            print("[]")
        return EXIT_BAD_INPUT
    images, digits = [image for image, _ in read], [digit for _, digit in read]
    answers = classifier.answers(torch.stack([d.pixels for d in digits]))
    # Which model answered (the default may be another architecture than expected), on stderr: stdout keeps
    # one line per image, or the JSON alone.
    meta = classifier.metadata
    print(f"model {meta['id']} ({meta['model']['name']}, {_shown(meta['path'])}): {meta['title']}", file=sys.stderr)
    if args.json:  # each record as the API answers, with the model's id
        print(json.dumps([{"image": str(image), **answer, "model": meta["id"], "inverted": digit.inverted}
                          for image, digit, answer in zip(images, digits, answers)], indent=2))
    else:
        width = max(len(str(image)) for image in images)
        for image, answer in zip(images, answers):
            print(answer_line(str(image), answer, width))
    return EXIT_BAD_INPUT if problems else 0


# ----------------------------------------------------------------------------- the parser


def _shown(path: Path | str) -> str:
    """`path` as a person would type it here: relative to the current folder when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _some(names: Sequence[str], shown: int = 3) -> str:
    """The first `shown` of `names`, and how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _checkpoint_path(given: str | None) -> Path:
    """The checkpoint to use: the one given (a path, or a saved model's id), else the default (the most accurate
    Model_3) in reports/models."""
    if given and Path(given).is_dir():  # as NAME it would name NAME.json beside the folder, a file never given
        found = sorted(p.name for p in Path(given).glob(f"*{WEIGHTS_SUFFIX}"))
        held = f"it holds {_some(found)}" if found else f"it holds none (saved models are in {_shown(models_dir())})"
        raise UsageError(f"--model {given} is a folder: pass NAME{WEIGHTS_SUFFIX}, a checkpoint's weights; {held}")
    if given:
        path, saved = Path(given), models_dir() / given  # or a saved model's id, as predict and the page name it
        if any(file.exists() for file in paths(path)) or path.name != given:  # a path: its own errors if it is none
            return path
        if any(file.exists() for file in paths(saved)):
            return saved
        ids = sorted(file.stem for file in models_dir().glob(f"*{WEIGHTS_SUFFIX}"))  # a checkpoint's id, as listed
        held = f"saved: {_some(ids)}" if ids else f"none yet: train one with {train_one()}"
        raise UsageError(f"--model {given}: no checkpoint of that name here, nor a saved model of that id in "
                         f"{_shown(models_dir())} ({held}){misspelt([paths(given)[0].stem], ids)}")
    chosen = default_checkpoint(list_checkpoints(models_dir()))
    if chosen is None:
        raise UsageError(f"No saved model in {models_dir()}: pass --model PATH, or train one with {train_one()}.")
    return Path(chosen["path"])


def _seed(text: str) -> int:
    """--seed's value: a whole number torch can seed with (it names the model, CONFIG-seedN: no minus sign)."""
    try:
        problem = seed_problem(int(text))
    except ValueError:
        problem = f"{SEEDS}, got {text!r}"
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}: give e.g. --seed 2")
    return int(text)


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="e.g. cpu or cuda (default: CUDA when present, else CPU)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="PATH", type=os.path.expanduser,  # ~ as the shell makes it
                        help="a checkpoint (NAME.safetensors beside NAME.json), or the id of one in REPORTS/models "
                             "(step3-seed1); default: the most accurate "
                             "Model_3 (Step 3's architecture, from any config) in REPORTS/models "
                             "(REPORTS/smoke/models under MNIST_PROFILE=smoke)")
    _add_device_option(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m mnist_utils", description=__doc__.split("\n\n")[0],
                           epilog=environment_help())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    train = commands.add_parser("train", help="train a config file's recipe; checkpoint to its run folder, then "
                                "to REPORTS/models", epilog=environment_help())
    train.add_argument("--config", required=True, metavar="FILE", type=os.path.expanduser,
                       help="e.g. configs/step3.yaml (or just step3)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="change one key of the config, e.g. --set epochs=5 --set augment.rotation=10")
    train.add_argument("--seed", type=_seed, help="default: the config's first seed")
    train.add_argument("--out", metavar="DIR", type=os.path.expanduser,
                       help="a new or empty run folder (default: REPORTS/runs/CONFIG-seedN-TIME)")
    _add_device_option(train)
    train.add_argument("--replace", action="store_true",
                       help="put the checkpoint in REPORTS/models even where one of its name is (a notebook's)")
    train.set_defaults(run=run_train)

    test = commands.add_parser("test", help="evaluate a saved model on the MNIST test set, results to a folder",
                               epilog=environment_help())
    _add_model_options(test)
    test.add_argument("--out", metavar="DIR", type=os.path.expanduser,
                      help="results folder (default: REPORTS/evaluations/NAME)")
    test.add_argument("--log", metavar="FILE", type=os.path.expanduser,
                      help=f"performance log to append to (default: REPORTS/{PERFORMANCE_LOG})")
    test.set_defaults(run=run_test)

    predict_ = commands.add_parser("predict", help="the digit in each image, its confidence and the top 3",
                                   epilog=environment_help())
    _add_model_options(predict_)
    predict_.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, WebP, GIF or BMP files")
    predict_.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict_.add_argument("--keep-going", action="store_true",
                          help="answer the images that can be read and name the others on stderr (exit status 2 "
                               "where any could not be read); without it, one bad image stops all, with no answer")
    predict_.set_defaults(run=run_predict)
    return parser


BAD_INPUT: tuple[type[Exception], ...] = (UsageError, CheckpointError, ConfigError, ImageError, MNISTDataError,
                                         TrainingDiverged)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:
        checked_settings(args.device)
        return args.run(args)
    return command_status(command, BAD_INPUT)  # bad input, Ctrl-C, a reader that left or a full disk: one line
