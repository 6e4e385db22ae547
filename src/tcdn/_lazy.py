"""Lazy re-exports for package ``__init__`` files (PEP 562).

A package names the objects it offers and the module each lives in; a module is imported the first
time one of its names is used. Importing one room of tcdn therefore never imports its siblings
(``tcdn.features`` does not import the trainer), and ``tcdn --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which offers ``exports`` (name -> the
    module that defines it)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next lookup finds it directly
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
