"""DLIO-compatible workload configuration: load, override, validate, before anything runs.

    config = load_workload("unet3d-small", overrides=["dataset.num_files_train=8"])
    config.reader.batch_size, config.dataset.num_files_train, config.train.computation_time

A workload file is DLIO's YAML, loaded unchanged (a Hydra ``workload:`` wrapper is unwrapped).
Overrides are ``section.key=value`` (DLIO's ``++workload.section.key=value`` is accepted too);
values are YAML. Every problem is found before anything runs and reported together:
an unknown key names the nearest valid key, a bad value names the key and what is valid.
Keys we accept without emulating them are listed once in ``config.not_emulated``; names
read under another name (``model.model_size``) are said in ``config.notes``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..storage.errors import register_secret
from .compute import TimeDistribution
from .schema import PARQUET_READER_OPTIONS, SCHEMA, SECTION_ALIASES, Alias, Invalid, Key, Section

if TYPE_CHECKING:  # the data layer's spec is imported when a dataset section is validated
    from ..data.spec import DatasetSpec

#: the named workloads shipped inside the package (pytest_iobench/workloads/<name>.yaml), found
#: the same way in a checkout and in an installed wheel
PACKAGE_WORKLOADS = Path(str(files("pytest_iobench") / "workloads"))
DATASET_SECTION = "dataset"


class WorkloadError(ValueError):
    """A workload cannot be used; the message lists every problem, one per line."""


class Node(Mapping[str, Any]):
    """Read-only attribute access over one section of the effective configuration."""

    def __init__(self, values: Mapping[str, Any], path: str = ""):
        self._values = dict(values)
        self._path = path

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"workload has no key {self.__dict__['_path']}{name}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Node({self._values!r})"

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self._values.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Node):
        return value.to_dict()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class WorkloadConfig:
    """The effective workload: every section with DLIO's defaults filled in."""

    def __init__(self, name: str, source: str, sections: dict[str, Any], given: dict[str, Any],
                 not_emulated: dict[str, str], notes: list[str], overrides: list[str], raw: dict[str, Any],
                 spelled: dict[str, str] | None = None):
        self.name = name
        #: dotted key -> the file's own text of a value YAML read as another type (yes -> True)
        self.spelled = dict(spelled or {})
        #: the file's content before overrides
        self.raw = raw
        self.source = source
        self._sections = sections
        #: what the file and overrides set (after unwrapping), for the record
        self.given = given
        #: dotted key -> why it is accepted but not emulated (only keys the workload sets)
        self.not_emulated = not_emulated
        #: how keys were read, said once per run (aliases, DLIO quirks)
        self.notes = notes
        self.overrides = list(overrides)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"workload has no section {name!r}")

    @property
    def framework(self) -> str:
        framework: str = self._sections["framework"]
        return framework

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(value) for name, value in self._sections.items()}

    def describe_not_emulated(self) -> str:
        """One line naming every accepted-but-not-emulated key the workload sets."""
        if not self.not_emulated:
            return ""
        return "accepted, not emulated: " + "; ".join(f"{k} ({why})" for k, why in self.not_emulated.items())

    def with_overrides(self, overrides: Sequence[str]) -> WorkloadConfig:
        """The same workload with more overrides applied (validated again)."""
        return build_config(self.raw, self.name, self.source, self.overrides + list(overrides), self.spelled)

    def with_defaults(self, defaults: Sequence[str]) -> WorkloadConfig:
        """The same workload with ``defaults`` applied before its own overrides (which win)."""
        return build_config(self.raw, self.name, self.source, list(defaults) + self.overrides, self.spelled)


# -- finding and reading files ------------------------------------------------------------------
def workload_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    if PACKAGE_WORKLOADS not in dirs:
        dirs.append(PACKAGE_WORKLOADS)
    return [d for d in dirs if d.is_dir()]


