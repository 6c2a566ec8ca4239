"""Runs grouped into variants, the options they differ in, provenance flags, and the pairs.

A variant is every run with the same computing options but the seed (and, unless ``mix``,
the same provenance when the runs come from more than one cache, teacher or dataset). Its
name is ``[<student> ]<loss>[ <kind>][ top-K]`` (the student where the runs have several)
and then ``key=value`` for every other option in which the runs differ; a recipe's own
variant name replaces it where the runs have one.

Pairs (``variant - baseline``, seed by seed):

* default: each distilled variant against its CE twin (same student and options) where the
  runs hold CE; each sort/swap variant against its raw twin; each top-K variant against its
  dense twin;
* ``--baseline NAME``: a variant's name pairs every other variant against it; a loss (``ce``,
  ``kd``, ...), a logits kind (``raw``, ``sort``, ...) or ``dense`` pairs each variant with
  its twin that differs in that one option.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import field_names
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.pipelines.report._runs import LOSS_KEY, Provenance, Run

__all__ = ["Grouping", "Variant", "group_runs", "pairs_for"]

#: options named in every variant's name, in this order
CORE = ("student", "loss", "logits", "topk")
#: options that cut or draw the teacher's rows (``topk``, ``sample``, ``sample_head``, ...):
#: a dense twin has none of them; read from TrainConfig's sections, as ``sweep`` reads them
_ROWS = field_names(TrainConfig, sweep="teacher")
#: options of the teacher's soft labels: a CE twin has none of them
_TEACHER = ("logits", *_ROWS)
_ABSENT = object()


@dataclass
class Variant:
    name: str
    options: dict[str, Any]
    provenance: Provenance | None  #: None: its runs' provenances were mixed (``--mix``)
    runs: list[Run] = field(default_factory=list)

    @property
    def loss(self) -> str:
        return str(self.options.get("loss"))

    @property
    def logits(self) -> str | None:
        value = self.options.get("logits")
        return None if value is None else str(value)

    @property
    def topk(self) -> int | None:
        value = self.options.get("topk")
        return None if value is None else int(value)


@dataclass
class Grouping:
    variants: list[Variant]
    varying: list[str]  #: the options in which the runs differ
    caches: list[dict[str, Any]]  #: each provenance and how many runs came from it
    flags: list[str]  #: provenance warnings, one sentence each
    mixed: bool


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _varying(runs: list[Run]) -> list[str]:
    """The options whose value differs between runs (a loss's own option between runs of
    that loss: KD's and DKD's defaults of ``ce_weight`` differ, which is no difference)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        loss = str(run.options.get("loss"))
        for k, v in run.options.items():
            seen.setdefault((k, loss if k.startswith(LOSS_KEY) else ""), set()).add(_key(v))
    differ = sorted({k for (k, _), values in seen.items() if len(values) > 1})
    return [k for k in CORE if k in differ] + [k for k in differ if k not in CORE]


def _name(options: dict[str, Any], varying: list[str]) -> str:
    parts = [str(options.get("student"))] if "student" in varying else []
    parts.append(str(options.get("loss")))
    if options.get("logits") is not None:
        parts.append(str(options["logits"]))
    if options.get("topk") is not None:
        parts.append(f"top-{options['topk']}")
    for k in varying:
        if k not in CORE and k in options:
            parts.append(f"{k.removeprefix(LOSS_KEY)}={_key(options[k])}")
    return " ".join(parts)


def _provenance_flags(runs: list[Run], mix: bool) -> tuple[list[dict[str, Any]], list[str]]:
    counts: dict[Provenance, int] = {}
    for run in runs:
        counts[run.provenance] = counts.get(run.provenance, 0) + 1
    caches = [
        {"store_id": p.store_id, "teacher_sha256": p.teacher_sha256,
         "dataset_fingerprint": p.dataset_fingerprint, "label": p.label(), "runs": n}
        for p, n in counts.items()
    ]  # fmt: skip
    flags: list[str] = []
    for what, attr in (
        ("caches", "store_id"),
        ("teachers", "teacher_sha256"),
        ("datasets", "dataset_fingerprint"),
    ):
        values = {getattr(p, attr) for p in counts} - {None}
        if len(values) > 1:
            how = "averaged together (--mix)" if mix else "reported apart (--mix averages them)"
            flags.append(f"the runs come from {len(values)} different {what}: {how}")
    return caches, flags


def group_runs(runs: list[Run], mix: bool = False) -> Grouping:
    """The variants of ``runs`` in first-seen order, each variant's runs sorted by seed."""
    caches, flags = _provenance_flags(runs, mix)
    split = bool(flags) and not mix
    varying = _varying(runs)
    by_key: dict[str, Variant] = {}
    for run in runs:
        prov = run.provenance if split else None
        key = _key(run.options) + (_key(prov) if prov else "")
        if key not in by_key:
            name = _name(run.options, varying) + (f" [{prov.label()}]" if prov else "")
            by_key[key] = Variant(name, dict(run.options), prov)
        by_key[key].runs.append(run)
    variants = list(by_key.values())
    _use_labels(variants)
    for v in variants:
        v.runs.sort(key=lambda r: r.seed)
        _check_seeds(v)
    return Grouping(variants, varying, caches, flags, mix)


