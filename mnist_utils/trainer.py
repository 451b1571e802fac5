"""`python -m mnist_utils train --config configs/X.yaml`: a config trained from the command line, with the
same code the notebooks run (`training.train_model`), into a run folder:

    reports/runs/<config>-seed<N>-<time>/   train.log, history.csv, history.json, curves.png,
                                            <run folder's name>.safetensors + .json (the run's checkpoint)
    reports/models/<config>-seed<N>         the checkpoint, published when the run ends

The run's checkpoint holds the weights the config keeps, as its notebook does: with `keep_best`, it is written
whenever the monitored validation metric improves (the config's `monitor`, watched from the end of its warm-up;
during the warm-up the latest epoch is kept), so a run that is stopped or fails keeps its best epoch, in its own
folder, beside the history of the epochs it ran; without it, the latest epoch's weights. At the end the checkpoint's
model is tested once, its metadata gets the test figures, and it is published to reports/models, where the app,
`test` and `predict` look, unless a checkpoint of that name is there already (a notebook's, say): that one is kept
unless `replace` is asked for. A loss that is no longer a number (a learning rate far too high, say) stops the run
at the end of that epoch, before its weights are kept. Every file is written atomically.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import logging
import math
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Sequence, TextIO

import torch
import torch.nn as nn

from .checkpoints import checkpoint_problem, models_dir, noted_title, paths, recipe_fields, save_checkpoint
from .classifier import Classifier
from .config import PROJECT_ROOT, Profile, computing_on, counted, get_device, get_profile, reports_dir
from .config_files import config_path
from .data import MNIST, ImageSet, load_data
from .engine import History, row_summary, seed_everything
from .files import held_besides, jsonable, unwritable, write_atomic
from .inspection import count_parameters
from .plots import plot_history, png_bytes
from .recipes import PRETRAINED, ConfigError, Recipe, build_model, load_config, pretrained_family
from .training import train_model


class Console(io.TextIOBase):
    """sys.stdout or sys.stderr for a run that outlives its console's reader (`train ... | head`, or `2>&1 | head`):
    once the reader has left, what is written goes nowhere and the run goes on, its lines to train.log alone."""

    def __init__(self, stream: TextIO):
        self.stream, self.left = stream, False

    def _tried(self, write: Callable[[], object]) -> None:
        if not self.left:
            try:
                write()
            except BrokenPipeError:
                self.left = True

    def write(self, text: str) -> int:
        self._tried(lambda: self.stream.write(text))
        return len(text)

    def flush(self) -> None:
        self._tried(self.stream.flush)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:  # what a progress bar asks, to draw itself as a terminal can show it
        return not self.left and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "encoding", None)


class _LogFile(logging.FileHandler):
    """train.log: a line a full disk refuses ends the run as any other file's refused write does, its error naming
    the file, where logging printed a traceback of its own for that line and every one after it."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            return super().handleError(record)
        error.filename = error.filename or self.baseFilename
        raise error


def _logger(log_file: Path) -> logging.Logger:
    """A logger writing to the console and to `log_file`, one line per message; a message logged with
    `extra=FILE_ONLY` goes to the file alone (how a run ended: the command line says it on the console)."""
    logger = logging.Logger(f"mnist_utils.train.{log_file}", logging.INFO)  # the run's own: not kept by logging
    console = logging.StreamHandler(sys.stdout)  # a Console while train_from_config runs
    console.addFilter(lambda record: not getattr(record, "file_only", False))
    for handler in (console, _LogFile(log_file)):
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    return logger


FILE_ONLY = {"file_only": True}


def _last_line(log: logging.Logger, line: str) -> None:
    """How a run ended, in its train.log alone; where the disk has no room for it, the error that ended the run is
    the one told."""
    with contextlib.suppress(OSError):
        log.error(line, extra=FILE_ONLY)


