"""The experiment files of `configs/` read as keys: a file, the files it builds on (`base: other.yaml`, the way a
variant of an experiment differs from it, key by key) and the command line's overrides (`--set key=value`, last),
merged into one dict. `recipes.load_config` turns the keys into a validated Recipe."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from .config import PROJECT_ROOT
from .config_values import ConfigError, load_yaml, yaml_problem

CONFIGS_DIR = PROJECT_ROOT / "configs"


def config_path(name: str | Path) -> Path:
    """The path as given where it exists; else `configs/NAME.yaml` for a bare NAME or NAME.yaml."""
    path, named = Path(name), Path(name).suffix in (".yaml", ".yml")
    if path.exists() or named and path.parent != Path("."):
        return path
    return CONFIGS_DIR / (path.name if named else f"{name}.yaml")


def config_names() -> list[str]:
    return sorted(path.stem for path in CONFIGS_DIR.glob("*.yaml"))


def _chain(path: Path) -> list[tuple[Path, str, dict[str, Any]]]:
    """(path, text, keys) of a config file and of every file it builds on (`base`), the first base first; a
    missing, unreadable or circular file is a ConfigError that names it. A base is looked for beside the file
    that names it first, then in the project's configs/ (so a config kept elsewhere can build on `step3.yaml`)."""
    chain: list[tuple[Path, str, dict[str, Any]]] = []
    while True:
        if path.is_dir():
            raise ConfigError(f"{path}: a folder; name a config file (a .yaml file) in it")
        if path.exists() and not path.is_file():  # a device (/dev/null), a pipe: nothing a config is kept in
            raise ConfigError(f"{path}: not a file; name a config file (a .yaml file)")
        if not path.is_file():
            if not chain:
                raise ConfigError(f"{path}: no such config file; choose one of {', '.join(config_names())} in "
                                  f"{CONFIGS_DIR}")
            base = chain[0][2]["base"]  # the two folders tried, as the end of this loop tries them
            beside, shared = chain[0][0].parent / Path(base).parent, CONFIGS_DIR / Path(base).parent
            places = (f"in {beside}; name a config file there" if beside.resolve() == shared.resolve() else
                      f"in {beside} or {shared}; name a config file in either")
            raise ConfigError(f"{chain[0][0]}: base {base}: no such file {places}")
        if path.resolve() in (p.resolve() for p, _, _ in chain):
            raise ConfigError(f"{path}: 'base' leads back to itself")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (UTF-8): a config is YAML text") from None
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read ({error.strerror}): check its permissions") from None
        try:
            values = load_yaml(text) or {}
        except yaml.YAMLError as error:
            where, what = yaml_problem(error)
            raise ConfigError(f"{path}{', ' * bool(where)}{where}: not valid YAML: {what}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected keys and values, got {type(values).__name__}")
        chain.insert(0, (path, text, values))
        if not values.get("base"):
            return chain
        if not isinstance(values["base"], str):
            raise ConfigError(f"{path}: base: expected a config file's name (base: step3.yaml), got {values['base']!r}")
        beside, shared = path.parent / values["base"], CONFIGS_DIR / values["base"]
        path = shared if not beside.is_file() and shared.is_file() else beside


def config_files(name: str | Path) -> list[tuple[Path, str]]:
    """(path, text) of a config file and of every file it builds on, the first base first."""
    return [(path, text) for path, text, _ in _chain(config_path(name))]


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise ConfigError(f"--set {text!r}: write key=value, e.g. epochs=3 or augment.rotation=5")
    try:
        return key.strip().split("."), load_yaml(value)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML: {yaml_problem(error)[1]}") from None


def read_config(name: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The keys of a config file (a name in configs/ or a path), over those of the files it builds on, with
    `overrides` ('epochs=3', 'model_args.dropout=0.1') over them all. Groups of keys (model_args, augment) are merged
    key by key."""
    values: dict[str, Any] = {}
    for _, _, layer in _chain(config_path(name)):  # the first base first
        _start_model_args_afresh(values, layer.get("model"))
        for key, value in layer.items():
            if key != "base":
                values[key] = ({**values[key], **value} if isinstance(value, dict) and isinstance(values.get(key), dict)
                               else value)
    changes = [(text, *_parse_override(text)) for text in overrides]
    for model in [value for _, keys, value in changes if keys == ["model"]]:  # before any model_args given with it
        _start_model_args_afresh(values, model)
    for text, keys, value in changes:
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {text!r}: {key} is not a group of keys")
        target[keys[-1]] = value
    return values


def _start_model_args_afresh(values: dict[str, Any], model: Any) -> None:
    """A file, or `--set model=...`, naming another model than the keys so far drops their model_args: they were
    their model's, not this one's (keys that name no model keep them)."""
    if model is not None and values.get("model", model) != model:
        values.pop("model_args", None)
