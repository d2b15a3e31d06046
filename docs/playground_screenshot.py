"""Takes docs/playground.png: the playground answering a demo question, against a running `make demo`.

    make demo                       # in one shell; wait for "serving"
    .venv/bin/python docs/playground_screenshot.py   # in another

Uses the system's chromium (CHROMIUM, else the one on PATH), as the tests do.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default="acme-demo-key", help="a tenant's API key (the demo's acme)")
    parser.add_argument("--question", default="What year was Acme Robotics started?")
    parser.add_argument("--admin-key", default="demo-admin-key", help="also open the admin panel ('' not to)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("playground.png"))
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("no chromium: run `make setup`, or set CHROMIUM=/path/to/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{args.url}/playground")
        page.get_by_test_id("api-key").fill(args.key)
        page.get_by_test_id("connect").click()
        expect(page.get_by_test_id("send")).to_be_enabled()
        page.get_by_test_id("message-input").fill(args.question)
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("answer").last).to_have_attribute("data-state", "done", timeout=180_000)
        if args.admin_key:
            page.locator("#admin-details > summary").click()
            page.get_by_test_id("admin-key").fill(args.admin_key)
            page.get_by_test_id("admin-load").click()
            expect(page.get_by_test_id("tenant-row").first).to_be_visible()
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
