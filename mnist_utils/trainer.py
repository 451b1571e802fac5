"""`python -m mnist_utils train --config configs/X.yaml`: a config trained from the command line, with the
same code the notebooks run (`training.train_recipe`, `features.train_head`), into a run folder:

    reports/runs/<config>-seed<N>-<time>/   train.log, history.csv, history.json, curves.png
    reports/models/<config>-seed<N>         the checkpoint (.safetensors + .json)

The checkpoint is written whenever the monitored validation metric improves (the config's `monitor`, watched
from the end of its warm-up; during the warm-up the latest epoch is kept), so an interrupted run keeps its
best epoch; a config without a validation split keeps the latest epoch's weights. At the end the checkpoint's model is tested once and its metadata gets
the test figures. Every file is written atomically.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from .checkpoints import Classifier, models_dir, recipe_fields, save_checkpoint
from .config import computing_on, get_device, get_profile, reports_dir
from .data import load_data, write_atomic
from .engine import History, row_summary, seed_everything
from .features import train_head
from .plots import plot_history, png_bytes
from .recipes import PRETRAINED, Recipe, build_model, build_pretrained, load_config
from .training import train_recipe


def _logger(log_file: Path) -> logging.Logger:
    """A logger writing to the console and to `log_file`, one line per message."""
    logger = logging.getLogger(f"mnist_utils.train.{log_file}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(log_file)):
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    return logger


def _history_files(history: History, title: str) -> dict[str, bytes]:
    """The history as CSV and JSON, and its learning curves as a PNG."""
    columns = list(dict.fromkeys(key for row in history.rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(history.rows)
    return {"history.csv": text.getvalue().encode(), "curves.png": png_bytes(plot_history(history, title=title)),
            "history.json": (json.dumps(history.rows, indent=1) + "\n").encode()}


def train_from_config(config: str | Path, overrides: Sequence[str] = (), out_dir: Path | str | None = None, *,
                      seed: int | None = None, device: torch.device | str | None = None) -> Path:
    """Train `config` (a name in configs/ or a path) with `overrides` ('key=value'), as the active profile
    runs it, and return the checkpoint's weights path. `seed` defaults to the config's first."""
    recipe = load_config(config, overrides).for_profile(get_profile())
    seed = recipe.seeds[0] if seed is None else seed
    device = torch.device(device) if device else get_device()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir or reports_dir() / "runs" / f"{recipe.name}-seed{seed}-{stamp}")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _logger(run_dir / "train.log")
    try:
        with computing_on(recipe.threads):  # as the notebook that runs this config computes: the same numbers
            return _train(recipe, seed, device, run_dir, log)
    except Exception as error:  # the log keeps why the run ended; the caller reports it
        log.error(f"stopped: {type(error).__name__}: {error}")
        raise
    finally:
        for handler in log.handlers:
            handler.close()
        log.handlers.clear()


def _train(recipe: Recipe, seed: int, device: torch.device, run_dir: Path, log: logging.Logger) -> Path:
    checkpoint = models_dir() / f"{recipe.name}-seed{seed}"
    log.info(f"{recipe.name}: {recipe.describe()}; seed {seed}; {device}; run folder {run_dir}")

    data = load_data()
    seed_everything(seed)
    inputs: dict[str, Any] = {}
    if recipe.model == PRETRAINED:
        net = build_pretrained(recipe)
        model, inputs = net.model, {"mean": net.mean, "std": net.std}
    else:
        model = build_model(recipe)
    model.to(device, memory_format=recipe.memory_format)
    fields = recipe_fields(recipe)
    validated = bool(recipe.val_fraction)

    def on_epoch(row: dict[str, float], improved: bool) -> None:
        log.info(f"epoch {row['epoch']}/{recipe.epochs}: {row_summary(row)}, {row['seconds']:.1f} s")
        # Kept: the best epoch on validation; before its watch begins (the warm-up) and without a validation
        # split, the latest.
        if improved or not validated or row["epoch"] < recipe.monitor_from:
            metrics = {k: row[k] for k in ("val_loss", "val_acc") if k in row}
            save_checkpoint(model, checkpoint, **fields, seed=seed, epochs=row["epoch"], metrics=metrics,
                            title=recipe.title, source=f"configs/{recipe.name}.yaml")
            if improved:
                log.info(f"  {recipe.monitor} improved: checkpoint saved ({checkpoint.name})")

    if recipe.freeze_backbone:
        history, _ = train_head(model, recipe, data, device, seed=seed, inputs=inputs, progress="batches",
                                on_epoch=on_epoch)
    else:
        history = train_recipe(model, recipe, data, device, seed=seed, inputs=inputs, progress="batches",
                               on_epoch=on_epoch)

    # The test set, once, on the weights the checkpoint kept.
    classifier = Classifier.load(checkpoint, device)
    predictions = classifier.predict(data.test)
    kept = classifier.metadata
    save_checkpoint(classifier.model, checkpoint, **fields, seed=seed, epochs=kept["epochs"],
                    metrics={**kept["metrics"], "test_acc": predictions.accuracy, "epochs_run": len(history)},
                    title=recipe.title, source=f"configs/{recipe.name}.yaml")
    for name, content in _history_files(history, f"{recipe.name}, seed {seed}").items():
        write_atomic(run_dir / name, content)
    log.info(f"test accuracy {predictions.accuracy:.2f}% (epoch {kept['epochs']} of {len(history)}); "
             f"checkpoint {checkpoint}.safetensors")
    return checkpoint.with_name(checkpoint.name + ".safetensors")
