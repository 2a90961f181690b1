"""What the gallery tests check on a built folder, and the small image folder they build from."""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest

from neuronscope.data.sources import bundled_source
from neuronscope.gallery import serve_in_background
from neuronscope.images import save_png


def make_image_folder(folder: Path) -> Path:
    """Twelve bundled crops as PNG files in two sub-folders, and one corrupt file."""
    source = bundled_source()
    for i, key in enumerate(source.keys()[::28][:12]):
        save_png(folder / ("a" if i % 2 else "b") / f"{i:02d}.png", source.load(key))
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def cli(*args: str) -> list[str]:
    """The command line of ``neuronscope ARGS`` in a fresh Python process."""
    return [sys.executable, "-c", "import sys; from neuronscope.cli import main; sys.exit(main())", *args]


def manifest(out: Path) -> dict:
    return json.loads((out / "efficientnet_lite0" / "manifest.json").read_text())


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("href", "src") and value]


def broken_links(out: Path) -> list[str]:
    broken = []
    for page in out.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            target = link.split("#")[0]
            if target and not target.startswith("data:") and not (page.parent / target).resolve().is_file():
                broken.append(f"{page.relative_to(out)} -> {link}")
    return broken


def partial_files(out: Path) -> list[Path]:
    return list(out.rglob(".*.tmp"))




CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Debian's Chromium for the browser tests (``.ci/run`` installs it; the tests skip without it)."""


def open_page(playwright, failed: list[str]):
    """A headless Chromium page (with the flags a closed network needs) that records every failed
    request or error response in ``failed``; returns (browser, page)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])
    page = browser.new_page()
    page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return browser, page


@contextmanager
def browsing(out: Path) -> Iterator[tuple]:
    """A headless Chromium page (``open_page``) and a server of ``out`` on loopback for the block:
    yields (page, base URL, the list of failed requests and console errors)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    server, url = serve_in_background(out)
    failed: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser, page = open_page(p, failed)
            page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
            try:
                yield page, url, failed
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def broken_images(page) -> list[str]:
    """The images of the page that did not load."""
    return page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