def available_workloads(search: Iterable[str | os.PathLike[str]] = ()) -> list[str]:
    names: set[str] = set()
    for d in workload_dirs(search):
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def resolve_workload(name_or_path: str, search: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The file for a workload name (a shipped workload, or one in a search folder) or path."""
    search = list(search)
    candidate = Path(name_or_path).expanduser()
    looks_like_path = os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if candidate.is_file():
        return candidate
    if looks_like_path:
        raise WorkloadError(f"workload file {name_or_path} does not exist")
    for d in workload_dirs(search):
        for ext in (".yaml", ".yml"):
            path = d / f"{name_or_path}{ext}"
            if path.is_file():
                return path
    names = available_workloads(search)
    near = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise WorkloadError(f"unknown workload {name_or_path!r}{hint} (known: {', '.join(names) or 'none'}; "
                        "or give the path of a DLIO workload YAML file)")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot be read: {exc.strerror}") from None
    if not data:  # an empty file would run on defaults alone, as if it were a workload
        raise WorkloadError(f"{path}: the workload file is empty; a workload file is a mapping of sections "
                            "(model, dataset, reader, ...), such as the ones in fixtures/workloads/")
    if not isinstance(data, dict):
        raise WorkloadError(f"{path}: a workload file is a mapping of sections (model, dataset, reader, ...), "
                            f"not a {type(data).__name__}")
    return unwrap(data)


def spelled_values(path: Path) -> dict[str, str]:
    """Dotted key -> the file's text, for each value YAML reads as a boolean though the file
    did not say true or false (``file_shuffle: yes`` is True): a message then quotes the file."""
    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    out: dict[str, str] = {}

    def walk(node: yaml.Node | None, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            dotted = f"{prefix}{key.value}"
            if isinstance(value, yaml.MappingNode):
                walk(value, dotted + ".")
            elif (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":bool")
                  and value.value.lower() not in ("true", "false")):
                out[dotted] = value.value

    walk(root, "")
    if out and all(k.startswith("workload.") for k in out):
        out = {k[len("workload."):]: v for k, v in out.items()}
    for alias, target in SECTION_ALIASES.items():
        out = {(target + k[len(alias):] if k.startswith(alias + ".") else k): v for k, v in out.items()}
    return out


def unwrap(data: dict[str, Any]) -> dict[str, Any]:
    """DLIO's files sit under Hydra's ``workload`` package; some copies spell it out."""
    if set(data) == {"workload"} and isinstance(data["workload"], dict):
        inner: dict[str, Any] = data["workload"]
        return inner
    return data


def load_workload(name_or_path: str, overrides: Sequence[str] = (),
                  search: Iterable[str | os.PathLike[str]] = ()) -> WorkloadConfig:
    """Load, override and validate a workload; WorkloadError lists every problem."""
    path = resolve_workload(name_or_path, search)
    return build_config(read_yaml(path), path.stem, str(path), list(overrides), spelled_values(path))


def load_mapping(data: Mapping[str, Any], name: str = "workload", overrides: Sequence[str] = ()) -> WorkloadConfig:
    """Build a workload from an in-memory mapping (tests, generated workloads)."""
    return build_config(unwrap(dict(data)), name, f"<{name}>", list(overrides))


# -- credentials ------------------------------------------------------------------------------
#: a key whose value is a credential (storage.storage_options.secret_access_key, access_key_id,
#: a session token, a password, ...)
CREDENTIAL_KEY = re.compile(r"(?i)(secret|passw|token|credential|access_key|key_id|api_key|private_key|auth)")
#: the user and password of a URL (http://user:pass@host)
_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://([^/@\s]+)@", re.I)
MASK = "***"


def credentials(data: Any, path: str = "") -> dict[str, str]:
    """Dotted key -> value of every credential in a workload mapping: the values of
    credential-like keys (CREDENTIAL_KEY) at any depth, and the user:password of URLs."""
    out: dict[str, str] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            dotted = f"{path}{key}"
            if CREDENTIAL_KEY.search(str(key)) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[dotted] = str(value)
            else:
                out.update(credentials(value, dotted + "."))
    elif isinstance(data, (list, tuple)):
        for n, value in enumerate(data):
            out.update(credentials(value, f"{path}{n}."))
    elif isinstance(data, str):
        match = _URL_USERINFO.match(data)
        if match:
            out[path.rstrip(".")] = match.group(1)
    return out


def register_credentials(data: Any) -> None:
    """Make ``redact`` (the secrets mechanism every document, report, DLIO file and terminal
    line goes through) know the workload's credentials, as the settings' secrets are known:
    each value, and for a user:password the password alone too."""
    for value in credentials(data).values():
        register_secret(value)
        if ":" in value:
            register_secret(value.split(":", 1)[1])


def register_override_credentials(text: str) -> None:
    """``register_credentials`` of what an override (``section.key=value``) sets."""
    try:
        register_credentials(_nested(*parse_override(text)))
    except WorkloadError:
        pass  # said where the override is applied


def masked(data: Any) -> Any:
    """A copy of a workload mapping with its credentials replaced by ``***`` (what is handed on:
    the job given to the ranks; the storage's credentials come from the environment)."""
    if isinstance(data, Mapping):
        return {k: MASK if CREDENTIAL_KEY.search(str(k)) and isinstance(v, (str, int, float))
                and not isinstance(v, bool) else masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v) for v in data]
    if isinstance(data, str):
        match = _URL_USERINFO.match(data)
        if match:
            return data[:match.start(1)] + MASK + data[match.end(1):]
    return data


def masked_override(text: str) -> str:
    """An override with its value masked when it sets a credential (``masked``)."""
    key, sep, value = text.partition("=")
    if sep and CREDENTIAL_KEY.search(key.rsplit(".", 1)[-1]):
        return f"{key}={MASK}"
    return key + sep + (masked(value) if sep else "")


# -- overrides ----------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[list[str], Any]:
    """``reader.batch_size=8`` -> (["reader", "batch_size"], 8). Values are YAML."""
    if "=" not in text:
        raise WorkloadError(f"override {text!r}: give section.key=value, such as dataset.num_files_train=8")
    key, _, raw = text.partition("=")
    key = key.strip().lstrip("+")
    if key.startswith("workload."):
        key = key[len("workload."):]
    parts = [p for p in key.split(".")]
    if not key or any(not p for p in parts):
        raise WorkloadError(f"override {text!r}: the key must be dotted names, such as reader.batch_size")
    parts[0] = SECTION_ALIASES.get(parts[0], parts[0])  # data_reader.batch_size is reader.batch_size
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each override set (deep copy along the paths touched)."""
    result: dict[str, Any] = _copy(data)  # a dict in, a dict out
    for text in overrides:
        parts, value = parse_override(text)
        if len(parts) == 1 and parts[0] in ("framework",):
            result[parts[0]] = value
            continue
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str) and i == 0 and part == "model":
                child = node[part] = {"name": child}
            elif not isinstance(child, dict):
                raise WorkloadError(f"override {text!r}: {'.'.join(parts[:i + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _nested(parts: list[str], value: Any) -> dict[str, Any]:
    """{"a": {"b": value}} for ["a", "b"]."""
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- validation ---------------------------------------------------------------------------------
class _Collector:
    def __init__(self, source: str, spelled: Mapping[str, str] | None = None):
        self.source = source
        self.errors: list[str] = []
        self.not_emulated: dict[str, str] = {}
        self.notes: list[str] = []
        #: dotted key -> the text the file or override gave, where YAML read it as another type
        self.spelled = dict(spelled or {})

    def shown(self, dotted: str, value: Any) -> str:
        """A value as the user wrote it: 'yes' (read as True), else its repr."""
        text = self.spelled.get(dotted)
        return f"{text!r} (read as {value!r})" if text is not None else repr(value)

    def error(self, message: str) -> None:
        self.errors.append(message)


def _all_leaf_paths(section: Section, prefix: str = "") -> list[str]:
    paths = []
    for name, spec in section.keys.items():
        if isinstance(spec, Section):
            paths.extend(_all_leaf_paths(spec, f"{prefix}{name}."))
        elif isinstance(spec, Key):
            paths.append(prefix + name)
    return paths


def _dataset_keys() -> list[str]:
    """The dataset section's keys, as the data layer declares them."""
    return [f"dataset.{k}" for k in _dataset_spec_class().known_keys()]


def _suggest(path: str, valid_here: Sequence[str]) -> str:
    """'; did you mean reader.batch_size?' from the keys of the same section, else anywhere."""
    leaf = path.rsplit(".", 1)[-1]
    prefix = path[: -len(leaf)]
    near = difflib.get_close_matches(leaf, list(valid_here), n=1, cutoff=0.6)
    if near:
        return f"; did you mean {prefix}{near[0]}?"
    everywhere = _all_leaf_paths(SCHEMA) + _dataset_keys()
    by_leaf = {p.rsplit(".", 1)[-1]: p for p in everywhere}
    near = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    if near:
        return f"; did you mean {by_leaf[near[0]]}?"
    return ""


def _validate_section(section: Section, given: Mapping[str, Any], path: str, out: _Collector,
                      aliased: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in section.keys.items():
        if isinstance(spec, Section):
            sub = given.get(name, {})
            if sub is None:
                sub = {}
            if not isinstance(sub, Mapping):
                out.error(f"{path}{name}: a section (a mapping of keys), not {sub!r}; "
                          f"valid keys: {', '.join(spec.keys)}")
                sub = {}
            values[name] = Node(_validate_section(spec, sub, f"{path}{name}.", out, aliased), f"{path}{name}.")
            if name in given and spec.emulated is not True:
                out.not_emulated[f"{path}{name}"] = str(spec.emulated)
        elif isinstance(spec, Key):
            values[name] = _check_key(spec, given, name, path, out)
    # at the top level, dataset (validated apart) and data_reader (read as reader) are valid too
    valid = list(section.keys) + ([DATASET_SECTION, *SECTION_ALIASES] if not path else [])
    for name, value in given.items():
        declared = section.keys.get(name)
        if declared is None:
            out.error(f"{path}{name}: unknown key{_suggest(path + str(name), valid)} "
                      f"(valid in {path.rstrip('.') or 'the workload'}: {', '.join(valid)})")
        elif isinstance(declared, Alias):
            aliased[declared.target] = (f"{path}{name}", value)
            out.notes.append(declared.note)
    return values


def _check_key(spec: Key, given: Mapping[str, Any], name: str, path: str, out: _Collector) -> Any:
    if name not in given:
        return spec.default
    value = given[name]
    try:
        value = spec.check(value)
    except Invalid as exc:
        out.error(f"{path}{name}: {out.shown(path + name, given[name])} is not valid; give {exc}")
        return spec.default
    if spec.emulated is not True:
        out.not_emulated[f"{path}{name}"] = str(spec.emulated)
    return value


def _set_path(sections: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = sections
    for part in parts[:-1]:
        node = node[part]._values if isinstance(node[part], Node) else node[part]
    node[parts[-1]] = value


def _get_path(sections: dict[str, Any], dotted: str) -> Any:
    node: Any = sections
    for part in dotted.split("."):
        node = node[part]
    return node


def _dataset_spec_class() -> type[DatasetSpec]:
    from ..data.spec import DatasetSpec

    return DatasetSpec


def _validate_dataset(given: Any, out: _Collector) -> Any:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        out.error(f"dataset: a section (a mapping of keys), not {given!r}")
        given = {}
    spec_cls = _dataset_spec_class()
    try:
        spec = spec_cls.from_mapping(dict(given), where="dataset")
    except ValueError as exc:
        for line in str(exc).splitlines():
            out.error(line if line.startswith("dataset") else f"dataset: {line}")
        return None
    for note in getattr(spec, "notes", []) or []:
        out.notes.append(note)
    for key, why in (getattr(spec, "not_emulated", {}) or {}).items():
        out.not_emulated[f"dataset.{key}"] = why
    return spec


def build_config(data: Mapping[str, Any], name: str, source: str, overrides: list[str],
                 spelled: Mapping[str, str] | None = None) -> WorkloadConfig:
    """Validate a workload; ``spelled``: the file's text of values YAML read as another type
    (spelled_values), quoted in messages."""
    spelled = dict(spelled or {})
    for text in overrides:
        try:
            parts, value = parse_override(text)
        except WorkloadError:
            continue  # said below
        raw_value = text.partition("=")[2].strip()
        if isinstance(value, bool) and raw_value.lower() not in ("true", "false"):
            spelled[".".join(parts)] = raw_value
    out = _Collector(source, spelled)
    raw = _copy(dict(data))
    # before anything can echo them (an error message, a record, DLIO's files, the terminal)
    register_credentials(raw)
    for text in overrides:
        register_override_credentials(text)
    given = _copy(raw)
    if isinstance(given.get("model"), str):
        # Older DLIO files say `model: resnet50`; the name is all it carries.
        out.notes.append(f"model: {given['model']!r} is read as model.name")
        given["model"] = {"name": given["model"]}
    for alias, target in SECTION_ALIASES.items():
        if alias in given:
            if target in given:
                out.error(f"{alias} and {target} are the same section (DLIO reads {alias} first); give one")
            else:
                given[target] = given.pop(alias)
    try:
        effective = apply_overrides(given, overrides)
    except WorkloadError as exc:
        raise WorkloadError(f"{source}: {exc}") from None

    overridden = {".".join(parse_override(text)[0]) for text in overrides}
    aliased: dict[str, tuple[str, Any]] = {}
    dataset_given = effective.pop(DATASET_SECTION, None)
    sections = _validate_section(SCHEMA, effective, "", out, aliased)
    sections[DATASET_SECTION] = _validate_dataset(dataset_given, out)
    if dataset_given is not None:
        effective[DATASET_SECTION] = dataset_given

    # Aliases: the value goes to the key it stands for, checked by that key's rule.
    for target, (alias_path, value) in aliased.items():
        key = _key_at(target)
        target_given = _get_given(effective, target)
        if target_given is not _MISSING and target_given != value:
            # An override replaces the file's value whichever of the two names either uses.
            if target in overridden and alias_path not in overridden:
                continue
            if alias_path not in overridden or target in overridden:
                out.error(f"{alias_path}: {value!r} and {target}: {target_given!r} both set; give one")
                continue
        try:
            _set_path(sections, target, key.check(value))
        except Invalid as exc:
            out.error(f"{alias_path}: {out.shown(alias_path, value)} is not valid; give {exc}")

    _cross_checks(sections, out, effective)
    if out.errors:
        count = len(out.errors)
        head = f"workload {name} ({source}): {count} problem{'s' if count > 1 else ''}"
        raise WorkloadError(head + "\n  " + "\n  ".join(out.errors))
    return WorkloadConfig(name, source, sections, effective, out.not_emulated,
                          list(dict.fromkeys(out.notes)), overrides, raw, spelled)


_MISSING = object()


def _key_at(dotted: str) -> Key:
    """The schema's key at ``dotted`` (an alias's target, which the schema declares)."""
    spec: Key | Alias | Section = SCHEMA
    for part in dotted.split("."):
        if not isinstance(spec, Section):
            raise TypeError(f"schema: {dotted} is not under a section")
        spec = spec.keys[part]
    if not isinstance(spec, Key):
        raise TypeError(f"schema: {dotted} is not a key")
    return spec


def _get_given(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _given_keys(effective: Mapping[str, Any], section: str) -> list[str]:
    """The keys the workload sets in ``section`` (not aliases: those are said in the notes)."""
    given = effective.get(section)
    if not isinstance(given, Mapping):
        return []
    spec = SCHEMA.keys[section]
    if not isinstance(spec, Section):
        return []
    return [k for k in given if isinstance(spec.keys.get(k), (Key, Section))]


def _unused_in_this_run(sections: dict[str, Any], out: _Collector, effective: Mapping[str, Any]) -> None:
    """Keys the workload sets that this kind of run does not use, by name with the reason (as
    DLIO: its training loop checkpoints and evaluates only when the workflow says so, and reads
    checkpoints back and paces them in time only in checkpoint-only runs)."""
    wf = sections["workflow"]
    if wf.train and not wf.checkpoint:
        for key in _given_keys(effective, "checkpoint"):
            out.not_emulated.setdefault(f"checkpoint.{key}", "workflow.checkpoint is False: no checkpoint is written")
    elif wf.train and wf.checkpoint:
        given = _given_keys(effective, "checkpoint")
        for key in ("num_checkpoints_read", "time_between_checkpoints"):
            if key in given:
                out.not_emulated.setdefault(
                    f"checkpoint.{key}", "used by checkpoint-only runs (workflow.train False), as in DLIO; "
                    "a training run writes checkpoints on its epochs or steps and reads none back")
    if wf.train and not wf.evaluation:
        for key in _given_keys(effective, "evaluation"):
            out.not_emulated.setdefault(f"evaluation.{key}", "workflow.evaluation is False: no evaluation runs")
        if "batch_size_eval" in _given_keys(effective, "reader"):
            out.not_emulated.setdefault("reader.batch_size_eval", "workflow.evaluation is False: no evaluation runs")


def _storage_options(sections: dict[str, Any], out: _Collector) -> None:
    """storage.storage_options: ``columns`` projects parquet reads (the MLCommons fork's
    parquet readers read this key); every other option names its reason."""
    options = sections["storage"].storage_options or {}
    dataset = sections[DATASET_SECTION]
    for key in options:
        if key == "columns":
            continue
        why = PARQUET_READER_OPTIONS.get(key, "the storage under test comes from --iobench-storage / --iobench-root "
                                              "and its client's settings")
        out.not_emulated[f"storage.storage_options.{key}"] = why
    columns = options.get("columns")
    if columns is None or dataset is None:
        return
    if dataset.format != "parquet":
        out.not_emulated["storage.storage_options.columns"] = (
            f"applies to parquet only (the MLCommons fork's parquet readers); {dataset.format} samples are read whole")
        return
    names = [name for name, _, _ in dataset.parquet_columns(int(float(dataset.record_length_bytes)))]
    unknown = [c for c in columns if c not in names]
    if unknown:
        out.error(f"storage.storage_options.columns: {', '.join(map(repr, unknown))} "
                  f"{'is not a column' if len(unknown) == 1 else 'are not columns'} of the dataset; "
                  f"its columns (dataset.parquet.columns): {', '.join(names)}")


def _cross_checks(sections: dict[str, Any], out: _Collector, effective: Mapping[str, Any] | None = None) -> None:
    """Rules across keys, and the time distributions in full."""
    times = (
        (sections["train"], "train", "computation_time", sections["train"].computation_time_stdev),
        (sections["evaluation"], "evaluation", "eval_time", sections["evaluation"].eval_time_stdev),
        (sections["reader"], "reader", "preprocess_time", sections["reader"].preprocess_time_stdev),
    )
    for node, section, key, stdev in times:
        try:
            node._values[key] = TimeDistribution.parse(node[key], f"{section}.{key}: ", stdev,
                                                       stdev_key=f"{section}.{key}_stdev")
        except Invalid as exc:
            out.error(str(exc))
            node._values[key] = TimeDistribution()
    par = sections["model"].parallelism
    layers = sections["model"].num_layers
    if par.pipeline > 1 and par.zero_stage == 3:
        out.error(f"model.parallelism: zero_stage 3 shards the model across data-parallel ranks and cannot "
                  f"be combined with pipeline {par.pipeline}; use zero_stage 0-2 or pipeline 1")
    if layers > 0 and layers < par.pipeline:
        out.error(f"model.num_layers: {layers} layers cannot fill {par.pipeline} pipeline stages; "
                  f"give num_layers >= model.parallelism.pipeline")
    ckpt = sections["checkpoint"]
    if ckpt.num_checkpoints_write > 0 and ckpt.num_checkpoints_read > ckpt.num_checkpoints_write:
        out.error(f"checkpoint.num_checkpoints_read: {ckpt.num_checkpoints_read} is more than the "
                  f"{ckpt.num_checkpoints_write} checkpoints written (num_checkpoints_write); give at most that")
    dataset = sections[DATASET_SECTION]
    if sections["workflow"].evaluation and dataset is not None and dataset.num_files_eval == 0:
        out.error("workflow.evaluation: True needs evaluation files but dataset.num_files_eval is 0; "
                  "give dataset.num_files_eval > 0 or workflow.evaluation: False")
    if sections["workflow"].evaluation and sections["evaluation"].epochs_between_evals == 0:
        out.error("evaluation.epochs_between_evals: 0 is valid with workflow.evaluation False only (DLIO "
                  "divides by it when evaluating); give 1 or more")
    if sections["workflow"].train and not sections["workflow"].evaluation and dataset is not None \
            and dataset.num_files_eval:
        # a training run that does not evaluate reads no eval file: none is generated (valid/ is
        # made empty, as DLIO lists it); a generate-only run (train False) still writes them
        sections[DATASET_SECTION] = replace(dataset, num_files_eval=0, num_subfolders_eval=0)
        out.not_emulated.setdefault("dataset.num_files_eval", (
            f"workflow.evaluation is False: no evaluation runs, so its {dataset.num_files_eval} files are not "
            "generated (valid/ is made, empty, as DLIO lists it)"))
    reader = sections["reader"]
    if reader.prefetch_size == 0 and reader.read_threads > 0:
        out.notes.append(f"reader.prefetch_size: 0 is read as 1 batch per read thread ({reader.read_threads} "
                         f"read ahead): a read thread reads its next batch as soon as it has one slot free; "
                         f"reader.read_threads: 0 reads each batch only when the step asks for it")
    _storage_options(sections, out)
    if effective is not None:
        _unused_in_this_run(sections, out, effective)