def _history_tables(rows: list[dict[str, float]]) -> dict[str, bytes]:
    """The epochs so far as CSV and JSON (written after every epoch; the learning curves, once, at the end)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    as_json = json.dumps(jsonable(rows), indent=1) + "\n"  # a diverged loss as null: JSON has no NaN
    return {"history.csv": text.getvalue().encode(), "history.json": as_json.encode()}


def _run_checkpoint(run_dir: Path) -> Path:
    """The run's own checkpoint, named after its folder: its id (what `test` names its results folder after) is the
    run's, never the published model's."""
    return run_dir / run_dir.resolve().name


def _what_is_kept(run_dir: Path) -> str:
    """What a stopped run's folder keeps, as its last line says it: its finished epochs and its checkpoint."""
    try:
        epochs = len(json.loads((run_dir / "history.json").read_text()))
    except (OSError, ValueError):  # none yet
        epochs = 0
    if not epochs:
        return "no epoch had finished: the run folder holds only train.log"
    checkpoint = paths(_run_checkpoint(run_dir))[0]
    kept = "and its checkpoint" if checkpoint.exists() else "(stopped before its checkpoint was written)"
    return f"the run folder keeps its {counted(epochs, 'finished epoch')} {kept}"


class Trained(NamedTuple):
    """What `train_from_config` gives back: the checkpoint's weights path, and whether it went to reports/models."""
    path: Path
    published: bool


