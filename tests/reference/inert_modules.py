"""Inert stand-ins for packages a fixture generator imports but never runs
(Axolotl and transformers import torch at module level; tokenization and the
lr_lambda functions never call it). install(roots) puts a finder first on
sys.meta_path that answers every module under those roots with a MagicMock."""
import importlib.abc
import importlib.machinery
import sys
from unittest import mock


class _Inert(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots):
        self.roots = set(roots)

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = mock.MagicMock(name=spec.name)
        m.__path__, m.__spec__, m.__name__, m.__version__ = [], spec, spec.name, "2.9.0"
        return m

    def exec_module(self, module):
        pass


def install(roots):
    sys.meta_path.insert(0, _Inert(roots))
