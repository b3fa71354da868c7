"""The kinds of models a model file may hold, by name.

A model class registers itself with ``@register("SNAP")``; `mlpot.modelfile` looks the
``"kind"`` of a file up here. This module imports nothing of mlpot, so that the model
modules can import `mlpot.modelfile` and `mlpot.modelfile` can import this without a cycle.
"""

from __future__ import annotations

__all__ = ["kinds", "model_class", "register"]

_KINDS: dict[str, type] = {}


def register(kind: str):
    """Class decorator: files of ``kind`` are read by ``cls.from_dict``; sets ``cls.kind``."""

    def decorate(cls):
        if _KINDS.get(kind, cls) is not cls:
            raise ValueError(f"model kind {kind!r} is registered twice ({_KINDS[kind].__name__}, {cls.__name__})")
        cls.kind = kind
        _KINDS[kind] = cls
        return cls

    return decorate


def kinds() -> tuple[str, ...]:
    """The registered kinds, sorted."""
    return tuple(sorted(_KINDS))


def model_class(kind: str) -> type | None:
    """The class registered for ``kind``, None if there is none."""
    return _KINDS.get(kind)
