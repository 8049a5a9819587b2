"""Load and validate the study's configuration.

A config gives only what differs from the embedded default
(``config.yaml`` at the top of the repository, :func:`with_defaults`): its
mappings are merged into the default's key by key, except ``studies``, which
replaces the default's studies whole (a study left out is not run). Values
given as text where the schema wants a number, list or mapping (Snakemake's
``--config seeds=[0,1]`` or ``--config 'training={batch_size: 8}'``, which
Snakemake passes as text) are read as YAML.

The schema (``schemas/config.schema.yaml``) fixes the shape and types of
every key; :func:`validate` adds the checks a schema cannot express (problem
names and the data they need, the targets of ``data.caps``,
:mod:`afterkernel.data.planning`; the user
modules of ``modules``; architecture names, types and builder arguments;
image sizes the networks cannot take; learning rates for every data set a
study uses). Every failure is a :class:`ConfigError` whose message names the
offending key and what is allowed, raised before any job runs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Sequence

import yaml

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "config.yaml"
#: sections a config replaces whole instead of merging into the default's
REPLACED = ("studies",)


class ConfigError(ValueError):
    """An invalid configuration; the message names the key and the allowed values."""


@functools.cache
def schema() -> dict:
    """The configuration's JSON schema."""
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


@functools.cache
def _default_text() -> str:
    return DEFAULT_PATH.read_text()


def default_config() -> dict:
    """The embedded default (``config.yaml``), unvalidated."""
    return yaml.safe_load(_default_text())


def _merge(base: dict, update: dict, top: bool = True) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not (top and key in REPLACED):
            out[key] = _merge(out[key], value, top=False)
        else:
            out[key] = value
    return out


def _typed_text(value: Any, node: dict) -> Any:
    """Text read as YAML where the schema wants something else than text."""
    if "$ref" in node:  # "#/$defs/NAME", the only references the schema uses
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    types = node.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if isinstance(value, str) and types and "string" not in types and "enum" not in node:
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, list):
        items = node.get("items")
        prefix = node.get("prefixItems", [])
        return [_typed_text(v, prefix[i] if i < len(prefix) else items if isinstance(items, dict) else {})
                for i, v in enumerate(value)]
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {k: _typed_text(v, props.get(k, extra if isinstance(extra, dict) else {}))
                for k, v in value.items()}
    return value


def with_defaults(config: dict | None, configfiles: Sequence[str | os.PathLike] = ()) -> dict:
    """``config`` (what a user gave) merged into the embedded default. The
    default's ``data.caps`` name the default's pairs: a config with problems
    or studies of its own starts without them. A config that does not set
    ``name`` is named after the last of its ``configfiles``
    (``configs/paper.yaml``: ``paper``), so that its results never overwrite
    another's (:func:`afterkernel.plan.output_roots`); ``name: null`` writes
    to ``results/`` itself, as the embedded default does."""
    config = dict(config or {})
    base = default_config()
    if ("problems" in config or "studies" in config) and "caps" not in (config.get("data") or {}):
        base["data"]["caps"] = []
    merged = _merge(base, config)
    if "name" not in config and configfiles:
        merged["name"] = Path(configfiles[-1]).stem
    return _typed_text(merged, schema())


