"""Values read from YAML, checked: each converted to a dataclass field's type (fractions such as 1/12 and
numbers such as 1e-3 included), unknown keys named with the key likely meant, YAML's errors in one line. The
errors are ConfigErrors that name the key; config_files.py and recipes.py read config files with them."""
from __future__ import annotations

import difflib
import fractions
import re
import typing
from typing import Any, Callable, Iterable

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key and the choices."""


BUILD_ERRORS = (TypeError, ValueError, RuntimeError)  # a model's arguments or input size that do not fit it


def raise_own_fault(build_on_defaults: Callable[[], Any]) -> None:
    """For a model its config's arguments failed to build: raises what building it on its own defaults raises,
    as then the fault is the model's code, not the config (which a ConfigError would blame); else nothing."""
    try:
        build_on_defaults()
    except BUILD_ERRORS as own:
        raise own from None


def is_number(value: Any) -> bool:
    """Whether `value` is an int or a float, and not a bool (JSON's and YAML's true is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


MAX_SEED = 2**64 - 1  # torch's generators take none larger
SEEDS = "a seed is a whole number from 0 to 2**64 - 1"  # what a bad seed's message begins with


def seed_problem(seed: int) -> str | None:
    """Why `seed` cannot seed a run (None where it can): a seed names a model (CONFIG-seedN: no minus sign)."""
    return None if 0 <= seed <= MAX_SEED else f"{SEEDS}, got {seed}"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a config's models and run folders (CONFIG-seedN in REPORTS/models and runs/): it is a
    file name there, so a folder in it would put them elsewhere. None where it can."""
    if not name or name.startswith(".") or any(sep in name for sep in "/\\"):  # "." and ".." start with a dot
        return f"{name!r} names the model's files (NAME-seedN): give a file name, without folders or a leading dot"
    return None


class _UniqueKeys(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error: PyYAML keeps the last one silently,
    so `epochs: 1` above `epochs: 2` would train 2 epochs with nothing said. Checked as each mapping is composed,
    before merge keys (`<<: *base`) copy keys in, which may then be overridden."""

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.composer.ComposerError(None, None, f"{key_node.value!r} is given twice: keep one",
                                                      key_node.start_mark)
                seen.add((key_node.tag, key_node.value))
        return node


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, but a key given twice in one mapping is a YAMLError, as is a value its explicit tag
    cannot make (`!!int x`, `!!bool x`: a ValueError, a KeyError, ... from inside PyYAML), for the caller to name
    as it names YAML's own."""
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a safe loader
    except (ValueError, KeyError, AttributeError, TypeError) as error:
        raise yaml.YAMLError(f"a value its tag cannot make ({type(error).__name__}: {error})") from None
    except RecursionError:  # lists or mappings nested thousands deep
        raise yaml.YAMLError("nested too deep to read: no setting takes more than a few levels") from None


def yaml_problem(error: yaml.YAMLError) -> tuple[str, str]:
    """(where, what) of a YAML error, each in one line (yaml's own spans several and names no file): ("line 3,
    column 2", "expected ',' or ']', but got ':' (while parsing ... from line 2, column 5)"), or ("", message)."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or not problem:
        return "", " ".join(str(error).split())
    start = getattr(error, "context_mark", None)
    context = getattr(error, "context", None)
    if context and start is not None and (start.line, start.column) != (mark.line, mark.column):
        problem += f" ({context} from line {start.line + 1}, column {start.column + 1})"
    return f"line {mark.line + 1}, column {mark.column + 1}", problem


def likely_meant(key: str, known: Iterable[str], synonyms: dict[str, str] | None = None) -> str | None:
    """The known key `key` most likely stands for: a synonym's, else the closest spelling, whatever the case (minivgg:
    MiniVGG); None if none is close."""
    spelled = {str(name).lower(): name for name in known}
    closest = difflib.get_close_matches(str(key).lower(), list(spelled), n=1)
    return (synonyms or {}).get(str(key).lower()) or (spelled[closest[0]] if closest else None)


def misspelt(keys: Iterable[str], known: Iterable[str]) -> str:
    """'; did you mean dropout for dropuot?' for the keys not `known` that resemble one that is; '' for none."""
    known = list(known)
    meant = [f"{guess} for {key}" for key in keys if key not in known and (guess := likely_meant(key, known))]
    return f"; did you mean {' and '.join(meant)}?" if meant else ""


def unknown_keys(where: str, unknown: list[str], known: Iterable[str], synonyms: dict[str, str]) -> ConfigError:
    """The error for keys a recipe lacks, each with the key it likely means ("unknown key lrr; did you mean lr?");
    the list of the keys only where one of them resembles none."""
    known = list(known)
    guesses = {key: likely_meant(key, known, synonyms) for key in unknown}
    if len(unknown) == 1 and guesses[unknown[0]]:
        return ConfigError(f"{where}unknown key {unknown[0]}; did you mean {guesses[unknown[0]]}?")
    named = ", ".join(f"{key} (did you mean {guess}?)" if guess else key for key, guess in guesses.items())
    keys = f"; the keys are {', '.join(known)}" if not all(guesses.values()) else ""
    return ConfigError(f"{where}unknown key{'s' * (len(unknown) > 1)} {named}{keys}")


_EXPONENT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")  # a number in scientific notation: 1e-3, .5e3


def convert(where: str, value: Any, kind: Any) -> Any:
    """`value` as the type `kind` (a dataclass field's annotation), or a ConfigError naming `where`."""
    kind = eval(kind, vars(typing)) if isinstance(kind, str) else kind  # annotations are strings here
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, type(int | None)) else (kind,)
    if value is None and type(None) in options:
        return None
    for option in (o for o in options if o is not type(None)):
        origin = typing.get_origin(option) or option
        if origin is float and isinstance(value, str) and "/" in value:  # fractions read best as 1/12
            try:
                return float(fractions.Fraction(value.replace(" ", "")))
            except (ValueError, ZeroDivisionError):  # 1/x, 1/0: no number; the error below names the key
                continue
        if origin is float and isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        if origin is float and is_number(value):
            return float(value)
        if origin is tuple and isinstance(value, (list, tuple)):
            inner = typing.get_args(option)[0]
            return tuple(convert(where, v, inner) for v in value)
        if origin in (int, bool, str, dict) and type(value) is origin:
            return value
    names = " or ".join("null" if o is type(None) else getattr(typing.get_origin(o) or o, "__name__", str(o))
                        for o in options)
    raise ConfigError(f"{where}: expected {names}, got {value!r} ({type(value).__name__})")
