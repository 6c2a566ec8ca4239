"""One registry idiom: every name -> implementation lookup is a Registry; the CLI reads them."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from sortkd_cache._registry import Registry, lazy_names
from sortkd_cache.errors import ConfigError, ModelError
from sortkd_cache.testing import invoke

pytestmark = pytest.mark.fast


def test_registry_basics() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("b", 2)

    @reg.register("a")
    def _a() -> int:  # the decorator returns what it registers
        return 1

    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert reg.get("b") == 2 and reg["b"] == 2 and "a" in reg and 3 not in reg
    with pytest.raises(
        ConfigError, match=r"^unknown widget 'bb' \(did you mean 'b'\?\); known: a, b$"
    ):
        reg.get("bb")
    with pytest.raises(ConfigError, match=r"^widget 'b' is already registered$"):
        reg.add("b", 3)
    with pytest.raises(ConfigError, match="non-empty"):
        reg.add("", 0)
    models: Registry[int] = Registry("model", error=ModelError, extra="(and more)")
    with pytest.raises(ModelError, match=r"known: .*\(and more\)$"):
        models.get("x")
    saved = reg.snapshot()
    reg.add("c", 3)
    reg.restore(saved)
    assert reg.names() == ["a", "b"]


def test_every_lookup_is_a_registry() -> None:
    from sortkd_cache.augment import RECIPES
    from sortkd_cache.datasets import DATASETS
    from sortkd_cache.losses import LOSSES
    from sortkd_cache.models import MODELS
    from sortkd_cache.sorting import METHODS

    for reg in (RECIPES, DATASETS, LOSSES, MODELS, METHODS):
        assert isinstance(reg, Registry) and len(reg) >= 2, reg.kind
    assert set(LOSSES) == {"ce", "kd", "dkd", "lskd", "ctkd"}
    assert set(METHODS) == {"sort", "swap"}
    assert set(DATASETS) == {"cifar10", "cifar100", "digits", "digits100", "fake", "imagefolder"}


def test_cli_lists_come_from_the_registries() -> None:
    from sortkd_cache.losses import LOSSES, loss_options
    from sortkd_cache.sorting import METHODS

    train_help = invoke("train", "--help").output
    assert " | ".join(LOSSES.names()) in train_help
    assert " | ".join(["raw", *METHODS.names()]) in train_help
    for key in loss_options():
        assert "--" + key.replace("_", "-") in train_help
    assert " | ".join(METHODS.names()) in invoke("sort", "--help").output


@pytest.mark.parametrize(
    ("module", "args"),
    [("_cmd_verify", ["verify", "--help"]), ("_cmd_copy", ["copy", "a", "b"]),
     ("_cmd_copy", ["--help"]), ("_cmd_verify", ["--help"])],
)  # fmt: skip
def test_a_command_module_that_fails_to_import_fails_loudly(module: str, args: list[str]) -> None:
    """Before, cli/main.py dropped such a command from the group without a word. Modules load
    when one of their commands runs, or when ``--help`` lists every command."""
    probe = (
        "import sys\n"
        f"sys.modules['sortkd_cache.cli.{module}'] = None  # as if its import failed\n"
        "from sortkd_cache.cli.main import main\n"
        "sys.argv = ['sortkd-cache', *sys.argv[1:]]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
    assert proc.returncode != 0
    assert f"sortkd_cache.cli.{module}" in proc.stderr


def test_lazy_targets_import_on_first_call() -> None:
    """A registry entry's heavy part is a ``module:attr`` target, imported when first called."""
    from sortkd_cache import Lazy
    from sortkd_cache.datasets import DATASETS
    from sortkd_cache.models import MODELS

    join = Lazy[[str, str], str]("posixpath:join")
    assert join("a", "b") == "a/b" and join == Lazy("posixpath:join") and "posixpath" in repr(join)
    for bad in ("posixpath", ":join", "posixpath:", "a:b:c"):
        with pytest.raises(ValueError, match="module:attr"):
            Lazy(bad)
    with pytest.raises(TypeError, match="not a callable"):
        Lazy("posixpath:sep").resolve()
    for name, info in MODELS.items():  # every built-in model: a function of its own name
        assert isinstance(info.factory, Lazy) and info.factory.target.endswith(f":{name}")
        assert callable(info.factory.resolve())
    assert all(isinstance(kind.load, Lazy) for _, kind in DATASETS.items())


def test_lazy_names_import_submodules_and_relative_names_on_first_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``lazy_names`` serves the library's packages (``"_base"``) and the commands'
    (``"._config"``, ``"..common.x"``): imported when first read, then kept."""
    pkg = tmp_path / "lazypkg"
    (pkg / "sub").mkdir(parents=True)
    for rel, text in {"__init__.py": "", "_a.py": "A = 1\n", "sub/__init__.py": "",
                      "sub/_b.py": "B = 2\n", "_c.py": "C = 3\n"}.items():  # fmt: skip
        (pkg / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("lazypkg", "lazypkg.sub"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        importlib.import_module(name)
    top = lazy_names("lazypkg", {"A": "_a", "B": ".sub._b"})
    sub = lazy_names("lazypkg.sub", {"C": ".._c", "D": "_gone"})
    assert "lazypkg._a" not in sys.modules
    assert (top("A"), top("B"), sub("C")) == (1, 2, 3)
    assert sys.modules["lazypkg"].A == 1 and sys.modules["lazypkg.sub"].C == 3
    with pytest.raises(AttributeError, match="'lazypkg' has no attribute 'Z'"):
        top("Z")
    with pytest.raises(ModuleNotFoundError, match=r"lazypkg\.sub\._gone"):
        sub("D")
    for name in ("lazypkg._a", "lazypkg.sub._b", "lazypkg._c"):
        monkeypatch.delitem(sys.modules, name, raising=False)
