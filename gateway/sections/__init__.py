"""Sections of the web UI, one blueprint (``bp``) per module, found by ``discover``."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover(package: str) -> list[ModuleType]:
    """Import every module of ``package``, so a new section needs no registration."""
    pkg = importlib.import_module(package)
    return [importlib.import_module(f"{package}.{info.name}")
            for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_")]
