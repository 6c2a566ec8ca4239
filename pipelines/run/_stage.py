"""`sortkd-cache run RECIPE`: teacher -> dump -> sort -> students, then a results table.

Stages, in order, each writing under the output directory OUT:

* ``teacher``: CE training of ``[teacher]`` into OUT/teacher (or the recipe's existing
  ``teacher.checkpoint``, which is only hashed);
* ``dump``: the teacher's logits over ``dump.views`` views into OUT/store.zarr;
* ``sort:<method>``: one per ``sort.methods`` entry, inside the same store;
* ``student:<variant>:seed<k>``: one training run per student variant and seed, from the
  store, into OUT/students/<variant>/seed<k>. The student stages that share a data order
  (the same ``data_seed``, else the same ``seed``) and the options one pass serves train
  together in one ``sweep`` (OUT/sweeps/pass<n>).

A stage is skipped when OUT/run-state.json records it with the hash of the current
configuration and its output is still there and complete. A stage's configuration contains the
output tokens of what it reads (teacher weights sha256, the store's creation stamp, the sort
kind's creation stamp), so a changed field reruns its stage and every stage downstream of it,
never those upstream. An interrupted stage whose configuration did not change resumes.
Finally the report of the students (``report``, with the recipe's context: teacher,
sort, timing): OUT/report.json, OUT/report.md (also returned) and OUT/report.html.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.checkpoint import file_sha256
from sortkd_cache.data import STREAM_THRESHOLD_BYTES, view_bytes
from sortkd_cache.errors import CheckpointError, SortKDError
from sortkd_cache.outputs import read_marker
from sortkd_cache.pipelines.common.helpers import resolve_device
from sortkd_cache.pipelines.dump import DumpConfig, dump
from sortkd_cache.pipelines.recipes import (
    STORE_NAME,
    UPSTREAM_KEYS,
    Recipe,
    RunState,
    StudentSpec,
    check_data,
    config_hash,
    describe_change,
    recipe_context,
    student_dir,
)
from sortkd_cache.pipelines.report import report_members
from sortkd_cache.pipelines.sort import SortConfig, sort_store
from sortkd_cache.pipelines.sweep import READER_KEYS, SHARED_KEYS, MemberSpec, SweepConfig, sweep
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.runtime import check_threads, compute_threads
from sortkd_cache.store import open_store, writer_lock

if TYPE_CHECKING:
    from sortkd_cache.store import CacheStore

__all__ = ["STORE_NAME", "RunReport", "StageOutcome", "run_recipe", "student_dir"]


@dataclass(frozen=True)
class StageOutcome:
    """What happened to one stage: ``ran``, ``skipped``, ``would run`` or ``would skip``."""

    stage: str
    action: str
    reason: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    recipe: str
    out: str
    dry_run: bool
    stages: list[StageOutcome] = field(default_factory=list)
    results: dict[str, Any] | None = None
    table: str = ""

    def ran(self) -> list[str]:
        """Names of the stages that ran (or would run, in a dry run)."""
        return [s.stage for s in self.stages if s.action in ("ran", "would run")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "out": self.out,
            "dry_run": self.dry_run,
            "stages": [s.to_dict() for s in self.stages],
            "results": self.results,
        }


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _summary_exists(run_dir: Path) -> bool:
    """A finished run: a readable summary.json (a damaged one counts as unfinished)."""
    return read_marker(run_dir / "summary.json") is not None


class _Runner:
    def __init__(
        self,
        recipe: Recipe,
        out: Path,
        device: str,
        progress: bool,
        dry_run: bool,
        log: Callable[[str], None],
    ) -> None:
        self.recipe = recipe
        self.out = out
        self.device = device
        self.progress = progress
        self.dry_run = dry_run
        self.log = log
        self.state = RunState(out)
        self.store_path = out / STORE_NAME
        self.outcomes: list[StageOutcome] = []

    # -- the generic stage ---------------------------------------------------------------------

    def _record(
        self, stage: str, action: str, reason: str, seconds: float = 0.0, quiet: bool = False
    ) -> None:
        """Record a stage's outcome; its one line (unless ``quiet``: the student stages of a
        pass, or those skipped, are told in one line for them all)."""
        self.outcomes.append(StageOutcome(stage, action, reason, round(seconds, 3)))
        if not quiet:
            self.log(f"[{stage}] {action}: {reason}" + (f" ({seconds:.1f} s)" if seconds else ""))

    def _decide(
        self, stage: str, config: dict[str, Any], valid: Callable[[], bool]
    ) -> tuple[bool, bool, str]:
        """(run it, resume it, why)."""
        if any(k in config and config[k] is None for k in UPSTREAM_KEYS):
            return True, False, "an upstream stage reruns"
        rec = self.state.get(stage)
        if rec is None:
            return True, False, "not run before"
        if rec.get("hash") != config_hash(config):
            return True, False, describe_change(rec.get("config", {}), config)
        try:
            ok = valid()
        except SortKDError:
            ok = False
        if ok:
            return False, False, "complete and up to date"
        if rec.get("status") == "started":
            return True, True, "resuming an interrupted run"
        return True, True, "output missing or incomplete"

    def _stage(
        self,
        stage: str,
        config: dict[str, Any],
        valid: Callable[[], bool],
        execute: Callable[[bool], dict[str, Any]],
        token_of: Callable[[], str],
        quiet: bool = False,
    ) -> str | None:
        """Run or skip one stage; its output token (None when unknown in a dry run)."""
        run, resume, reason = self._decide(stage, config, valid)
        if not run:
            token = token_of()
            rec = self.state.get(stage) or {}
            if not self.dry_run and (rec.get("status") != "complete" or rec.get("token") != token):
                self.state.finish(stage, token, rec.get("result", {}))
            self._record(stage, "would skip" if self.dry_run else "skipped", reason, quiet=quiet)
            return token
        if self.dry_run:
            self._record(stage, "would run", reason, quiet=quiet)
            return None
        self.state.start(stage, config)
        t0 = time.perf_counter()
        result = execute(resume)
        token = token_of()
        self.state.finish(stage, token, result)
        self._record(stage, "ran", reason, time.perf_counter() - t0)
        return token

    # -- the stages ----------------------------------------------------------------------------

    def teacher(self) -> tuple[str | None, str]:
        """The teacher's weights token (sha256) and weights path."""
        t, r = self.recipe.teacher, self.recipe
        if t.checkpoint is not None:
            path = Path(t.checkpoint)
            if not path.is_file():
                raise CheckpointError(
                    f"{r.source}: teacher.checkpoint '{t.checkpoint}' not found; edit the "
                    "recipe or pass --set teacher.checkpoint=PATH"
                )
            sha = file_sha256(path)
            action = "would skip" if self.dry_run else "skipped"
            self._record("teacher", action, f"weights from checkpoint {path.name}")
            return sha, str(path)
        run_dir = self.out / "teacher"
        weights = run_dir / "model.safetensors"
        params = {k: v for k, v in asdict(t).items() if k != "checkpoint"}
        config = {"dataset": r.dataset.spec, **params}

        def execute(resume: bool) -> dict[str, Any]:
            res = train(
                TrainConfig(
                    student=t.arch,
                    dataset=r.dataset.spec,
                    data_root=r.dataset.data_root,
                    download=r.dataset.download,
                    loss="ce",
                    **t.schedule_options(),
                    seed=t.seed,
                    augment=t.augment,
                    out=str(run_dir),
                    device=self.device,
                    progress=self.progress,
                    resume=resume and not _summary_exists(run_dir),
                    overwrite=not (resume and not _summary_exists(run_dir)),
                )
            )
            return {"test_top1": res.final_test_top1, "seconds": res.seconds}

        token = self._stage(
            "teacher",
            config,
            lambda: _summary_exists(run_dir) and weights.is_file(),
            execute,
            lambda: file_sha256(weights),
        )
        return token, str(weights)

    def _open(self) -> CacheStore:
        return open_store(str(self.store_path), "r")

    def dump(self, teacher_token: str | None, weights: str) -> str | None:
        r, d = self.recipe, self.recipe.dump
        config = {"teacher": teacher_token, "dataset": r.dataset.spec, **d.config()}

        def valid() -> bool:
            meta = self._open().meta
            return bool(meta.complete) and meta.teacher.sha256 == teacher_token

        def execute(resume: bool) -> dict[str, Any]:
            res = dump(
                DumpConfig(
                    dataset=r.dataset.spec,
                    teacher=r.teacher.arch,
                    teacher_ckpt=weights,
                    out=str(self.store_path),
                    **d.values,
                    data_root=r.dataset.data_root,
                    download=r.dataset.download,
                    device=self.device,
                    progress=self.progress,
                    resume=resume,
                    overwrite=not resume,
                )
            )
            return {"seconds": res.seconds, "forward_seconds": res.forward_seconds}

        def token() -> str:
            return config_hash({"dump": config_hash(config), "created": self._open().meta.created})

        return self._stage("dump", config, valid, execute, token)

    def sort(self, dump_token: str | None) -> dict[str, str | None]:
        return {m: self._sort_one(m, dump_token) for m in self.recipe.sort.methods}

    def _sort_one(self, method: str, dump_token: str | None) -> str | None:
        config = {"dump": dump_token, "method": method}

        def execute(resume: bool) -> dict[str, Any]:
            res = sort_store(
                SortConfig(
                    store=str(self.store_path),
                    method=method,
                    overwrite=not resume,
                    progress=self.progress,
                )
            )
            return {"seconds": res.seconds}

        def token() -> str:
            created = self._open().kind_attrs(method).get("created")
            return config_hash({"sort": config_hash(config), "created": created})

        def valid() -> bool:
            return bool(self._open().kind_complete(method))

        return self._stage(f"sort:{method}", config, valid, execute, token)

    def students(self, dump_token: str | None, sort_tokens: dict[str, str | None]) -> None:
        """Every student variant x seed: the stages to run train together, one sweep per data
        order (``data_seed``: one pass for all seeds; without it, one pass per seed), one pass
        over the cache per epoch for its members; each member's configuration, data order
        included, is its solo run's, so it is bit-identical."""
        todo: dict[tuple[Any, ...], list[tuple[str, dict[str, Any], Any]]] = {}
        first, order = len(self.outcomes), []
        for spec in self.recipe.students:
            uses_raw = spec.loss == "ce" or spec.logits == "raw"
            source = dump_token if uses_raw else sort_tokens.get(spec.logits)
            for seed in spec.seeds:
                stage, config = self._student_stage(spec, seed, source)
                run_dir = student_dir(self.out, spec, seed)
                order.append(stage)
                valid = functools.partial(_summary_exists, run_dir)
                run, resume, reason = self._decide(stage, config, valid)
                if not run or self.dry_run:
                    self._stage(stage, config, valid, _never, str, quiet=True)
                    continue
                member = self._member(spec, seed, resume and not _summary_exists(run_dir))
                key = _pass_key(member.cfg, self._streams(member.cfg))
                todo.setdefault(key, []).append((stage, config, (member, reason)))
        self._tell("students", self.outcomes[first:])
        for n, stages in enumerate(todo.values()):
            self._sweep_pass(n, stages)
        # the report lists the student stages in the recipe's order, as they were run before
        self.outcomes[first:] = sorted(self.outcomes[first:], key=lambda o: order.index(o.stage))

    def _streams(self, cfg: Any) -> bool:
        """Whether a student reading soft labels would stream them (``--soft-labels stream``,
        or ``auto`` on a store whose view exceeds the threshold): a streamed order is not the
        order of a student reading none, so those two never share a pass."""
        if cfg.soft_labels != "auto":
            return bool(cfg.soft_labels == "stream")
        return view_bytes(self._open()) > STREAM_THRESHOLD_BYTES

    def _student_stage(
        self, spec: StudentSpec, seed: int, source: str | None
    ) -> tuple[str, dict[str, Any]]:
        config = {"input": source, **spec.train_params(), "seed": seed}
        return f"student:{spec.slug}:seed{seed}", config

    def _member(self, spec: StudentSpec, seed: int, again: bool) -> Any:
        r = self.recipe
        cfg = TrainConfig(
            cache=str(self.store_path), dataset=r.dataset.spec, data_root=r.dataset.data_root,
            out=str(student_dir(self.out, spec, seed)), seed=seed, device=self.device,
            progress=False, resume=again, overwrite=not again, **spec.train_params(),
        )  # fmt: skip
        return MemberSpec(f"{spec.slug}-seed{seed}", cfg)

    def _sweep_pass(self, n: int, stages: list[tuple[str, dict[str, Any], Any]]) -> None:
        """One sweep trains these student stages (OUT/sweeps/pass<n> holds its summary; the
        members write OUT/students/<variant>/seed<k>)."""
        where = self.out / "sweeps" / f"pass{n}"
        for stage, config, _ in stages:
            self.state.start(stage, config)
        cfg = SweepConfig(
            out=str(where), members=tuple(m for *_, (m, _) in stages), overwrite=where.exists(),
            progress=self.progress,
        )  # fmt: skip
        t0 = time.perf_counter()
        result = sweep(cfg)
        seconds = time.perf_counter() - t0
        for stage, _, (member, reason) in stages:
            info = result.members[member.name]
            if info["status"] != "finished":
                raise SortKDError(f"[{stage}] {info.get('error', info['status'])}")
            top1 = info.get("final_test_top1")
            share = seconds / len(stages)
            self.state.finish(stage, "", {"test_top1": top1, "seconds": share})
            self._record(stage, "ran", reason, share, quiet=True)
        self._tell(f"students pass{n}", self.outcomes[-len(stages) :], seconds, "in one sweep")

    def _tell(
        self, what: str, outcomes: list[StageOutcome], seconds: float = 0.0, how: str = ""
    ) -> None:
        """One line for many student stages: per action, how many, and why."""
        actions: dict[str, dict[str, int]] = {}
        for o in outcomes:
            reasons = actions.setdefault(o.action, {})
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
        for action, reasons in actions.items():
            n = sum(reasons.values())
            why = "; ".join(r if len(reasons) == 1 else f"{r} ({k})" for r, k in reasons.items())
            took = f" ({seconds:.1f} s)" if seconds else ""
            self.log(f"[{what}] {n} {action}{' ' + how if how else ''}: {why}{took}")


