"""Name -> representation class. Registration is explicit (a decorator) and fails loudly on clashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .errors import ConfigError

if TYPE_CHECKING:
    from .representation import Representation

__all__ = ["get_representation_class", "list_representations", "register_representation"]

_representation_classes: dict[str, type[Representation]] = {}
T = TypeVar("T", bound="type[Representation]")


def register_representation(type_name: str) -> Callable[[T], T]:
    """Class decorator; stack it to register aliases. Returns the class unchanged."""

    def decorator(cls: T) -> T:
        if type_name in _representation_classes:
            raise ValueError(f"representation type '{type_name}' is registered twice "
                             f"({_representation_classes[type_name].__module__} and {cls.__module__})")
        _representation_classes[type_name] = cls
        if not cls.type_name:
            cls.type_name = type_name
        return cls

    return decorator


def get_representation_class(type_name: str) -> type[Representation]:
    from . import representations  # noqa: F401  (registers the built-in types)

    try:
        return _representation_classes[type_name]
    except KeyError:
        raise ConfigError(f"unknown representation type '{type_name}'; known types: "
                          f"{', '.join(sorted(_representation_classes))}") from None


def list_representations() -> list[str]:
    from . import representations  # noqa: F401

    return sorted(_representation_classes)
