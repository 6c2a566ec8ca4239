"""report.md and report.html from report.json's data (one set of tables for both).

Every number shown comes from a field of report.json; in the HTML its cell names that field
(``data-field="variants.0.mean"``) and holds its exact value (``data-value``), so a reader
(or a test, through a browser's DOM) checks the page against the JSON. The HTML embeds its
style and its figures (PNG, base64): it fetches nothing and opens offline.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any

from sortkd_cache.pipelines.recipes import context_lines
from sortkd_cache.pipelines.report._plot import curves_png, paired_png

__all__ = ["render_html", "render_markdown"]


@dataclass(frozen=True)
class Cell:
    text: str
    field: str | None = None  #: the report.json path of the number shown
    value: float | int | None = None


@dataclass(frozen=True)
class Table:
    title: str
    note: str
    headers: tuple[str, ...]
    rows: list[list[Cell]]


def _num(data: dict[str, Any], path: str, spec: str = ".2f") -> Cell:
    value: Any = data
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("n/a", path, None)
    return Cell(format(value, spec), path, value)


def _variants_table(data: dict[str, Any]) -> Table:
    rows = []
    for i, v in enumerate(data["variants"]):
        p = f"variants.{i}"
        rows.append(
            [Cell(v["name"]), Cell(", ".join(map(str, v["seeds"]))), _num(data, f"{p}.mean"),
             _num(data, f"{p}.std"), _num(data, f"{p}.min"), _num(data, f"{p}.max"),
             _num(data, f"{p}.n", "d")]
        )  # fmt: skip
    note = "Final-epoch test top-1 (%) over the seeds; std is the sample standard deviation."
    headers = ("variant", "seeds", "mean", "± std", "min", "max", "n")
    return Table("Results", note, headers, rows)


def _paired_table(data: dict[str, Any]) -> Table:
    rows = []
    for i, q in enumerate(data["paired"]):
        p = f"paired.{i}"
        rows.append(
            [Cell(f"{q['variant']} - {q['baseline']}"), Cell(", ".join(map(str, q["seeds"]))),
             _num(data, f"{p}.mean", "+.2f"), _num(data, f"{p}.std"),
             _num(data, f"{p}.low", "+.2f"), _num(data, f"{p}.high", "+.2f"),
             _num(data, f"{p}.agree", "d"), _num(data, f"{p}.n", "d"),
             Cell("within noise" if q["within_noise"] else "beyond noise")]
        )  # fmt: skip
    note = (
        "Differences of the same seed (same initialisation and data order), over the seeds "
        "both have: mean ± std, the 95% t-interval of the mean, and how many seeds agree in "
        "sign with the mean."
    )
    headers = ("variant - baseline", "seeds", "Δ mean", "± std", "95% low", "95% high",
               "agree", "of", "")  # fmt: skip
    return Table("Paired by seed", note, headers, rows)


def _provenance_table(data: dict[str, Any]) -> Table:
    rows = [
        [Cell(c["label"]), Cell(c["store_id"] or "-"), Cell(c["teacher_sha256"] or "-"),
         Cell(c["dataset_fingerprint"] or "-"), _num(data, f"provenance.caches.{i}.runs", "d")]
        for i, c in enumerate(data["provenance"]["caches"])
    ]  # fmt: skip
    flags = data["provenance"]["flags"]
    note = ("**Warning:** " + "; ".join(flags) + ".") if flags else "All runs share one source."
    headers = ("source", "store id", "teacher sha256", "dataset fingerprint", "runs")
    return Table("Provenance", note, headers, rows)


def _tables(data: dict[str, Any]) -> list[Table]:
    tables = [_variants_table(data)]
    if data["paired"]:
        tables.append(_paired_table(data))
    return [*tables, _provenance_table(data)]


def _intro(data: dict[str, Any]) -> list[str]:
    runs = sum(v["n"] for v in data["variants"])
    varying = ", ".join(data["varying"]) or "nothing but the seed"
    lines = [
        f"{runs} runs in {len(data['variants'])} variants from {', '.join(data['inputs'])}.",
        f"The runs differ in: {varying}.",
    ]
    if data.get("baseline"):
        lines.append(f"Baseline: {data['baseline']}.")
    return lines


def _extras(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Titled lists: the conclusion, the recipe's context, the unfinished runs."""
    out = [("Conclusion", data["conclusions"] or ["No paired differences: nothing to compare."])]
    if data.get("context"):
        out.append(("Context", context_lines(data["context"])))
    if data["unfinished"]:
        out.append(("Not in the table", [f"{u['path']}: {u['why']}" for u in data["unfinished"]]))
    return out


def _md_table(t: Table) -> list[str]:
    lines = [f"## {t.title}", "", t.note, "", "| " + " | ".join(t.headers) + " |"]
    lines.append("|" + "---|" * len(t.headers))
    lines += ["| " + " | ".join(c.text for c in row) + " |" for row in t.rows]
    return [*lines, ""]


def render_markdown(data: dict[str, Any]) -> str:
    """The tables first and the conclusion last (where a terminal leaves the reader)."""
    lines = ["# Report", "", *_intro(data), ""]
    for t in _tables(data):
        lines += _md_table(t)
    lines.append("Curves (test top-1 and loss by epoch, a band over seeds): report.html.\n")
    extras = _extras(data)
    for title, items in [*extras[1:], extras[0]]:
        lines += [f"## {title}", "", *(f"- {s}" for s in items), ""]
    return "\n".join(lines)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;overflow-wrap:anywhere}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef}.warn{color:#a00;font-weight:bold}img{max-width:100%}
"""


def _cell(c: Cell) -> str:
    if c.field is None:
        return f"<td>{html.escape(c.text)}</td>"
    value = "" if c.value is None else repr(c.value)
    return (
        f'<td class="num" data-field="{html.escape(c.field)}" data-value="{value}">'
        f"{html.escape(c.text)}</td>"
    )


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in t.rows)
    note = html.escape(t.note.replace("**", ""))
    cls = ' class="warn"' if t.note.startswith("**") else ""
    return (
        f"<h2>{html.escape(t.title)}</h2><p{cls}>{note}</p>"
        f'<table id="{t.title.lower().replace(" ", "-")}"><tr>{head}</tr>{body}</table>'
    )


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _list(title: str, items: list[str]) -> str:
    lis = "".join(f"<li>{html.escape(s)}</li>" for s in items)
    return f"<h2>{html.escape(title)}</h2><ul>{lis}</ul>"


def render_html(data: dict[str, Any]) -> str:
    extras = _extras(data)
    parts = ["<h1>Report</h1>", *(f"<p>{html.escape(s)}</p>" for s in _intro(data))]
    parts.append(_list(*extras[0]))
    parts += [_html_table(t) for t in _tables(data)]
    parts += ["<h2>Curves</h2>", _img(curves_png(data["variants"]), "curves")]
    if data["paired"]:
        parts += ["<h2>Paired differences</h2>", _img(paired_png(data["paired"]), "paired")]
    parts += [_list(title, items) for title, items in extras[1:]]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>sortkd-cache '
        f"report</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
