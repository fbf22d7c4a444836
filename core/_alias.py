"""In a checkout the library's folder is `core/`; installed, the same package is `divweights`.

The studio (`divweights_ui`) and users' code import `divweights`. In a checkout nothing is installed, so
`core/__init__.py` registers `divweights` as another name of the very same modules: `divweights.x` is
`core.x` (one module object, one class of each kind, monkeypatching either name patches both). The
package's own imports are relative, so they work under either name; installed, none of this runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return types.ModuleType(spec.name)  # a placeholder: exec_module puts the real module in its place

    def exec_module(self, module) -> None:
        # importlib returns whatever sys.modules holds under the name after exec_module: the real module,
        # whose own __spec__ and __name__ stay untouched
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, alias: str, target: str):
        self.alias, self.target = alias, target

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        real = self.target + fullname[len(self.alias):]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


def alias_package(alias: str, target: str) -> None:
    """Make `import alias[.sub]` give the modules of `target[.sub]` (first on sys.meta_path, so an
    installed copy of `alias` never mixes with the checkout's)."""
    if not any(isinstance(f, _AliasFinder) and f.alias == alias for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder(alias, target))
