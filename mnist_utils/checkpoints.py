"""Trained models on disk: weights as safetensors (tensors only, nothing is unpickled) beside a JSON file of
metadata from which the model is rebuilt.

    save_checkpoint(model, "reports/models/step3", **recipe_fields(recipe, device), seed=1,
                    metrics={"test_acc": 99.4}, epochs=15)
    model, meta = load_model("reports/models/step3.safetensors")

``NAME.safetensors`` holds the state dict; ``NAME.json`` says which architecture of models.py it belongs to
(name and constructor arguments), how it was trained (config, seed, epochs, precision), how its inputs are
normalised, its test metrics, the torch version, the SHA-256 of the MNIST files and of the weights, and the
date. Both are written in full under temporary names before either is renamed into place, weights first: a
failed save leaves the previous checkpoint whole, and the metadata's SHA-256 of the weights catches any other
mismatch. A save renames its two files while it holds the folder, and loading or listing reads them while holding
it too, so that none sees a save half done.
Loading checks everything it can and names the file and the problem when something is off.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors, save as save_safetensors

from models import IMAGE_SIZE

from .config import counted, get_device, get_profile, pending_dir, reports_dir
from .config_values import BUILD_ERRORS, is_number
from .data import FILES, MNIST_MEAN, MNIST_STD
from .engine import History
from .files import folder_lock, jsonable, sha256_of, write_staged
from .inspection import count_parameters
from .recipes import (PRETRAINED, ConfigError, Recipe, build_model, build_pretrained,
                      input_normalization, pretrained_family)
from .report import Report

FORMAT = "mnist-notebooks checkpoint 1"  # bump when the metadata's meaning changes
SAFETENSORS_HEADER_LIMIT = 100_000_000  # bytes: the format's own limit on its JSON header
WEIGHTS_SUFFIX, METADATA_SUFFIX = ".safetensors", ".json"
REQUIRED = ("model", "weights", "normalization", "metrics")  # metadata entries loading relies on
_DAMAGED = "the metadata was edited or is damaged. Save the model again."  # how a bad entry's message ends

_log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be saved or loaded; the message names the file, the problem and the fix."""


def models_dir() -> Path:
    """Where trained models are kept: reports/models (it follows MNIST_REPORTS_DIR)."""
    return reports_dir() / "models"


def make_command(target: str) -> str:
    """`make TARGET` as a message names it, in the active profile: so that it works on the folder the message names
    (the smoke profile's models are in reports/smoke/models)."""
    smoke = " PROFILE=smoke" if get_profile().is_smoke else ""
    return f"`make {target}{smoke}`"


def train_one() -> str:
    """The command a message names where no model is saved yet: the default model's training."""
    return make_command("train CONFIG=configs/step3.yaml")


def rebuild_model(name: str, args: Mapping[str, Any] | None = None, input_size: int = IMAGE_SIZE) -> nn.Module:
    """A freshly initialised model: `name` is a class of models.py or 'pretrained' (an ImageNet backbone, built
    here without its ImageNet weights, which the checkpoint replaces), `args` its keyword arguments."""
    try:
        recipe = Recipe(name="checkpoint", model=name, model_args=dict(args or {}), image_size=input_size)
        with torch.random.fork_rng(devices=[]):  # its initial weights are replaced: leave the caller's seed alone
            return build_pretrained(recipe, pretrained=False).model if name == PRETRAINED else build_model(recipe)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    except BUILD_ERRORS as error:  # the model fails on its own defaults (`raise_own_fault`)
        raise CheckpointError(f"{name} cannot be built: {error} (a fault in its code, not this checkpoint's)") from error


def recipe_fields(recipe: Recipe, device: torch.device) -> dict[str, Any]:
    """What `save_checkpoint` needs to know of a model trained with `recipe`: its name and arguments (a
    pretrained backbone's family made definite), the config, the input normalisation and size, and, trained on
    `device`, the precision it trained and was tested in there (the config's bf16 holds only where it is native)."""
    args = dict(recipe.model_args)
    if recipe.model == PRETRAINED:
        args["family"] = pretrained_family(recipe)  # 'auto' would depend on the machine that loads it
    normalization = input_normalization(recipe)
    return {"model_name": recipe.model, "model_args": args, "config": recipe.to_dict(),
            "mean": normalization["mean"], "std": normalization["std"], "input_size": recipe.input_size,
            "precision": recipe.precision(device)}