def _use_labels(variants: list[Variant]) -> None:
    """A recipe's variant name replaces the generated one where it is the name of exactly
    one variant's runs."""
    labels = [{r.label for r in v.runs} for v in variants]
    names = [next(iter(s)) if len(s) == 1 else None for s in labels]
    for v, name in zip(variants, names, strict=True):
        if name is not None and names.count(name) == 1:
            v.name = name if v.provenance is None else f"{name} [{v.provenance.label()}]"


def _check_seeds(v: Variant) -> None:
    for a, b in zip(v.runs, v.runs[1:], strict=False):
        if a.seed == b.seed:
            raise ConfigError(
                f"report: variant '{v.name}' has two runs of seed {a.seed} ('{a.path}' and "
                f"'{b.path}'); report them separately"
            )


def _compatible(a: Variant, b: Variant) -> bool:
    if a.provenance is None or b.provenance is None:
        return True
    pa, pb = a.provenance, b.provenance
    return all(
        x is None or y is None or x == y
        for x, y in ((pa.store_id, pb.store_id), (pa.dataset_fingerprint, pb.dataset_fingerprint))
    )


def _twin(
    v: Variant, variants: list[Variant], change: dict[str, Any], loss_keys: bool
) -> Variant | None:
    """The variant equal to ``v`` but for ``change`` (``_ABSENT``: the option is not set),
    comparing the options both have (and the loss's own options only when ``loss_keys``)."""
    want = {**v.options, **change}
    for o in variants:
        if o is v or not _compatible(v, o):
            continue
        ok = all(
            (o.options.get(k) is None) if val is _ABSENT else o.options.get(k) == val
            for k, val in change.items()
        )
        for k, val in want.items():
            if not ok:
                break
            if k in change or k not in o.options or (k.startswith(LOSS_KEY) and not loss_keys):
                continue
            ok = o.options[k] == val
        if ok:
            return o
    return None


def _ce(v: Variant, variants: list[Variant]) -> Variant | None:
    if v.loss == "ce":
        return None
    return _twin(v, variants, {"loss": "ce", **dict.fromkeys(_TEACHER, _ABSENT)}, False)


def _raw(v: Variant, variants: list[Variant]) -> Variant | None:
    if v.logits in (None, "raw"):
        return None
    return _twin(v, variants, {"logits": "raw"}, True)


def _dense(v: Variant, variants: list[Variant]) -> Variant | None:
    """A top-K, sampled or quantized variant's dense twin (a variant that cuts, draws or
    quantizes the teacher's rows; ``sparse_tail`` alone does not)."""
    if all(v.options.get(k) is None for k in _ROWS if k != "sparse_tail"):
        return None
    return _twin(v, variants, dict.fromkeys(_ROWS, _ABSENT), True)


Rule = Callable[[Variant, list[Variant]], "Variant | None"]


def _rule_for(name: str, variants: list[Variant]) -> Rule | None:
    """The twin rule of a ``--baseline`` that names a loss, a logits kind or ``dense``."""
    if name == "ce" and any(v.loss == "ce" for v in variants):
        return _ce
    if name == "dense":
        return _dense
    if any(v.loss == name for v in variants):
        return lambda v, vs: None if v.loss == name else _twin(v, vs, {"loss": name}, False)
    if any(v.logits == name for v in variants):
        return lambda v, vs: (
            None if v.logits in (None, name) else _twin(v, vs, {"logits": name}, True)
        )
    return None


def pairs_for(variants: list[Variant], baseline: str | None) -> list[tuple[str, str]]:
    """``(variant, baseline)`` name pairs; see the module docstring."""
    pairs: list[tuple[str, str]] = []
    if baseline is None:
        rules: list[Rule] = [_raw, _dense]
        if any(v.loss == "ce" for v in variants):
            rules.insert(0, _ce)
    else:
        base = next((v for v in variants if baseline == v.name), None)
        if base is not None:
            return [(v.name, base.name) for v in variants if v is not base]
        rule = _rule_for(baseline, variants)
        if rule is None:
            known = ", ".join(f"'{v.name}'" for v in variants)
            raise ConfigError(
                f"--baseline '{baseline}': no variant, loss or logits kind of that name among "
                f"the runs (variants: {known}; or a loss, a kind, 'dense')"
            )
        rules = [rule]
    for v in variants:
        for rule in rules:
            twin = rule(v, variants)
            if twin is not None and (v.name, twin.name) not in pairs:
                pairs.append((v.name, twin.name))
    if baseline is not None and not pairs:
        raise ConfigError(f"--baseline '{baseline}': no variant has a twin that differs in it")
    return pairs
