"""spyne 2.14 (its latest release) on Python 3.12 and later: import this before spyne.

spyne bundles six 1.14 as ``spyne.util.six``, whose importer of ``six.moves`` has only the
``find_module`` that Python 3.12 no longer calls: ``spyne.util.six.moves`` cannot be found
and spyne does not import. six 1.16 fixed it by giving the importer ``find_spec``,
``create_module`` and ``exec_module``; here spyne's own six is loaded first and its importer
gets those three, as six 1.16 has them. The real six cannot stand in for the bundled one:
spyne added to it (``get_function_name``, ``moves.urllib.parse.splittype``...). spyne's other
casualty, the ``cgi`` module that Python 3.13 removed, comes back with the ``legacy-cgi``
dependency.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

NAME = "spyne.util.six"


def _find_spec(self: Any, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
    if fullname in self.known_modules:
        return importlib.util.spec_from_loader(fullname, self)
    return None


def _create_module(self: Any, spec: ModuleSpec) -> ModuleType:
    return self.load_module(spec.name)


def _exec_module(self: Any, module: ModuleType) -> None:
    """``create_module`` made the module whole."""


def load_six() -> ModuleType:
    """spyne's six, in ``sys.modules`` before spyne imports it, with an importer Python 3.12 uses."""
    six = sys.modules.get(NAME)  # there already when spyne was imported on a Python it runs on
    if six is None:
        six = _load_bundled()
    importer = type(six._importer)
    if not hasattr(importer, "find_spec"):
        importer.find_spec = _find_spec
        importer.create_module = _create_module
        importer.exec_module = _exec_module
    return six


def _load_bundled() -> ModuleType:
    spyne = importlib.util.find_spec("spyne")  # finds the package without running it
    if spyne is None or not spyne.submodule_search_locations:  # pragma: no cover - a dependency of acs
        raise ImportError("spyne is not installed: pip install spyne")
    origin = Path(next(iter(spyne.submodule_search_locations)), "util", "six.py")
    spec = importlib.util.spec_from_file_location(NAME, origin)
    assert spec is not None and spec.loader is not None  # a .py file
    six = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = six
    try:
        spec.loader.exec_module(six)
    except BaseException:
        del sys.modules[NAME]
        raise
    return six


load_six()
