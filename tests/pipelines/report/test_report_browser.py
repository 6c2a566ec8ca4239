"""report.html in a real browser: headless Chromium (Debian's ``chromium``) with every
network request sent to a dead proxy opens it, renders the tables and the curves (a
screenshot that is not blank), and the numbers in its DOM equal report.json's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.pipelines.report import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking", "--disable-sync",
        # the network is off: every request goes to a proxy where nothing listens
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class _Cells(HTMLParser):
    """Every cell that names a report.json field, every table and every image."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.tables: list[str] = []
        self.images: list[str] = []
        self._open: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "td" and a.get("data-field"):
            self._open, self._text = (a["data-field"] or "", a.get("data-value") or ""), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open is not None:
            self.cells.append((*self._open, self._text))
            self._open = None


def _field(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def test_report_in_headless_chromium(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    report([str(runs)], out)
    page = (out / "report.html").read_text()
    assert not re.search(r"""(?:src|href)=["'](?!data:)""", page), "a resource not embedded"
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(?:https?:)?//[a-z0-9]", text, re.IGNORECASE), "an external URL"
    url = (out / "report.html").as_uri()
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout)
    assert cells.tables == ["results", "paired-by-seed", "provenance"]
    assert len(cells.images) == 2
    assert all(s.startswith("data:image/png;base64,") for s in cells.images)
    data = json.loads((out / "report.json").read_text())
    caches = len(data["provenance"]["caches"])
    assert len(cells.cells) == 5 * len(data["variants"]) + 6 * len(data["paired"]) + caches
    for field, value, text in cells.cells:
        want = _field(data, field)
        if want is None:
            assert (value, text) == ("", "n/a")
            continue
        assert float(value) == want, field  # the exact value, as report.json holds it
        shown = format(want, "d" if isinstance(want, int) else ".2f")
        assert text.lstrip("+") == shown.lstrip("+"), field

    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1200,2200", url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.var() > 100.0, "a blank screenshot"
    # the curves are drawn: the lower half of the page (the figures) is not blank either
    assert pixels[pixels.shape[0] // 3 :].var() > 100.0
    colour = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    spread = (colour.max(axis=2) - colour.min(axis=2)) > 60
    assert spread.sum() > 500, "no coloured curve on the page"
