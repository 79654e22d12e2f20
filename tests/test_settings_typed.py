"""Settings: one typed, frozen attribute per declared option."""

from __future__ import annotations

import types
import typing

import pytest

import pytest_iobench.plugin.options  # noqa: F401  (declares every option)
from pytest_iobench.settings import REGISTRY, Settings, attribute_name, resolve


def test_every_option_is_a_typed_attribute():
    hints = typing.get_type_hints(Settings)
    missing = [name for name in REGISTRY if attribute_name(name) not in hints]
    assert missing == [], f"declare a type for these options in Settings: {missing}"
    unknown = [name for name in hints if name not in ("values", "sources")
               and name.replace("_", "-") not in REGISTRY]
    assert unknown == [], f"Settings types options nobody declares: {unknown}"


def test_default_values_have_their_declared_types():
    settings = resolve({}, {}, {})
    hints = typing.get_type_hints(Settings)
    for name in REGISTRY:
        value, hint = getattr(settings, attribute_name(name)), hints[attribute_name(name)]
        if hint is typing.Any or (typing.get_origin(hint) is list and typing.get_args(hint) == (typing.Any,)):
            continue
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        allowed = typing.get_args(hint) if union else (hint,)
        assert any(isinstance(value, typing.get_origin(t) or t) for t in allowed), (name, value, hint)


def test_settings_are_frozen_and_keep_their_sources():
    settings = resolve({"generate-size": "64MiB"}, {}, {})
    assert settings.generate_size == 64 << 20 and settings.values["generate-size"] == 64 << 20
    assert settings.sources["generate-size"] == "command line" and settings.sources["repeat"] == "default"
    with pytest.raises(AttributeError, match="frozen"):
        settings.generate_size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.values["generate-size"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        settings.no_such_option  # noqa: B018