def load(path: str | Path) -> dict:
    """Read a YAML config file, complete it with the defaults and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    with open(path) as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values (a YAML dictionary)")
    return validate(with_defaults(config, [path]))


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error) -> str:
    """One line for a jsonschema error: the key, what is wrong, what is allowed."""
    key = _key(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return (f"config key '{key}': unknown key(s) {', '.join(map(repr, extra))}; "
                f"allowed keys: {', '.join(allowed)}")
    if v == "enum":
        return (f"config key '{key}': {error.instance!r} is not allowed; "
                f"allowed values: {', '.join(map(str, error.validator_value))}")
    if v == "required":
        return f"config key '{key}': {error.message}"
    if v == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"config key '{key}': {error.instance!r} has the wrong type; expected {expected}"
    if v in ("minimum", "exclusiveMinimum"):
        bound = ">" if v == "exclusiveMinimum" else ">="
        return f"config key '{key}': {error.instance!r} is not allowed; it must be {bound} {error.validator_value}"
    if v == "minItems" and error.validator_value == 1:
        return f"config key '{key}': must not be empty"
    if v in ("oneOf", "anyOf", "dependentRequired") and error.schema.get("description"):
        # a rule between keys (data.caps entries): the rule's own words
        return f"config key '{key}': {error.schema['description'].strip()}; got {error.instance!r}"
    description = error.schema.get("description")
    return f"config key '{key}': {error.message}" + (f" ({description.strip()})" if description else "")


def validate(config: Any, check_values: bool = True) -> dict:
    """Validate ``config`` (a mapping) and return a copy of it with the
    keys of every mapping sorted, so that reordering keys in a config file
    never changes a job's ``params`` (and never re-runs it). ``check_values``:
    read a user's data sets whole (:func:`afterkernel.data.planning.data_errors`;
    the workflow's jobs, which re-parse it, skip this).

    Raises :class:`ConfigError` listing every problem found.
    """
    import jsonschema

    if not isinstance(config, dict):
        raise ConfigError("the config must be a mapping of keys to values (a YAML dictionary)")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    messages = [_describe(e) for e in errors]
    if not messages:
        messages = _module_errors(config) or _semantic_errors(config, check_values)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(dict.fromkeys(messages)))
    return _sorted_keys(_with_modules(config))


def _module_errors(config: dict) -> list[str]:
    """Import the user modules (``modules``, ``architectures.NAME.module``) that register networks."""
    from afterkernel.models import import_modules

    named = [(f"modules[{i}]", m) for i, m in enumerate(config.get("modules", []))]
    named += [(f"architectures.{a}.module", s["module"]) for a, s in config["architectures"].items()
              if s.get("module")]
    out = []
    for key, module in named:
        try:
            import_modules([module])
        except Exception as e:  # noqa: BLE001 - a user module's own failure, named with its key
            out.append(f"config key '{key}': {e}")
    return out


def _with_modules(config: dict) -> dict:
    """Each architecture whose builder a user module registered carries that
    module (key ``module``), so the jobs building it import it."""
    from afterkernel.models import builder_module

    archs = {}
    for name, spec in config["architectures"].items():
        module = builder_module(spec["type"])
        archs[name] = {**spec, "module": module} if module and not spec.get("module") else spec
    return {**config, "architectures": archs}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _network_errors(config: dict) -> list[str]:
    """Architecture types, builder arguments, and the image sizes of the
    problems each network is paired with."""
    from afterkernel.data.planning import input_shapes
    from afterkernel.models import ARCHITECTURES, argument_errors, input_errors

    out, known = [], sorted(ARCHITECTURES)
    for name, spec in config["architectures"].items():
        if spec["type"] not in ARCHITECTURES:
            out.append(f"config key 'architectures.{name}.type': {spec['type']!r} is not a registered "
                       f"architecture; allowed values: {', '.join(known)} (or a module's, key 'modules')")
        else:
            out += argument_errors(name, spec)
    if out:
        return out
    shapes, studies = input_shapes(config), config["studies"]
    pairs = [(f"studies.{s}.pairs[{i}]", p, a) for s in ("epochs", "learning_rate")
             for i, (p, a) in enumerate(studies.get(s, {}).get("pairs", []))]
    width = studies.get("width", {})
    pairs += [(f"studies.width.pairs[{i}]", p, a) for i, (p, f) in enumerate(width.get("pairs", []))
              for a in width.get("families", {}).get(f, [])]
    for key, problem, arch in pairs:
        spec = config["architectures"].get(arch)
        why = input_errors(spec, shapes[problem]) if spec and problem in shapes else None
        if why:
            out.append(f"config key '{key}': network {arch!r} cannot take the {problem} images "
                       f"{'x'.join(map(str, shapes[problem]))}: {why}")
    return out


def _semantic_errors(config: dict, check_values: bool = True) -> list[str]:
    from afterkernel.data.planning import data_errors
    from afterkernel.vocabulary import dataset_of

    out = data_errors(config, check_values)
    if not out:
        out = _network_errors(config)
    problems, archs = set(config["problems"]), set(config["architectures"])
    studies = config["studies"]
    if not studies:
        out.append("config key 'studies': must name at least one study (epochs, learning_rate, width)")
    for study in ("epochs", "learning_rate"):
        for i, (problem, arch) in enumerate(studies.get(study, {}).get("pairs", [])):
            key = f"studies.{study}.pairs[{i}]"
            if problem not in problems:
                out.append(f"config key '{key}': problem {problem!r} is not listed under 'problems'; "
                           f"allowed values: {', '.join(config['problems'])}")
            if arch not in archs:
                out.append(f"config key '{key}': architecture {arch!r} is not defined under "
                           f"'architectures'; allowed values: {', '.join(config['architectures'])}")
    for by in ("epochs_by_architecture", "augmentation_by_architecture"):
        for arch in studies.get("epochs", {}).get(by, {}):
            if arch not in archs:
                out.append(f"config key 'studies.epochs.{by}.{arch}': architecture {arch!r} is not defined "
                           f"under 'architectures'; allowed values: {', '.join(config['architectures'])}")
    for key in studies.get("epochs", {}).get("epochs_by_pair", {}):
        problem, _, arch = key.partition("/")
        if problem not in problems or arch not in archs:
            out.append(f"config key 'studies.epochs.epochs_by_pair.{key}': not a 'problem/architecture' of "
                       f"this config; allowed problems: {', '.join(config['problems'])}; allowed "
                       f"architectures: {', '.join(config['architectures'])}")
    if "learning_rate" in studies:
        rates = studies["learning_rate"]["learning_rates"]
        for i, (problem, _) in enumerate(studies["learning_rate"]["pairs"]):
            dataset = dataset_of(problem)
            if dataset not in rates:
                out.append(f"config key 'studies.learning_rate.learning_rates': no learning rates for "
                           f"data set {dataset!r} (used by pairs[{i}] {problem}); add a '{dataset}' list")
    if "width" in studies:
        width = studies["width"]
        for i, (problem, family) in enumerate(width["pairs"]):
            if problem not in problems:
                out.append(f"config key 'studies.width.pairs[{i}]': problem {problem!r} is not listed "
                           f"under 'problems'; allowed values: {', '.join(config['problems'])}")
            if family not in width["families"]:
                out.append(f"config key 'studies.width.pairs[{i}]': family {family!r} is not defined "
                           f"under 'studies.width.families'; allowed values: {', '.join(width['families'])}")
        for family, names in width["families"].items():
            for j, arch in enumerate(names):
                if arch not in archs:
                    out.append(f"config key 'studies.width.families.{family}[{j}]': architecture "
                               f"{arch!r} is not defined under 'architectures'; allowed values: "
                               f"{', '.join(config['architectures'])}")
    return out


def results_root(snakemake_args: Sequence[str]) -> str:
    """The results folder of the study that these Snakemake arguments run
    (``--configfile``/``--configfiles`` files, a ``--config name=...``): the
    same name :func:`with_defaults` gives it (``./run.sh`` writes the report
    there)."""
    from afterkernel.plan import output_roots

    files, overrides, current = [], {}, None
    for arg in snakemake_args:
        option, _, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option.startswith("-"):
            current = option if option in ("--configfile", "--configfiles", "--config") else None
            if not value:
                continue
            arg = value
        if current in ("--configfile", "--configfiles"):
            files.append(arg)
        elif current == "--config" and arg.startswith("name="):  # a --config key replaces the files' one
            overrides["name"] = yaml.safe_load(arg.partition("=")[2])
    merged: dict = {}
    for path in files:
        with open(path) as f:
            merged.update(yaml.safe_load(f) or {})
    merged.update(overrides)
    return output_roots(with_defaults({k: merged[k] for k in ("name",) if k in merged}, files))[0]


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["results-root"]:
        sys.exit("usage: python -m afterkernel.config results-root [SNAKEMAKE ARGUMENTS...]")
    print(results_root(sys.argv[2:]))
