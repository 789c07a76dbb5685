"""Name -> representation class. Registration is explicit (a decorator) and fails loudly on clashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .errors import ConfigError

if TYPE_CHECKING:
    from .representation import Representation

__all__ = ["DuplicateTypeError", "get_representation_class", "list_representations", "register_representation",
           "registered_types", "type_aliases"]

_representation_classes: dict[str, type[Representation]] = {}
T = TypeVar("T", bound="type[Representation]")


class DuplicateTypeError(ValueError):
    """A type name registered a second time (a plugin reusing a built-in's name, say)."""

    def __init__(self, type_name: str, existing: str, new: str):
        self.type_name, self.existing = type_name, existing
        super().__init__(f"representation type '{type_name}' is registered twice ({existing} and {new})")


def register_representation(type_name: str) -> Callable[[T], T]:
    """Class decorator; stack it to register aliases. Returns the class unchanged: the registration lives here
    only, and each node gets the name its config used from the graph builder (`Representation(type_name=...)`)."""

    def decorator(cls: T) -> T:
        if type_name in _representation_classes:
            raise DuplicateTypeError(type_name, _representation_classes[type_name].__module__, cls.__module__)
        _representation_classes[type_name] = cls
        return cls

    return decorator


def get_representation_class(type_name: str) -> type[Representation]:
    from . import representations  # noqa: F401  (registers the built-in types)

    try:
        return _representation_classes[type_name]
    except KeyError:
        raise ConfigError(f"unknown representation type '{type_name}' (a plugin's type needs --plugin FILE.py or "
                          f"`plugins:` in the config); known types: {', '.join(sorted(_representation_classes))}"
                          ) from None


def type_aliases(type_name: str) -> tuple[str, ...]:
    """Every name registered for the class `type_name` names, sorted (just `type_name` when it is unknown)."""
    from . import representations  # noqa: F401

    cls = _representation_classes.get(type_name)
    if cls is None:
        return (type_name,)
    return tuple(sorted(name for name, other in _representation_classes.items() if other is cls))


def list_representations() -> list[str]:
    from . import representations  # noqa: F401

    return sorted(_representation_classes)


def registered_types() -> dict[str, type[Representation]]:
    """The registry itself (name -> class), for the plugin loader: it undoes a plugin's registrations when the
    plugin fails half-way, so a broken file leaves nothing behind."""
    return _representation_classes