def _state_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str | None:
    """What differs between two state dicts' names and shapes, in a sentence; None when they fit."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"{k} {tuple(found[k].shape)} where the model has {tuple(expected[k].shape)}"
              for k in expected if k in found and found[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing ({', '.join(missing[:3])}{', …' * (len(missing) > 3)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{', …' * (len(unexpected) > 3)})")
    if shapes:
        problems.append(f"{len(shapes)} of other shapes ({'; '.join(shapes[:2])}{'; …' * (len(shapes) > 2)})")
    return "; ".join(problems) or None


def paths(path: Path | str) -> tuple[Path, Path]:
    """(weights, metadata) of the checkpoint at `path`: NAME, NAME.safetensors or NAME.json."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, METADATA_SUFFIX) else path
    return stem.with_name(stem.name + WEIGHTS_SUFFIX), stem.with_name(stem.name + METADATA_SUFFIX)


def _same_header_order(weights: bytes) -> bytes:
    """`weights` (a safetensors file) with its header's metadata in sorted order, padded to its length as before:
    safetensors writes that map in an order that varies from one save to the next, so the same tensors would give
    files, and SHA-256s, that differ."""
    length = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8:8 + length])
    if isinstance(header.get("__metadata__"), dict):
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()  # as the writer: UTF-8
    if len(text) > length:  # cannot happen (the same keys and values); keep the file as written rather than fail
        return weights
    return weights[:8] + text.ljust(length) + weights[8 + length:]


