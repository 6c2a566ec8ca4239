"""Integrity of the metadata: a sha256 over each node's canonical ``zarr.json``.

Every node the stages write (the root group and each array) carries the attribute
``sortkd_cache_sha256`` = ``"sha256:<hex>"`` over the canonical JSON form of its whole
``zarr.json`` document without that one attribute: keys sorted, no whitespace, ASCII escapes.
The digest covers every value of the document: the provenance record, shape, chunks, dtype,
fill value, codecs and every attribute. No field is left out as "informational": the writers
recompute the digest on every metadata write, so excluding a field would buy nothing, and
``info`` shows each field to someone who trusts it. Only the formatting (whitespace, key
order, escapes) is not covered, because it changes nothing a reader does.

This is integrity against careless edits and damage, not authenticity: whoever can write the
store can recompute a digest (see the README's trust model).

Writers compute the digest of the document zarr will write (``metadata.to_buffer_dict``)
before writing it, so a node is never on disk without its digest. Readers (on open) and
``verify`` check it over the raw bytes of the file (:func:`doc_problem`), so a field zarr
ignores or fills in with a default is covered too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import zarr
from zarr.storage import MemoryStore
from zarr.types import AnyArray

from sortkd_cache.errors import SchemaError
from sortkd_cache.store._zarr_compat import (
    ArrayV2Metadata,
    ArrayV3Metadata,
    GroupMetadata,
    default_buffer_prototype,
    run_sync,
)

__all__ = [
    "DIGEST_KEY",
    "INFORMATIONAL",
    "canonical",
    "check_node",
    "create_checked_array",
    "create_checked_group",
    "doc_problem",
    "metadata_doc",
    "node_digest",
    "with_digest",
]

#: the metadata of a node (an array of either zarr format, or a group)
NodeMetadata = ArrayV2Metadata | ArrayV3Metadata | GroupMetadata

DIGEST_KEY = "sortkd_cache_sha256"
#: fields excluded from the digest: none (see the module docstring)
INFORMATIONAL: tuple[str, ...] = ()


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The canonical form of a ``zarr.json`` document, without its digest attribute."""
    body = dict(doc)
    attrs = body.get("attributes")
    if isinstance(attrs, dict):
        body["attributes"] = {k: v for k, v in attrs.items() if k != DIGEST_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def node_digest(doc: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def metadata_doc(metadata: NodeMetadata) -> dict[str, Any]:
    """The document zarr writes for ``metadata`` (an array's or a group's), parsed."""
    raw = metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()
    doc: dict[str, Any] = json.loads(raw)
    return doc


def with_digest(metadata: NodeMetadata, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` plus the digest of the node ``metadata`` becomes with them.

    Values go through JSON first, so what is hashed is what is written."""
    attrs = json.loads(json.dumps({k: v for k, v in attributes.items() if k != DIGEST_KEY}))
    doc = metadata_doc(dataclasses.replace(metadata, attributes=attrs))
    return {**attrs, DIGEST_KEY: node_digest(doc)}


def doc_problem(doc: object, required: bool) -> str | None:
    """What is wrong with a parsed document's digest, or None.

    ``required``: a schema >= 3 store, whose every node must carry one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("attributes", {}), dict):
        return "is not a zarr metadata document"
    stored = doc.get("attributes", {}).get(DIGEST_KEY)
    if stored is None:
        return "has no metadata checksum (sortkd_cache_sha256)" if required else None
    if stored != node_digest(doc):
        return (
            "metadata does not match its checksum (sortkd_cache_sha256): the file was edited "
            "or damaged after it was written"
        )
    return None


def check_node(group: zarr.Group, key: str, required: bool, where: str) -> None:
    """Raise :class:`SchemaError` naming ``key`` when the node's checksum, over the raw bytes
    of its ``zarr.json`` (so a field zarr ignores or defaults is covered too), is wrong."""
    raw = run_sync(group.store.get(key, default_buffer_prototype()))
    try:
        doc = json.loads(raw.to_bytes()) if raw is not None else None
    except ValueError:
        doc = None
    problem = doc_problem(doc, required)
    if problem is not None:
        raise SchemaError(f"store '{where}': {key} {problem}")


def create_checked_array(
    group: zarr.Group, path: str, attributes: Mapping[str, Any] | None, **kw: Any
) -> AnyArray:
    """Create (replacing) an array whose metadata carries its checksum from the start: the
    document is built in memory first, so no reader ever sees the node without one."""
    attrs = dict(attributes or {})
    probe = zarr.create_array(MemoryStore(), attributes=attrs, **kw)
    return group.create_array(
        path, attributes=with_digest(probe.metadata, attrs), overwrite=True, **kw
    )


def create_checked_group(group: zarr.Group, path: str, attributes: Mapping[str, Any]) -> zarr.Group:
    """Create (replacing) a group whose metadata carries its checksum from the start."""
    attrs = dict(attributes)
    probe = zarr.open_group(MemoryStore(), mode="w").create_group("g", attributes=attrs)
    return group.create_group(path, overwrite=True, attributes=with_digest(probe.metadata, attrs))
