"""`sortkd-cache info`: a store's provenance, contents and statistics."""

from __future__ import annotations

from typing import Any

from sortkd_cache.models import TeacherPreprocess
from sortkd_cache.pipelines.common.preprocess import recorded_preprocess
from sortkd_cache.store import LOGIT_KINDS, open_store, read_lock

__all__ = ["format_info", "store_info"]


def store_info(location: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON-able dict describing the store (what ``info --json`` prints)."""
    store = open_store(location, "r", storage_options=storage_options)
    meta = store.meta
    d = meta.to_dict()
    out: dict[str, Any] = {
        "store": store.url,
        "schema": meta.schema,
        "num_samples": meta.num_samples,
        "num_views": meta.num_views,
        "num_classes": meta.num_classes,
        "chunk_samples": meta.chunk_samples,
        "dtype": meta.dtype,
        "seed": meta.seed,
        "complete": meta.complete,
        "logits": store.kinds(),
        "dataset": d["dataset"],
        "teacher": d["teacher"],
        "teacher_preprocess": recorded_preprocess(meta).to_dict(),
        "augment": d["augment"],
        "tool_version": meta.tool_version,
        "created": meta.created,
        "teacher_accuracy": list(meta.teacher_accuracy),
        "dump_seconds": meta.dump_seconds,
        "kinds": {},
        "sparse": meta.sparse,
        "derivation": [dict(x) for x in meta.derivation],
    }
    out["sparse"] = store.layout.info_record()
    for kind in LOGIT_KINDS:
        attrs = store.kind_attrs(kind)
        if attrs:
            out["kinds"][kind] = attrs
    if not meta.complete:
        progress = store.progress("raw")
        out["raw_progress"] = {"done": int((progress >= 0).sum()), "total": int(progress.size)}
    out["writer"] = read_lock(store.location.path) if store.location.kind == "dir" else None
    return out


def format_info(info: dict[str, Any]) -> str:
    """The human-readable summary."""
    lines = _header_lines(info) + _status_lines(info)
    for kind, attrs in info["kinds"].items():
        lines += _fidelity_lines(kind, attrs.get("fidelity"))
        lines += _stats_lines(kind, attrs, info.get("sparse"))
    return "\n".join(lines)


def _header_lines(info: dict[str, Any]) -> list[str]:
    """What the store is: shape, data, teacher, augmentation, kinds, sparse layout."""
    ds, t = info["dataset"], info["teacher"]
    lines = [
        f"store      {info['store']}  (schema {info['schema']}, sortkd-cache "
        f"{info['tool_version']}, created {info['created']})",
        f"shape      {info['num_samples']} samples x {info['num_views']} views x "
        f"{info['num_classes']} classes, {info['dtype']}, {info['chunk_samples']} samples/chunk",
        f"dataset    {ds['spec']} ({ds['split']} split)  {ds['fingerprint']}",
        f"teacher    {t['arch']}  init={t['init']}  precision={t.get('precision', 'fp32')}  "
        f"sha256={t['sha256']}",
        f"preprocess {_describe(info)}",
        f"augment    {info['augment'].get('name')}  seed={info['seed']}",
        f"logits     {', '.join(info['logits']) or 'none complete'}",
    ]
    sparse = info.get("sparse")
    if sparse:  # the layout's own line (store.layout.info_record)
        lines.append(f"sparse     {sparse['summary']}")
    return lines + [f"derived    {_derivation_line(s)}" for s in info.get("derivation", [])]


def _status_lines(info: dict[str, Any]) -> list[str]:
    """Whether the dump is finished, who writes the store now, the teacher's accuracy."""
    lines = []
    if "raw_progress" in info:
        p = info["raw_progress"]
        lines.append(
            f"status     INCOMPLETE: {p['done']}/{p['total']} chunks dumped (use --resume)"
        )
    writer = info.get("writer")
    if writer:
        lines.append(
            f"writer     {writer.get('purpose', '?')} (host {writer.get('host')}, pid "
            f"{writer.get('pid')}, since {writer.get('since')}) holds the writer lock"
        )
    if info["teacher_accuracy"]:
        acc = " ".join(f"{a:.3f}" for a in info["teacher_accuracy"])
        lines.append(f"teacher train-view accuracy per view: {acc}")
    return lines


def _stats_lines(kind: str, attrs: dict[str, Any], sparse: dict[str, Any] | None) -> list[str]:
    """A kind's statistics (rows changed, label ranks, confusions) and a legacy top-K copy."""
    stats = attrs.get("stats")
    if not stats:
        return []
    changed = " ".join(f"{r:.3f}" for r in stats.get("changed_fraction", []))
    lines = [f"{kind:10s} rows changed per view (fraction): {changed}"]
    hist = stats.get("rank_histogram", {})
    if hist:
        # Statistics made on top-K rows cap the rank at K ("K or more"), on sampled rows at 1;
        # statistics carried over from the dense rows a sparse copy was made from go higher.
        k_plus, cap = None, (sparse or {}).get("rank_cap")
        if cap is not None and all(int(r) <= cap for r in hist):
            k_plus = str(cap)
        shown = ", ".join(f"{k}{'+' if k == k_plus else ''}:{v}" for k, v in list(hist.items())[:8])
        lines.append(f"{'':10s} label rank before {kind} (rank:rows): {shown}")
    conf = stats.get("top_confusions", [])
    if conf:
        shown = ", ".join(f"{c['label']}->{c['top']} x{c['count']}" for c in conf[:5])
        lines.append(f"{'':10s} top confusions (label->teacher top): {shown}")
    topk = attrs.get("topk")
    if topk:
        lines.append(
            f"{'':10s} legacy top-{topk['k']} side copy (retired `sort --topk`): "
            f"{topk['bytes_per_sample_view']} B/sample-view "
            f"(dense {topk['dense_bytes_per_sample_view']}), "
            f"mean KL(T=4) {topk['mean_kl_t4']:.3g}"
        )
    return lines


def _describe(info: dict[str, Any]) -> str:
    """The teacher's preprocessing in one line (info dicts before it existed: the dataset's)."""
    record = info.get("teacher_preprocess")
    if record is None:
        ds = info["dataset"]
        return TeacherPreprocess.for_dataset(ds["mean"], ds["std"]).describe()
    return TeacherPreprocess.from_dict(record).describe()


def _derivation_line(step: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in step.items() if k not in ("source", "created")]
    return f"from {step.get('source')} ({step.get('created')}): {', '.join(parts)}"


def _fidelity_lines(kind: str, fid: dict[str, Any] | None) -> list[str]:
    """A sparse kind's fidelity, measured on the dense rows when it was made."""
    if not fid:
        return []
    if "summary" in fid:  # a record that states itself (sampled kinds)
        return [f"{kind:10s} {fid['summary']}"]
    kl = "  ".join(f"T={t}: {v:.3g}" for t, v in fid["mean_kl"].items())
    lines = [
        f"{kind:10s} top-{fid['k']} fidelity: mean KL(dense || sparse) {kl}; label outside "
        f"the top {fid['k']}: {fid['label_outside_topk']:.3f} of rows"
    ]
    per_view = " ".join(f"{v['label_outside_topk']:.3f}" for v in fid.get("per_view", []))
    if per_view:
        lines.append(f"{'':10s} label outside top-{fid['k']} per view: {per_view}")
    return lines