def save_checkpoint(model: nn.Module, path: Path | str, *, model_name: str, model_args: Mapping[str, Any] | None = None,
                    config: Any = None, seed: int | None = None, mean: float = MNIST_MEAN, std: float = MNIST_STD,
                    input_size: int = IMAGE_SIZE, metrics: Mapping[str, Any] | None = None, epochs: int | None = None,
                    title: str | None = None, source: str | None = None, precision: str | None = None) -> Path:
    """Write `model`'s weights to PATH.safetensors and its metadata to PATH.json; return the weights' path.

    `model_name`/`model_args` must rebuild `model` (checked here, before anything is written); `config` is
    what it was trained with (a dict or dataclass); `mean`/`std`/`input_size` how its inputs are prepared;
    `recipe_fields(recipe, device)` gives all of these for a model a recipe trained;
    `metrics` its test figures (e.g. test_acc in %); `title` a name for people; `source` the notebook or
    config file that trained it; `precision` the arithmetic it trained and was tested in (None: its config's).
    """
    weights_path, metadata_path = paths(path)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    rebuilt = rebuild_model(model_name, model_args, input_size).state_dict()
    if (problem := _state_mismatch(rebuilt, state)) is not None:
        raise CheckpointError(f"Not saved to {weights_path}: {model_name}({dict(model_args or {})}) does not rebuild "
                              f"this model: {problem}. Pass the name and arguments the model was built with.")
    weights = _same_header_order(save_safetensors(state, metadata={"format": FORMAT, "model": model_name}))
    metadata = {
        "format": FORMAT,
        "title": title or weights_path.stem,
        "model": {"name": model_name, "args": jsonable(dict(model_args or {}))},
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": jsonable(config),
        "source": source,
        "seed": seed,
        "epochs": epochs,
        "normalization": {"mean": float(mean), "std": float(std)},
        "input_size": int(input_size),
        "precision": precision,
        "metrics": jsonable(dict(metrics or {})),
        "torch": torch.__version__,
        "data_sha256": {name: sha for name, (_, sha) in FILES.items()},  # what the training data was verified against
        "weights": {"file": weights_path.name, "bytes": len(weights), "sha256": hashlib.sha256(weights).hexdigest()},
        "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _replace_together({weights_path: weights, metadata_path: (json.dumps(metadata, indent=2) + "\n").encode()})
    return weights_path


def _replace_together(files: dict[Path, bytes]) -> None:
    """Write every file under a temporary name of its own first, then rename them into place, in order: a failed
    write (a full disk, an interrupted run) leaves the previous checkpoint as it was, and two saves of one
    checkpoint at once leave one save's files, not a mix (the renames hold the folder)."""
    staged: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            staged[path] = write_staged(path, data)
        with folder_lock(next(iter(files)).parent):
            for path, temporary in staged.items():
                os.replace(temporary, path)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The metadata of the checkpoint at `path`, checked to be a checkpoint's; a CheckpointError otherwise."""
    weights_path, metadata_path = paths(path)
    if Path(path).is_file() and Path(path).suffix not in (WEIGHTS_SUFFIX, METADATA_SUFFIX):
        raise CheckpointError(f"{path} is not a checkpoint: one is NAME{WEIGHTS_SUFFIX} with NAME{METADATA_SUFFIX} "
                              "beside it, as training saves them.")
    if not metadata_path.exists():
        if weights_path.exists():
            raise CheckpointError(f"{weights_path} has no metadata file {metadata_path.name} beside it, so its model "
                                  "cannot be rebuilt: keep the two files together, as training saves them.")
        raise CheckpointError(f"No checkpoint at {path}: neither {weights_path.name} nor {metadata_path.name} exists "
                              f"there. Saved models are in {models_dir()}; train one with {train_one()}.")
    try:
        metadata = json.loads(_read(metadata_path))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{metadata_path} is not valid JSON ({error}): the file is truncated or not a "
                              "checkpoint's metadata. Save the model again.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise CheckpointError(f"{metadata_path} is not a checkpoint's metadata (format {found!r}, expected "
                              f"{FORMAT!r}). Point to a model saved by this project.")
    if missing := [key for key in REQUIRED if not isinstance(metadata.get(key), dict)]:
        raise CheckpointError(f"{metadata_path} lacks {', '.join(missing)}: {_DAMAGED}")
    weights = metadata["weights"]
    if not (isinstance(metadata["model"].get("name"), str) and isinstance(weights.get("bytes"), int)
            and isinstance(weights.get("sha256"), str)):
        raise CheckpointError(f"{metadata_path} lacks the model name or the weights' size and SHA-256: {_DAMAGED}")
    if (problem := _inputs_problem(metadata) or _recorded_problem(metadata)) is not None:
        raise CheckpointError(f"{metadata_path}: {problem}: {_DAMAGED}")
    return {**metadata, "path": str(weights_path), "id": weights_path.stem}


def _finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inputs_problem(metadata: Mapping[str, Any]) -> str | None:
    """What is wrong with how a checkpoint's metadata says to prepare its inputs (the normalisation's mean and std,
    the input size), which every prediction uses; None when a model can be given them."""
    normalization, size = metadata["normalization"], metadata.get("input_size", IMAGE_SIZE)
    if not (_finite_number(normalization.get("mean")) and _finite_number(normalization.get("std"))
            and normalization["std"] > 0):
        return f"its normalization {normalization} is not a finite mean and a std above 0"
    if not (_whole_number(size) and size > 0):
        return f"its input_size {size!r} is not a number of pixels"
    return None


def _recorded_problem(metadata: Mapping[str, Any]) -> str | None:
    """What is wrong with what a checkpoint's metadata records of its model for the page and the command line (its
    title, size and test accuracy) and of the settings its predictions follow (its config's); None when each is of
    the kind `save_checkpoint` writes."""
    config = metadata.get("config") or {}
    checks = [("its title", metadata.get("title"), lambda value: isinstance(value, str), "text"),
              ("its parameters", metadata.get("parameters"), _whole_number, "a whole number"),
              ("its model's args", metadata["model"].get("args") or {}, lambda value: isinstance(value, dict),
               "a mapping of names to values"),
              ("its config", config, lambda value: isinstance(value, dict), "a mapping of names to values"),
              ("its test_acc", metadata["metrics"].get("test_acc"),
               lambda value: value is None or _finite_number(value), "a finite number")]
    for what, value, fits, kind in checks:
        if not fits(value):
            return f"{what} {value!r} is not {kind}"
    settings = [("eval_batch_size", lambda value: _whole_number(value) and value > 0, "a whole number above 0"),
                ("channels_last", lambda value: isinstance(value, bool), "true or false"),  # "false" would read as true
                ("bf16", lambda value: isinstance(value, bool), "true or false"),
                ("label_smoothing", _finite_number, "a finite number")]  # the page explains a less sure model by it
    for setting, fits, kind in settings:
        if setting in config and not fits(config[setting]):
            return f"its config's {setting} {config[setting]!r} is not {kind}"
    return None


