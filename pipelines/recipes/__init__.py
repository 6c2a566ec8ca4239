"""Experiment recipes: the TOML files shipped in this folder, their schema and checks, and
what a recipe's output holds.

:mod:`._recipe` loads a recipe, :mod:`._specs` are its parts, :mod:`._check` its checks,
:mod:`._state` the ``run-state.json`` of its output, :mod:`._results` the context a report of
that output shows. ``run`` runs a recipe; ``report`` reads its output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.recipes._recipe import (
        DatasetSpec,
        DumpSpec,
        Recipe,
        SortSpec,
        StudentSpec,
        TeacherSpec,
        apply_overrides,
        check_data,
        load_recipe,
        recipe_dir,
        recipe_names,
        resolve_recipe_path,
        slugify,
    )
    from sortkd_cache.pipelines.recipes._results import context_lines, recipe_context
    from sortkd_cache.pipelines.recipes._state import (
        STATE_NAME,
        STORE_NAME,
        UPSTREAM_KEYS,
        RunState,
        config_hash,
        describe_change,
        student_dir,
    )

#: name -> the module that defines it
_NAMES = {
    "DatasetSpec": "._recipe",
    "DumpSpec": "._recipe",
    "Recipe": "._recipe",
    "SortSpec": "._recipe",
    "StudentSpec": "._recipe",
    "TeacherSpec": "._recipe",
    "apply_overrides": "._recipe",
    "check_data": "._recipe",
    "load_recipe": "._recipe",
    "recipe_dir": "._recipe",
    "recipe_names": "._recipe",
    "resolve_recipe_path": "._recipe",
    "slugify": "._recipe",
    "STATE_NAME": "._state",
    "STORE_NAME": "._state",
    "UPSTREAM_KEYS": "._state",
    "RunState": "._state",
    "config_hash": "._state",
    "describe_change": "._state",
    "student_dir": "._state",
    "context_lines": "._results",
    "recipe_context": "._results",
}
__all__ = [
    "DatasetSpec",
    "DumpSpec",
    "Recipe",
    "RunState",
    "STATE_NAME",
    "STORE_NAME",
    "SortSpec",
    "StudentSpec",
    "TeacherSpec",
    "UPSTREAM_KEYS",
    "apply_overrides",
    "check_data",
    "config_hash",
    "context_lines",
    "describe_change",
    "load_recipe",
    "recipe_context",
    "recipe_dir",
    "recipe_names",
    "resolve_recipe_path",
    "slugify",
    "student_dir",
]

__getattr__ = lazy_names(__name__, _NAMES)
