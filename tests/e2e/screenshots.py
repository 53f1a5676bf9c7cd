"""``python -m tests.e2e.screenshots`` (``make screenshots``): the README's pictures.

Starts the real app against a fresh database and the provider emulator, goes
through first start, signs a user up with a few keys in different states,
and saves docs/screenshots/dashboard.png and docs/screenshots/key-form.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e import flows
from tests.e2e.live import ROOT, chromium_missing, launch_options, start_server
from tests.emulator import Emulator
from tests.fakekeys import fake_key

OUT = ROOT / "docs" / "screenshots"


def _save(page, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f"{name}.tmp.png"
    page.screenshot(path=str(tmp), full_page=True)
    final = OUT / f"{name}.png"
    tmp.replace(final)
    return final


def main() -> int:
    if problem := chromium_missing():
        print(problem, file=sys.stderr)
        return 1
    emulator = Emulator().start()
    with tempfile.TemporaryDirectory(prefix="keyhold-shots-") as folder:
        server = start_server(Path(folder), emulator)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(**launch_options())
                page = browser.new_page(viewport={"width": 1200, "height": 760})
                flows.first_start(page, server)
                flows.log_out(page)
                flows.register(page, server, "maya@example.com")
                for provider in ("openai", "anthropic", "mistral"):
                    flows.add_key(page, server, provider, emulator.valid_key(provider))
                emulator.set_mode("groq", "down")
                flows.add_key(page, server, "groq", emulator.valid_key("groq"))
                page.goto(server.url + "/keys/")
                print(_save(page, "dashboard"))
                flows.add_key(page, server, "gemini", fake_key("gemini"))
                page.get_by_label("API key").focus()
                print(_save(page, "key-form"))
                browser.close()
        finally:
            server.stop()
            emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