def _pass_key(cfg: Any, streams: bool) -> tuple[Any, ...]:
    """Students that can share one pass: the same data seed (their solo runs' data order:
    ``data_seed``, else each seed its own pass), the options one pass serves once, and, when
    soft labels are streamed, whether they read them (a streamed order is not a CE run's)."""
    apart = bool(cfg.loss_config().needs_teacher) if streams else None
    soft = tuple(getattr(cfg, k) for k in READER_KEYS)  # how the readers read soft labels
    return (cfg.order_seed, apart, soft, *(repr(getattr(cfg, k)) for k in SHARED_KEYS))


def _never(resume: bool) -> dict[str, Any]:
    raise SortKDError("a student stage runs in its pass's sweep")


def run_recipe(
    recipe: Recipe,
    out: str | os.PathLike[str],
    *,
    device: str | None = None,
    progress: bool = True,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> RunReport:
    """Execute (or, with ``dry_run``, only plan) every stage of ``recipe`` into ``out``.

    ``device`` overrides the recipe's. Stage lines go to ``log`` (default: stderr). The run
    computes with ``threads`` CPU threads (``--threads``), else the recipe's ``threads``, else
    the default of :mod:`sortkd_cache.runtime`, until it returns; a dry run sets none.
    """
    device = device or recipe.device
    resolve_device(device)
    check_data(recipe)
    check_threads(threads)
    if dry_run:
        return _run(recipe, Path(out), device, progress, dry_run, log)
    with compute_threads(threads if threads is not None else recipe.threads):
        return _run(recipe, Path(out), device, progress, dry_run, log)


def _run(
    recipe: Recipe,
    out_path: Path,
    device: str,
    progress: bool,
    dry_run: bool,
    log: Callable[[str], None] | None,
) -> RunReport:
    runner = _Runner(recipe, out_path, device, progress, dry_run, log or _stderr)
    report = RunReport(recipe=recipe.name, out=str(out_path), dry_run=dry_run)
    if dry_run:
        _run_stages(runner)
        report.stages = runner.outcomes
        return report
    out_path.mkdir(parents=True, exist_ok=True)
    with writer_lock(out_path, f"sortkd-cache run {recipe.name}", "recipe output"):
        _write_recipe(recipe, out_path)
        _run_stages(runner)
        report.stages = runner.outcomes
        members = [
            (str(student_dir(out_path, spec, seed)), spec.name, None)
            for spec in recipe.students
            for seed in spec.seeds
        ]
        report.results, report.table = report_members(out_path, members, recipe_context(out_path))
    return report


def _run_stages(runner: _Runner) -> None:
    teacher_token, weights = runner.teacher()
    dump_token = runner.dump(teacher_token, weights)
    sort_tokens = runner.sort(dump_token)
    runner.students(dump_token, sort_tokens)


def _write_recipe(recipe: Recipe, out: Path) -> None:
    """OUT/recipe.json: the validated recipe this output was last run with."""
    tmp = out / "recipe.json.tmp"
    tmp.write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True))
    os.replace(tmp, out / "recipe.json")