def _cannot_read(path: Path, error: OSError) -> CheckpointError:
    return CheckpointError(f"{path} cannot be read ({error.strerror}): check its permissions.")


def _read(path: Path) -> bytes:
    """The bytes of a checkpoint's file; one that exists but cannot be read is a CheckpointError saying why."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise _cannot_read(path, error) from None


def _sha256(path: Path) -> str:
    """A checkpoint file's SHA-256, read a megabyte at a time (a listing need not hold a large model's weights);
    one that cannot be read is a CheckpointError, as `_read` says it."""
    try:
        return sha256_of(path)
    except OSError as error:
        raise _cannot_read(path, error) from None


def load_model(path: Path | str, device: torch.device | str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at `path` (NAME, NAME.safetensors or NAME.json) from its metadata alone, in eval
    mode on `device` (default CPU); return it with its metadata. Anything missing, truncated or mismatched is a
    CheckpointError naming the file and what is wrong."""
    with folder_lock(paths(path)[0].parent):  # as a save holds it to rename its files: none seen half done
        metadata = read_metadata(path)
        weights_path = Path(metadata["path"])
        _check_weights_file(metadata)
        weights = _read(weights_path)
    _check_digest(weights_path, hashlib.sha256(weights).hexdigest(), metadata["weights"]["sha256"])
    try:
        state = load_safetensors(weights)
    except (SafetensorError, ValueError) as error:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file ({error}). "
                              "Save the model again.") from None
    model = _rebuilt(metadata, state)
    model.load_state_dict(state)
    return model.to(device or "cpu").eval(), metadata


def _rebuilt(metadata: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> nn.Module:
    """The checkpoint's model, freshly initialised from its metadata, checked to take `state` (its tensors, or
    tensors of their shapes alone); a CheckpointError where it cannot be built or does not fit."""
    spec, weights_path = metadata["model"], metadata["path"]
    try:
        model = rebuild_model(spec["name"], spec.get("args"), metadata.get("input_size", IMAGE_SIZE))
    except CheckpointError as error:
        raise CheckpointError(f"{weights_path}: {error}") from None
    if (problem := _state_mismatch(model.state_dict(), state)) is not None:
        raise CheckpointError(f"{weights_path} does not fit {spec['name']}: {problem}. The weights are of another "
                              "architecture or other arguments than its metadata says.")
    return model


def _check_digest(weights_path: Path, found: str, recorded: str) -> None:
    """Refuse weights whose SHA-256 (`found`) is not the one their metadata records (`recorded`): a
    CheckpointError."""
    if found != recorded:
        raise CheckpointError(f"{weights_path} does not match the SHA-256 in its metadata: the file is corrupt or "
                              "belongs to another checkpoint. Save the model again.")


def _check_weights_file(metadata: Mapping[str, Any]) -> None:
    """Refuse a checkpoint's weights file where a look at the file alone shows it is not whole (missing, not the
    size its metadata records, or not starting as a safetensors file): a CheckpointError (`load_model` checks the
    rest)."""
    weights_path, expected = Path(metadata["path"]), metadata["weights"]["bytes"]
    try:
        size = weights_path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{weights_path} is missing, though its metadata is there: copy the weights file next "
                              "to it, or save the model again.") from None
    except OSError as error:  # a link to itself, no permission: one unreadable file must not stop the listing
        raise CheckpointError(f"{weights_path} cannot be read ({error.strerror or error}): save the model "
                              "again.") from None
    if size != expected:
        raise CheckpointError(f"{weights_path} is {size:,} bytes where its metadata says {expected:,}: the file is "
                              "truncated or was replaced. Save the model again.")
    if _safetensors_header(weights_path, size) is None:  # a few bytes read: quick (a verifying listing hashes the rest)
        raise CheckpointError(f"{weights_path} does not start as a safetensors file does: it is corrupt. Save the "
                              "model again.")


