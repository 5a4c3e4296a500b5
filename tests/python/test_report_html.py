"""report.html in a real browser: a sample day's report (the `report_page` example: the report run
over a busy day in memory) rendered by headless Chromium to a PNG that must not be blank, and the
charts of the DOM Chromium loaded checked against the day's summary.json.

Needs Chromium (Debian: `apt-get install -y chromium`); without it the test is skipped and says
so. `REPORT_HTML_SCREENSHOT=docs/report.png` also keeps the screenshot (the README's is this one).
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stack import ROOT

WINDOW = "1280,2000"


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip("Chromium is not installed, so report.html is not rendered in a browser: "
                "install it with 'apt-get install -y chromium' (Debian) or set CHROMIUM to a "
                "Chromium or Chrome binary")


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions"]
    if os.geteuid() == 0:
        # Chromium refuses to run its sandbox as root (CI containers).
        flags.append("--no-sandbox")
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=180,
                          check=False)


def sample_day(out: Path) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    example = target / "debug" / "examples" / "report_page"
    if not example.exists():
        raise RuntimeError(f"{example} is missing: build it with "
                           "'cargo build --workspace --example report_page'")
    subprocess.run([str(example), str(out)], check=True, timeout=120)
    return out / "report.html"


def png_rows(data: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `rows` rows of an 8-bit RGB or RGBA PNG, unfiltered."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG form {header}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(bytes(idat), (stride + 1) * rows)
    prev, out = bytearray(stride), []
    for r in range(min(rows, height)):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        out.append(bytes(line))
        prev = line
    return width, height, out


class Charts(HTMLParser):
    """The data attributes of the page: bars per chart, lag points, totals and failure rows."""

    def __init__(self):
        super().__init__()
        self.svg = None
        self.table = None
        self.bars = defaultdict(list)
        self.points = []
        self.totals = {}
        self.reasons = {}
        self.links = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svg = a.get("id")
        elif tag == "table":
            self.table = a.get("id")
        elif tag == "rect" and "data-state" in a:
            self.bars[self.svg].append(a)
        elif tag == "circle" and "data-quantile" in a:
            self.points.append(a)
        elif tag == "tr" and self.table == "totals" and "data-state" in a:
            self.totals[a["data-state"]] = (int(a["data-files"]), int(a["data-bytes"]))
        elif tag == "tr" and self.table == "failures" and "data-reason" in a:
            self.reasons[a["data-reason"]] = int(a["data-files"])
        elif tag == "a" and self.table == "parts":
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None
        elif tag == "table":
            self.table = None


def test_report_html_renders_in_chromium_with_the_day_s_totals(tmp_path):
    browser = chromium()
    page = sample_day(tmp_path / "day")
    day = page.parent
    summary = json.loads((day / "summary.json").read_text())
    manifest = json.loads((day / "manifest.json").read_text())

    # Listed in the manifest like every other file of the day, with its MD5 (the manifest, its
    # checksum and the report's own journal of the parts it wrote are not report files).
    listed = {f["key"].split("/", 3)[3]: f for f in manifest["files"]}
    on_disk = {str(p.relative_to(day)) for p in day.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json", "manifest.checksum", "_journal.json"}
    body = page.read_bytes()
    assert listed["report.html"]["md5"] == hashlib.md5(body).hexdigest()
    assert listed["report.html"]["size"] == len(body)

    # Rendered: a PNG of the window's size, not blank.
    shot = tmp_path / "report.png"
    run = headless(browser, f"--screenshot={shot}", f"--window-size={WINDOW}", page.as_uri())
    assert shot.exists(), f"Chromium wrote no screenshot:\n{run.stderr[-2000:]}"
    width, height, rows = png_rows(shot.read_bytes(), 700)
    assert (width, height) == tuple(int(x) for x in WINDOW.split(","))
    pixels = Counter()
    for line in rows[::7]:
        bpp = len(line) // width
        pixels.update(line[i:i + 3] for i in range(0, len(line), bpp * 5))
    white = pixels.most_common(1)[0][1] / sum(pixels.values())
    assert len(pixels) > 20 and white < 0.95, f"blank page? {len(pixels)} colours, {white:.0%} one colour"
    # The files chart's green (copied) bars are drawn.
    assert pixels[bytes.fromhex("2e8b57")] > 100, "no copied bars in the screenshot"
    if os.environ.get("REPORT_HTML_SCREENSHOT"):
        shutil.copy(shot, os.environ["REPORT_HTML_SCREENSHOT"])

    # The charts in the DOM Chromium loaded carry the summary's totals.
    run = headless(browser, "--dump-dom", page.as_uri())
    assert "</svg>" in run.stdout, f"Chromium dumped no DOM:\n{run.stderr[-2000:]}"
    charts = Charts()
    charts.feed(run.stdout)
    states = {k: v for k, v in summary["file_states"].items() if v}
    assert summary["file_count"] > 500 and len(states) >= 5, "a realistic day"
    for chart in ("files-chart", "bytes-chart"):
        bars = charts.bars[chart]
        files = Counter()
        for bar in bars:
            files[bar["data-state"]] += int(bar["data-files"])
        assert dict(files) == states, chart
        assert sum(int(b["data-bytes"]) for b in bars) == summary["bytes"], chart
        assert len({b["data-hour"] for b in bars}) == 24, chart
    assert charts.totals["all"] == (summary["file_count"], summary["bytes"])
    assert {k: v[0] for k, v in charts.totals.items() if k != "all" and v[0]} == states
    # Failure reasons count the failed files (failed, invalid, deferred), not attempts.
    failed = sum(summary["file_states"][s] for s in ("failed", "invalid", "deferred"))
    assert sum(charts.reasons.values()) == failed
    assert len(charts.reasons) >= 3 and "SlowDown" not in charts.reasons
    # A key with markup in it is shown as text.
    assert "<draft>" not in run.stdout.replace("&lt;draft&gt;", "")
    # Lag points: p50 <= p90 <= p99 in every hour, and the day's p99 within the hours' range.
    by_hour = defaultdict(dict)
    for p in charts.points:
        by_hour[p["data-hour"]][p["data-quantile"]] = int(p["data-ms"])
    assert len(by_hour) == 24
    assert all(q["p50"] <= q["p90"] <= q["p99"] for q in by_hour.values())
    assert max(q["p99"] for q in by_hour.values()) >= summary["lag_ms"]["p99"]
    # Every CSV part is linked, relative to the page, and is there.
    parts = sorted(str(p.relative_to(day)) for p in day.glob("*_list/part-*.csv"))
    assert sorted(charts.links) == parts
    assert sum(v["parts"] for v in summary["lists"].values()) == len(parts)