class TrainingDiverged(ValueError):
    """The loss is no longer a finite number: the run cannot recover; the message names what to change."""


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C during a run: the message says what its folder keeps, and where it is."""


def train_from_config(config: str | Path, overrides: Sequence[str] = (), out_dir: Path | str | None = None, *,
                      seed: int | None = None, device: torch.device | str | None = None,
                      replace: bool = False) -> Trained:
    """Train `config` (a name in configs/ or a path) with `overrides` ('key=value'), as the active profile
    runs it; return the weights' path of the checkpoint it published (see the module's docstring), or of the
    run's own where one of that name was kept. `seed` defaults to the config's first. What it prints, progress bars
    included, goes to a Console: a reader that leaves (`| head`) costs the run nothing."""
    with contextlib.redirect_stdout(Console(sys.stdout)), contextlib.redirect_stderr(Console(sys.stderr)):
        return _train_from_config(config, overrides, out_dir, seed=seed, device=device, replace=replace)


def _train_from_config(config: str | Path, overrides: Sequence[str], out_dir: Path | str | None, *,
                       seed: int | None, device: torch.device | str | None, replace: bool) -> Trained:
    _check_run_folder(out_dir)  # first: a folder that cannot be used stops it before a backbone's weights load
    asked, profile = load_config(config, overrides), get_profile()
    recipe = asked.for_profile(profile)
    cuts = profile_cuts(asked, recipe, profile)
    notes = ([f"--set {' '.join(overrides)}"] if overrides else []) + ([cuts] if cuts else [])
    if notes:  # not the config as written: the checkpoint's title says how it differs
        recipe = recipe.replace(title=noted_title(recipe, notes))
    source = config_path(config).resolve()  # recorded in the checkpoint: the project's own, or the path given
    source = source.relative_to(PROJECT_ROOT) if source.is_relative_to(PROJECT_ROOT) else source
    seed = recipe.seeds[0] if seed is None else seed
    device = get_device(str(device) if device else None)  # a device it cannot use stops it before any file
    if recipe.model == PRETRAINED:  # 'auto' decided once: the backbone built and its inputs' normalisation agree
        recipe = recipe.replace(model_args={**recipe.model_args, "family": pretrained_family(recipe)})
    data = load_data()
    recipe.check_data(len(data.train))  # a split or batches these images cannot make stop it here, before a backbone
    seed_everything(seed)  # the run's model, built before any file: model_args that do not fit it stop here too
    model = build_model(recipe)  # a pretrained backbone too; the recipe's batches normalise as it expects
    run_dir = _run_folder(out_dir, f"{recipe.name}-seed{seed}")
    log = _logger(run_dir / "train.log")
    try:
        with computing_on(recipe.threads):  # as the notebook that runs this config computes: the same numbers
            return _train(model, recipe, data, seed, device, run_dir, log, replace, str(source), cuts)
    except KeyboardInterrupt:
        kept = _what_is_kept(run_dir)
        _last_line(log, f"stopped (Ctrl-C); {kept}: {run_dir}")
        raise TrainingStopped(f"{kept}: {run_dir}") from None
    except TrainingDiverged as error:  # as Ctrl-C's, its line says what the run folder keeps
        kept = _what_is_kept(run_dir)
        _last_line(log, f"stopped: {error}; {kept}")
        raise TrainingDiverged(f"{error}; {kept}: {run_dir}") from None
    except Exception as error:  # the log keeps why the run ended; the caller reports it
        _last_line(log, f"stopped: {type(error).__name__}: {error}")
        raise
    finally:
        for handler in log.handlers:
            handler.close()
        log.handlers.clear()


def _check_run_folder(out_dir: Path | str | None) -> None:
    """Refuse (ConfigError) a run folder `out_dir` (`train --out`) where a file is there or that holds files
    already: the run would write its log, history and checkpoint among an earlier run's, appending to its
    train.log; and a run folder, given or not, or a reports folder (where the model is published) where nothing can
    be written."""
    for place in ([] if out_dir else [reports_dir() / "runs"]) + [models_dir()]:  # where the checkpoint is published
        why = unwritable(place)
        if why:
            raise ConfigError(f"{place}, where `train` writes its model: {why}; set MNIST_REPORTS_DIR to a folder "
                              "you can write to")
    if not out_dir:
        return
    run_dir = Path(out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: a file is there; give the path of a folder for the run")
    held = held_besides(run_dir) if run_dir.is_dir() else ""
    if held:
        raise ConfigError(f"--out {out_dir}: it holds {held} (an earlier run's?); `train` writes its run into a "
                          "folder of its own: give a new or empty folder, or remove this one")
    why = unwritable(run_dir)
    if why:
        raise ConfigError(f"--out {out_dir}: {why}; give a folder you can write to")


def _run_folder(out_dir: Path | str | None, name: str) -> Path:
    """The run's folder: `out_dir` (checked by `_check_run_folder`), made where missing; without it, a new folder
    in reports/runs, named `name` and the second the run starts."""
    if not out_dir:
        return _new_folder(reports_dir() / "runs" / f"{name}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return Path(out_dir)


def _new_folder(wanted: Path) -> Path:
    """`wanted`, made; or, where a run that started in the same second made it, `wanted`-2, -3, ...: two runs
    never share a folder (mkdir without exist_ok: of two processes racing for a name, one gets the next)."""
    wanted.parent.mkdir(parents=True, exist_ok=True)
    folder, number = wanted, 1
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            number += 1
            folder = wanted.with_name(f"{wanted.name}-{number}")


def profile_cuts(asked: Recipe, runs: Recipe, profile: Profile) -> str:
    """What `profile` cut from the recipe `asked` for, so that it runs `runs` ("smoke profile: 1 of 200 epochs,
    ..."), for the run's first line: a user who asked for 200 epochs sees why one runs. "" in the full profile."""
    if profile.name == "full":
        return ""
    cuts = [f"{runs.epochs} of {asked.epochs} epochs"] if runs.epochs != asked.epochs else []
    if runs.batches_per_epoch != asked.batches_per_epoch:
        cuts.append(f"{runs.batches_per_epoch} of {asked.batches_per_epoch} batches per epoch")
    if images := profile.images_kept():
        cuts.append(images)
    return f"{profile.name} profile: {', '.join(cuts) or 'nothing cut'}"


def _train(model: nn.Module, recipe: Recipe, data: MNIST, seed: int, device: torch.device, run_dir: Path,
           log: logging.Logger, replace: bool, source: str, cuts: str) -> Trained:
    """Train `model` by `recipe` on `data`, keeping its checkpoint and history in `run_dir` as the epochs go, then
    test and publish it."""
    checkpoint, published = _run_checkpoint(run_dir), models_dir() / f"{recipe.name}-seed{seed}"
    arguments = ", ".join(f"{key}={value}" for key, value in recipe.model_args.items())
    log.info(f"{cuts + '; ' if cuts else ''}{recipe.name}: {recipe.model}{f'({arguments})' * bool(arguments)}, "
             f"{count_parameters(model):,} parameters; {recipe.describe()}; seed {seed}; {device}; "
             f"run folder {run_dir}")

    model.to(device, memory_format=recipe.memory_format)
    fields = dict(recipe_fields(recipe, device), seed=seed, title=recipe.title, source=source)
    rows: list[dict[str, float]] = []  # the epochs so far: written out however the run ends

    def on_epoch(row: dict[str, float], improved: bool) -> None:
        rows.append(row)
        for name, content in _history_tables(rows).items():  # kept however the run ends, even by Ctrl-C right now
            write_atomic(run_dir / name, content)
        log.info(f"epoch {row['epoch']}/{recipe.epochs}: {row_summary(row)}, {row['seconds']:.1f} s")
        for key in ("train_loss", "val_loss"):
            if key in row and not math.isfinite(row[key]):
                raise TrainingDiverged(f"{recipe.name}: {key} is {row[key]} after epoch {row['epoch']}: training "
                                       f"diverged; lower the learning rate (now lr={recipe.lr:g})")
        # Kept: with keep_best, the best epoch on validation (the latest before its watch begins, in the warm-up);
        # without it, the latest, as fit gives it back
        if improved or not recipe.keep_best or row["epoch"] < recipe.monitor_from:
            metrics = {k: row[k] for k in ("val_loss", "val_acc") if k in row}
            unfinished = {"title": f"{fields['title'] or recipe.name} — epoch {row['epoch']} of {recipe.epochs}, "
                                   "kept before its run ended"}  # until the end's test replaces it
            save_checkpoint(model, checkpoint, **{**fields, **unfinished}, epochs=row["epoch"], metrics=metrics)
            if improved and recipe.keep_best:
                log.info(f"  {recipe.monitor} improved: checkpoint saved ({checkpoint.name})")

    try:
        history, _ = train_model(model, recipe, data, device, seed=seed, progress="batches",
                                 on_epoch=on_epoch)
    finally:
        if rows:
            curves = plot_history(History(rows), title=f"{recipe.name}, seed {seed}")
            write_atomic(run_dir / "curves.png", png_bytes(curves))

    return _test_and_publish(checkpoint, published, data.test, device, fields, len(history), log, replace)


def _test_and_publish(checkpoint: Path, published: Path, test: ImageSet, device: torch.device, fields: dict,
                      epochs_run: int, log: logging.Logger, replace: bool) -> Trained:
    """Test the run's `checkpoint` once, on the weights it kept, record the figures in its metadata and publish it
    as `published`, unless a checkpoint is there already and `replace` is not asked for."""
    classifier = Classifier.load(checkpoint, device)
    predictions = classifier.predict(test, desc="testing the checkpoint")
    kept = classifier.metadata
    final = dict(fields, epochs=kept["epochs"],
                 metrics={**kept["metrics"], "test_acc": predictions.accuracy, "epochs_run": epochs_run})
    save_checkpoint(classifier.model, checkpoint, **final)
    log.info(f"test accuracy {predictions.accuracy:.2f}% (epoch {kept['epochs']} of {epochs_run})")
    there = paths(published)[0].exists()
    broken = checkpoint_problem(published) if there else None
    if there and broken is None and not replace:
        log.info(f"{published}.safetensors is there already and is kept (pass --replace to put this run's "
                 f"model there); this run's checkpoint: {checkpoint}.safetensors")
        return Trained(paths(checkpoint)[0], published=False)
    if broken is not None:  # damaged files (missing, cut short, not theirs), a model this code cannot build: unusable
        log.info(f"the checkpoint there cannot be loaded, so this run's replaces it: {broken}")
    log.info(f"checkpoint published: {published}.safetensors")
    return Trained(save_checkpoint(classifier.model, published, **final), published=True)
