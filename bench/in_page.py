"""The pad's answers in the page while the pen moves (tabs/pad.py, tabs/pad_model.js), timed in Chromium.

A phone-sized page with an empty cache opens the app and its Predict tab, then draws strokes as a hand does: the
mouse moves every MOVE_MS, as a 60 Hz pointer reports a drag. Measured in the page:
- each in-page answer's delay from the pointer event it answers (goal: p95 within 50 ms);
- the gaps between answers while the pen moves (goal: a new answer at least every 100 ms), from the answer before
  and from the first pointer event after it;
- the bytes the page downloaded before its first in-page answer (goal: under 3 MB), and of them the model's
  weights and the in-page script.

    python -m bench.in_page [--weights-dir weights] [--strokes 10]   # starts the app itself, prints JSON
"""

import argparse
import bisect
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import ROOT
from .app import CHROMIUM, CHROMIUM_ARGS, ENVIRONMENT, STROKES, browser_missing, draw, running_app
from .report import figure, percentiles

MOVE_MS = 16  # between pointer events: a 60 Hz drag
PHONE = {"width": 390, "height": 844}
STEPS = 12  # pointer events per segment of a stroke
IN_PAGE = "document.querySelector('#pad .pad').parentElement.inPage"  # tabs/pad.py keeps its reads there
# Bytes the page has downloaded, by what: every resource so far (resource timing's transferSize: compressed, headers
# included; 0 for one from the cache), the page itself, and the model's weights.
DOWNLOADED = """() => {
  const entries = performance.getEntriesByType('resource');
  const page = performance.getEntriesByType('navigation')[0]?.transferSize ?? 0;
  const sum = (list) => list.reduce((total, entry) => total + (entry.transferSize || 0), 0);
  return {total: page + sum(entries), weights: sum(entries.filter((e) => e.name.includes('/pad/model/')))};
}"""


@dataclass
class Gaps:
    """The gaps between in-page answers shown while strokes were drawn (ms), each measured twice: from the answer
    before, and from the first pointer event after that answer (the moment the page had something new to read). The
    two differ where the pointer itself paused: the browser's driver did not move it for a while."""
    after_answer: list[float] = field(default_factory=list)
    after_move: list[float] = field(default_factory=list)

    def add(self, times: list[float], moves: list[float], start: float, end: float) -> None:
        """The gaps of one stroke drawn between `start` and `end`: its answers' and its pointer events' times (both
        in the order they happened)."""
        shown = [t for t in times if start <= t <= end]
        for earlier, later in zip(shown, shown[1:]):
            self.after_answer.append(later - earlier)
            after = bisect.bisect_right(moves, earlier)  # the first pointer event after the earlier answer
            if after < len(moves) and moves[after] < later:  # none before the later one: no answer was owed
                self.after_move.append(later - moves[after])


def measure(page, url: str, strokes: int) -> dict:
    page.goto(url, timeout=120_000)
    page.get_by_role("tab", name="2 · Predict").first.click(timeout=60_000)
    page.wait_for_function(f"{IN_PAGE} && ({IN_PAGE}.ready || {IN_PAGE}.failed)", timeout=60_000)
    failed = page.evaluate(f"{IN_PAGE}.failed")
    if failed:
        return {"not_measured": f"the page could not run the model: {failed}"}
    gaps = Gaps()
    for index in range(strokes):
        page.locator("#pad button[aria-label='Clear canvas']").first.click()
        start = page.evaluate("performance.now()")
        draw(page, STROKES[index % len(STROKES)], STEPS, MOVE_MS)
        end = page.evaluate("performance.now()")
        gaps.add(page.evaluate(f"{IN_PAGE}.times"), page.evaluate(f"{IN_PAGE}.moves"), start, end)
        if index == 0:
            downloaded = page.evaluate(DOWNLOADED)
    delays = page.evaluate(f"{IN_PAGE}.delays")
    return {"answer_ms": percentiles(delays, goal_p95=50),
            "gap_ms": gap_figures(gaps.after_answer),
            "gap_after_move_ms": gap_figures(gaps.after_move),
            "downloaded_mb": figure(downloaded["total"] / 1e6, "MB", goal=3),
            "weights_mb": figure(downloaded["weights"] / 1e6, "MB"),
            "strokes": strokes,
            "method": f"Chromium {PHONE['width']}×{PHONE['height']}, empty cache; {strokes} strokes (a 1, a 7, a 0 in "
                      f"turn) on a cleared pad, a pointer event every {MOVE_MS} ms; delays and gaps read in the page; "
                      "bytes: resource timing's transferSize of every download before the first stroke's end."}


def gap_figures(gaps: list[float]) -> dict:
    return percentiles(gaps) | {"max": figure(max(gaps, default=None), "ms", goal=100),
                                "over_100": figure(sum(gap > 100 for gap in gaps), "gaps", goal=0)}


def bench_in_page(url: str, strokes: int) -> dict:
    """The in-page figures; not measured (with the reason) when Chromium or playwright is missing."""
    reason = browser_missing()
    if reason:
        return {"not_measured": reason}
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            return measure(browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page(), url,
                           strokes)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.in_page", description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "weights")
    parser.add_argument("--strokes", type=int, default=10)
    args = parser.parse_args(argv)
    if args.strokes < 1:
        parser.error("--strokes: at least 1 (the bytes are read after the first)")
    with tempfile.TemporaryDirectory(prefix="vit-bench-") as workdir, \
            running_app(args.weights_dir, Path(workdir) / "app.log", os.environ | ENVIRONMENT) as (url, _):
        print(json.dumps(bench_in_page(url, args.strokes), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
