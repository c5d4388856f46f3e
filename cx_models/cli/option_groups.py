"""Option groups: options that together build one settings object, put into a verb's signature.

A verb asks for a settings object by parameter name and :func:`settings_from` puts
that group's options into the verb's signature (so ``--help`` lists them) and
builds the object from them (the groups themselves are in
:mod:`cx_models.cli.options`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["OptionGroup", "settings_from"]


@dataclass(frozen=True)
class OptionGroup:
    """Options that together build one settings object."""

    options: dict[str, tuple[Any, Any]]  # parameter name -> (Annotated type, default)
    build: Callable[[dict], Any]

    def parameters(self) -> list[inspect.Parameter]:
        """Return the options as keyword-only parameters for a verb's signature."""
        return [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=value)
            for name, (kind, value) in self.options.items()
        ]


def settings_from(**groups: OptionGroup):
    """Give a verb settings objects built from option groups (see the module docstring)."""

    def decorate(func):
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name not in groups]
        added = [p for group in groups.values() for p in group.parameters()]
        names = {name: list(group.options) for name, group in groups.items()}

        @functools.wraps(func)
        def verb(**kwargs):
            for name, group in groups.items():
                kwargs[name] = group.build({k: kwargs.pop(k) for k in names[name]})
            return func(**kwargs)

        verb.__signature__ = signature.replace(parameters=[*own, *added])
        verb.__annotations__ = {}
        return verb

    return decorate