def _listed(path: Path | str, verify: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint at `path` as a listing looks at it (its metadata, its weights file's size and header, and with
    `verify` the SHA-256 of the whole file and its model, built and given the header's shapes): its metadata and
    None when it looks whole, else None and the error message saying what is wrong."""
    try:
        metadata = read_metadata(path)
        _check_weights_file(metadata)
        if verify:
            weights_path = Path(metadata["path"])
            _check_digest(weights_path, _sha256(weights_path), metadata["weights"]["sha256"])
            # as loading it would: a model its code cannot build, weights that do not fit
            _rebuilt(metadata, _header_shapes(weights_path, metadata["weights"]["bytes"]))
    except CheckpointError as error:
        return None, str(error)
    return metadata, None


def checkpoint_problem(path: Path | str) -> str | None:
    """What would keep the checkpoint at `path` from loading, as far as a verifying listing looks (the SHA-256
    included); None when it looks whole. Read while holding the folder, as `load_model` reads it."""
    with folder_lock(paths(path)[0].parent):
        return _listed(path, verify=True)[1]


def _safetensors_header(path: Path, size: int) -> dict[str, Any] | None:
    """The header of the safetensors file at `path` (`size` bytes): 8 bytes giving the length of a JSON header that
    fits in the file, then that header, naming each tensor with its shape (the tensors after it are not read:
    `load_model`'s SHA-256 checks those); None where the file does not start so."""
    try:
        with path.open("rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if not 2 <= length <= min(size - 8, SAFETENSORS_HEADER_LIMIT):
                return None
            header = json.loads(file.read(length))
            return header if isinstance(header, dict) else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _header_shapes(path: Path, size: int) -> dict[str, torch.Tensor]:
    """The tensors the header of the safetensors file at `path` (`size` bytes) names, as tensors of their shapes
    holding no data (on the meta device); a CheckpointError where a shape is not one."""
    header = _safetensors_header(path, size) or {}
    try:
        return {name: torch.empty(entry.get("shape", []), device="meta") for name, entry in header.items()
                if name != "__metadata__" and isinstance(entry, dict)}
    except (TypeError, ValueError, RuntimeError):  # ["a"], [-1], [2**70]: a file made by hand, its SHA-256 to match
        raise CheckpointError(f"{path}: its header gives a tensor a shape that is not one: it is corrupt. Save the "
                              "model again.") from None


def list_checkpoints(directory: Path | str | None = None, skipped: list[dict[str, str]] | None = None, *,
                     verify: bool = False) -> list[dict[str, Any]]:
    """The metadata of every checkpoint in `directory` (default reports/models), best test accuracy first.
    A checkpoint whose metadata is not valid, or whose weights file is missing or not the size it records (with
    `verify`, or whose SHA-256 is not the one it records, or whose model cannot be built or does not take its
    weights' shapes: a whole read of every file, as the page does once per change of the folder), is left out with
    a logged warning: a broken file must not become a default.
    `skipped` (where given) gets each one left out, weights without metadata too: {"id", "problem"}, the problem
    naming files by their names in the folder. Read while holding the folder, as a save holds it to put its two
    files in place, so that no save is seen half done."""
    folder, found = Path(directory or models_dir()), []
    if not folder.is_dir():
        return found
    with folder_lock(folder):
        stems = sorted({path.name[:-len(suffix)] for suffix in (METADATA_SUFFIX, WEIGHTS_SUFFIX)
                        for path in folder.glob(f"*{suffix}")})
        for stem in stems:
            metadata, problem = _listed(folder / stem, verify)
            if problem is None:
                found.append(metadata)
                continue
            _log.warning("skipped: %s", problem)
            if skipped is not None:
                skipped.append({"id": stem, "problem": problem.replace(f"{folder}{os.sep}", "")})
    return sorted(found, key=lambda m: (-(m["metrics"].get("test_acc") or 0.0), m["id"]))


DEFAULT_ARCHITECTURE = "Model_3"  # Step 3's: the page and the command line answer with it unless told otherwise


def default_checkpoint(checkpoints: list[dict[str, Any]],
                       architecture: str = DEFAULT_ARCHITECTURE) -> dict[str, Any] | None:
    """The most accurate of `checkpoints` (as `list_checkpoints` orders them) of `architecture` (Step 3's, whichever
    config trained it: `step3`, `fastest`, ...), else the most accurate of any; None when there are none."""
    return next((m for m in checkpoints if m["model"]["name"] == architecture), checkpoints[0] if checkpoints else None)


def noted_title(recipe: Recipe, notes: Sequence[str]) -> str:
    """The title of a checkpoint of `recipe` not trained as its config is written: `notes` say how it differs."""
    return f"{recipe.title or recipe.name} ({'; '.join(notes)})"


def save_trained(model: nn.Module, recipe: Recipe, *, seed: int, test_acc: float, epochs: int, notebook: str,
                 directory: Path | str | None = None) -> str:
    """Save a model a notebook reports as `<config>-seed<N>` in reports/models (the profile's), the name
    `python -m mnist_utils train` gives the same config and seed; return its path relative to the reports
    folder, which the results file, the index and the leaderboard link to. Under the runner it goes to the
    notebook's pending folder first, as its results do: the runner moves both into place when the notebook
    finishes, so a run that is stopped replaces no model."""
    pending, profile = pending_dir(), get_profile()
    directory = Path(directory or (pending / "models" if pending else models_dir()))
    title = recipe.title  # a cut run says so, as `train` notes its cuts: the app lists models by title
    if profile.name != "full":
        cuts = ", ".join(filter(None, [counted(epochs, "epoch"), profile.images_kept()]))
        title = noted_title(recipe, [f"{profile.name} profile: {cuts}"])
    fields = recipe_fields(recipe, get_device())  # the notebook's device (packed seeds come back on the CPU)
    weights = save_checkpoint(model, directory / f"{recipe.name}-seed{seed}", **fields, seed=seed, epochs=epochs,
                              metrics={"test_acc": test_acc}, title=title, source=f"notebooks/{notebook}.ipynb")
    return str(weights.relative_to(directory.parent))


def save_and_record(report: Report, name: str, model: nn.Module, recipe: Recipe, history: History, *, seed: int,
                    test_acc: float, seconds: float, run: str | None = None, **extra: Any) -> str:
    """A model a notebook trained, in one call: saved as `save_trained` saves it, on `report`'s leaderboard as
    `name` (its parameters, `test_acc`, `seconds`, epochs run, checkpoint and `extra`: give `train_images`, the
    digits it learned from, which the leaderboard shows), its history kept under `run` (default: `name`). Returns
    the checkpoint's path, relative to the reports folder. A history of other than the recipe's epochs, where no
    early stopping could end it, is not that recipe's training (one stopped part-way in Jupyter, or one of a
    config since changed): refused, naming the fix."""
    if recipe.patience is None and len(history) != recipe.epochs:
        raise ValueError(f"{name}: its history has {len(history)} epochs and the recipe {recipe.epochs}, so the model "
                         f"is not that recipe's training (stopped part-way, or trained with another recipe?): run the "
                         f"training cell to its end, or pass the recipe it trained with.")
    checkpoint = save_trained(model, recipe, seed=seed, test_acc=test_acc, epochs=len(history),
                              notebook=report.notebook)
    report.add_model(name, params=count_parameters(model), test_acc=test_acc, seconds=seconds, epochs=len(history),
                     checkpoint=checkpoint, **extra)
    report.add_run(run or name, history=history.rows)
    return checkpoint
