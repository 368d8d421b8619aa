"""A user's own trainable: found by reference, imported and checked before Ray starts, shipped.

``trainable:`` in an experiment file names either a built-in trainable (``cifar_cnn``) or a
plain Ray Tune function trainable of the user's, by reference:

* ``models/train.py:fit``: a file, relative to the code folder (the experiment file's folder,
  or ``code:``); it is imported as the module its path spells (``models.train``), with the
  code folder on ``sys.path``, so its own imports of sibling files work;
* ``my_pkg.train:fit``: a module path, looked up in the code folder, then among the installed
  packages.

The function is called as Ray Tune calls any function trainable, ``fit(config)``, with the
experiment file's ``train:`` mapping as keyword arguments (through ``tune.with_parameters``), so
a function a user already runs under Ray Tune needs no change. Every module of the code folder
that the import loaded travels with the trainable by value (``cloudpickle``), so trial workers on
any node run it without the files; a submitted job ships the folder itself (``py_modules``) for
its driver.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["DEFAULT_EXCLUDES", "SHIPPED_PREFIX", "UserCodeError", "UserTrainable",
           "code_excludes", "code_folder", "is_reference", "user_trainable"]

SHIPPED_PREFIX = "shipped:"  # `code: shipped:NAME`: the folder a job received as py_modules NAME


class UserCodeError(ValueError):
    """A reference that cannot be used; its message is one line for the user."""


def is_reference(name: str) -> bool:
    """Whether ``trainable:`` names user code (``module:function`` or ``file.py:function``)."""
    return ":" in name


@dataclass(frozen=True)
class UserTrainable:
    """A user's function trainable: where it is and how to get it."""

    reference: str  # as the experiment file wrote it
    module: str  # the importable module name
    function: str
    code_dir: str  # absolute folder put on sys.path (and shipped with a submitted job)

    def load(self) -> Callable[..., Any]:
        """Import the module and return the function; :class:`UserCodeError` naming the
        problem (no such module or file, an import that fails, no such function, not a
        function, a signature that cannot take a config)."""
        _use_code_folder(self.code_dir)
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as e:
            if e.name is not None and (self.module == e.name
                                       or self.module.startswith(e.name + ".")):
                raise UserCodeError(
                    f"`trainable` is {self.reference!r}, but module {self.module!r} is not in "
                    f"the code folder {self.code_dir} nor among the installed packages.") \
                    from None
            raise UserCodeError(self._import_failed(e)) from None
        except Exception as e:  # whatever the user's module raises while importing
            raise UserCodeError(self._import_failed(e)) from None
        fn = getattr(module, self.function, None)
        if fn is None:
            from spaces import closest

            names = [n for n, v in vars(module).items()
                     if inspect.isfunction(v) and not n.startswith("_")]
            raise UserCodeError(
                f"`trainable` is {self.reference!r}, but module {self.module} has no "
                f"{self.function!r}.{closest(self.function, names)} Its functions: "
                f"{', '.join(names) or 'none'}.")
        if not inspect.isfunction(fn):
            raise UserCodeError(
                f"`trainable` is {self.reference!r}, but {self.module}.{self.function} is a "
                f"{type(fn).__name__}, not a function; name a function `def "
                f"{self.function}(config): ...` that calls ray.tune.report.")
        self._ship_by_value()
        return fn

    def _import_failed(self, e: BaseException) -> str:
        first = (str(e).strip().splitlines() or [""])[0]
        return (f"`trainable` is {self.reference!r}, but importing {self.module} failed: "
                f"{type(e).__name__}: {first}")

    def check_call(self, fn: Callable[..., Any], train: Mapping[str, Any]) -> None:
        """:class:`UserCodeError` unless ``fn(config, **train)`` fits the signature."""
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        params = list(signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
        takes_args = any(p.kind is p.VAR_POSITIONAL for p in params)
        if not positional and not takes_args:
            raise UserCodeError(
                f"`trainable` is {self.reference!r}, but {self.function}{signature} takes no "
                f"config; Ray Tune calls it as {self.function}(config): add that parameter.")
        named = {p.name for p in positional[1:]} | {
            p.name for p in params if p.kind is p.KEYWORD_ONLY}
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
        unknown = [k for k in train if k not in named]
        if unknown and not takes_kwargs:
            raise UserCodeError(
                f"`train.{unknown[0]}` is set, but {self.function}{signature} has no parameter "
                f"{unknown[0]!r}; `train:` values reach {self.function} as keyword arguments: "
                f"add `{unknown[0]}=...` to its parameters, or remove it from `train`.")
        missing = [p.name for p in positional[1:] + [
            p for p in params if p.kind is p.KEYWORD_ONLY] if p.default is p.empty
            and p.name not in train]
        if missing:
            raise UserCodeError(
                f"{self.function}{signature} needs {missing[0]!r}, but `train` does not set it; "
                f"add `train: {{{missing[0]}: ...}}` to the experiment file.")

    def _ship_by_value(self) -> None:
        """Let every module loaded from the code folder travel inside the pickled trainable,
        so trial workers need neither the files nor a path to them."""
        import ray.cloudpickle as cloudpickle

        root = os.path.join(self.code_dir, "")
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and os.path.abspath(path).startswith(root) and \
                    name not in cloudpickle.list_registry_pickle_by_value():
                cloudpickle.register_pickle_by_value(module)


_code_folders: list[str] = []  # the code folders this process put on sys.path


def _use_code_folder(code_dir: str) -> None:
    """Put ``code_dir`` on ``sys.path``; the modules of another experiment's code folder
    loaded earlier in this process (a notebook, a test session) are forgotten, and that folder
    leaves ``sys.path``, so same-named files (``train.py``, ``helpers.py``) come from this one."""
    mine = os.path.join(code_dir, "")
    for old in [d for d in _code_folders if d != code_dir]:
        root = os.path.join(old, "")
        for name, module in list(sys.modules.items()):
            path = os.path.abspath(getattr(module, "__file__", None) or "")
            if path.startswith(root) and not path.startswith(mine):
                del sys.modules[name]
        while old in sys.path:
            sys.path.remove(old)
        _code_folders.remove(old)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    if code_dir not in _code_folders:
        _code_folders.append(code_dir)


def _shipped_folder(name: str) -> str | None:
    """The folder a submitted job received as ``py_modules`` entry ``name`` (Ray extracts each
    into a folder it puts the parent of on ``sys.path``)."""
    for entry in sys.path:
        candidate = os.path.join(entry or ".", name)
        if os.path.isdir(candidate):
            return os.path.abspath(candidate)
    return None


# Never shipped with a job: results, environments, caches, version control.
DEFAULT_EXCLUDES = ("runs/", "results/", ".git/", ".venv/", "venv/", "__pycache__/",
                    "*.parquet", ".ipynb_checkpoints/")


def code_excludes(code: Any) -> list[str]:
    """What a job does not ship of the code folder: :data:`DEFAULT_EXCLUDES` and the file's
    ``code.exclude`` (gitignore-style patterns, e.g. ``data/``)."""
    extra = code.get("exclude", []) if isinstance(code, Mapping) else []
    if not isinstance(extra, list) or not all(isinstance(p, str) and p for p in extra):
        raise UserCodeError(f"`code.exclude` is {extra!r}, but must be a list of patterns such "
                            "as [data/, '*.npz'].")
    return [*DEFAULT_EXCLUDES, *extra]


def code_folder(code: Any, base_dir: Path) -> str:
    """The absolute code folder: ``code`` (a folder, or ``{dir: FOLDER, exclude: [...]}``;
    relative to ``base_dir``), else ``base_dir``."""
    if isinstance(code, Mapping):
        unknown = [k for k in code if k not in ("dir", "exclude")]
        if unknown:
            raise UserCodeError(f"`code.{unknown[0]}` is not an option; allowed: dir, exclude.")
        code_excludes(code)
        code = code.get("dir", ".")
    if code is None:
        return str(base_dir.resolve())
    if not isinstance(code, str) or not code:
        raise UserCodeError(f"`code` is {code!r}, but must be a folder (relative to the "
                            "experiment file) that holds the trainable's code.")
    if code.startswith(SHIPPED_PREFIX):
        folder = _shipped_folder(code[len(SHIPPED_PREFIX):])
        if folder is None:
            raise UserCodeError(f"`code` is {code!r}, but no folder of that name came with the "
                                "job (its py_modules).")
        return folder
    folder = (base_dir / Path(code).expanduser()).resolve()
    if not folder.is_dir():
        raise UserCodeError(f"`code` is {code!r}, but {folder} is not a folder.")
    return str(folder)


def user_trainable(reference: str, code_dir: str) -> UserTrainable:
    """Parse ``reference`` (``pkg.mod:fn`` or ``path/file.py:fn``, files relative to
    ``code_dir``); :class:`UserCodeError` for a malformed one or a missing file."""
    target, _, function = reference.rpartition(":")
    if not target or not function.isidentifier():
        raise UserCodeError(
            f"`trainable` is {reference!r}, but must be a built-in trainable's name or "
            "`module:function` / `path/to/file.py:function`, e.g. `model.py:fit`.")
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = (Path(code_dir) / target).resolve()
        if not path.is_file():
            raise UserCodeError(f"`trainable` is {reference!r}, but {path} does not exist; "
                                "file paths are relative to the experiment file's folder (or "
                                "`code:`).")
        try:
            relative = path.with_suffix("").relative_to(code_dir)
        except ValueError:
            raise UserCodeError(
                f"`trainable` is {reference!r}, but {path} is outside the code folder "
                f"{code_dir}; set `code:` to a folder that holds it.") from None
        parts = relative.parts
        if not all(p.isidentifier() for p in parts):
            raise UserCodeError(
                f"`trainable` is {reference!r}, but {'/'.join(parts)} is not importable as a "
                "module path (folder and file names must be Python identifiers).")
        module = ".".join(parts)
    else:
        if not all(p.isidentifier() for p in target.split(".")):
            raise UserCodeError(f"`trainable` is {reference!r}, but {target!r} is not a module "
                                "path (such as my_pkg.train).")
        module = target
    return UserTrainable(reference=reference, module=module, function=function,
                         code_dir=code_dir)
