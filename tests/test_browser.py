"""The app in a real browser: Debian's Chromium driven by Playwright draws a digit and opens every tab.

Served with the committed weights. Screenshots go to a temporary folder; with VIT_SCREENSHOTS=1 they
refresh the README's pictures in docs/screenshots/ instead (tests write nothing into the repo otherwise).
Skipped when /usr/bin/chromium is missing, except in CI (the CI variable set), where that is a failure.
"""

import math
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from server import running_app
from vit.bundle import bundled_folders
from vit.datasets import DATASETS

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# (tab, screenshot name as the README uses it, the picture that shows the tab has rendered)
TABS = [("1 · Tiling", "tiling", "#tiling-picture img"), ("2 · Predict", "predict", "#occlusion img"),
        ("3 · How it decides", "walk", "#walk-tiles img"), ("4 · Which map to trust?", "trust", "#trust-curves img"),
        ("5 · Confusion", "confusion", "#confusion img"), ("6 · Worst losses", "worst-losses", "#worst img"),
        ("7 · What it learned", "positions", "#positions img"),
        ("8 · Attention by label", "attention-by-label", "#label-attention img"),
        ("9 · Compare the cuts", "compare", "#zoo-figure img"), ("11 · Teach it", "teach", "#teach-pad canvas"),
        ("About the model", "about", "#reliability img")]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if os.environ.get("CI"):
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def served(browser, tmp_path_factory):
    """(URL, weights folder, screenshot folder) of a running app."""
    weights = ROOT / "weights"
    shots = SCREENSHOTS if os.environ.get("VIT_SCREENSHOTS") == "1" else tmp_path_factory.mktemp("shots")
    shots.mkdir(parents=True, exist_ok=True)
    with running_app(weights, tmp_path_factory.mktemp("browser-server") / "app.log") as (url, process):
        yield url, weights, shots, process.pid


@pytest.fixture
def page(browser, served):
    url = served[0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#model-info", timeout=60_000)
    yield page
    context.close()


def no_error_shown(page) -> None:
    toasts = page.locator('[data-testid="toast-body"].error, [data-testid="toast-body"].warning')
    assert toasts.count() == 0, toasts.all_inner_texts()
    assert "Traceback" not in page.content()


def image_ready(page, selector: str, timeout: float = 90) -> dict:
    """Wait until the <img> (or <canvas>) under `selector` has loaded; its natural and displayed size."""
    page.wait_for_selector(selector, state="visible", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        size = page.locator(selector).first.evaluate(
            "img => ({natural: img.naturalWidth ?? img.width, height: img.naturalHeight ?? img.height,"
            " shown: img.getBoundingClientRect().width})")
        if size["natural"] > 0 and size["shown"] > 0:
            return size
        time.sleep(0.2)
    raise AssertionError(f"{selector} did not load")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def wait_for_text(page, selector: str, pattern: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = page.locator(selector).inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{selector} never matched {pattern!r}; last text: {text!r}")


def wait_for_alt(page, selector: str, words: str, timeout: float = 60) -> str:
    """Wait until the alt text of the picture under `selector` says `words` (a picture of that, not an earlier one)."""
    deadline = time.monotonic() + timeout
    alt = ""
    while time.monotonic() < deadline:
        alt = page.locator(selector).first.get_attribute("alt") or ""
        if words in alt:
            return alt
        time.sleep(0.2)
    raise AssertionError(f"{selector}'s alt text never said {words!r}; last: {alt!r}")


def draw(page, strokes: list[list[tuple[float, float]]], pad: str = "#pad") -> None:
    """Draw strokes on a drawing pad (the Predict tab's unless `pad` names another); points are fractions of its
    square canvas."""
    canvas = page.locator(f"{pad} canvas").first
    canvas.wait_for(timeout=30_000)
    canvas.scroll_into_view_if_needed()  # the mouse reaches only what is in view
    box = canvas.bounding_box()
    side, left, top = box["width"], box["x"], box["y"]
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(left + x * side, top + y * side)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(left + x * side, top + y * side)
        page.mouse.up()


def shown_label(page) -> str:
    """The heading of the prediction gr.Label: the top class, or a message."""
    return page.locator('#prediction [data-testid="label-output-value"]').inner_text().strip()


def line(start: tuple[float, float], end: tuple[float, float], points: int = 6) -> list[tuple[float, float]]:
    return [(start[0] + (end[0] - start[0]) * i / points, start[1] + (end[1] - start[1]) * i / points)
            for i in range(points + 1)]


def test_drawing_a_digit_shows_its_prediction(page, served):
    open_tab(page, "2 · Predict")
    draw(page, [line((0.5, 0.2), (0.5, 0.8))])  # a "1"
    status = wait_for_text(page, "#status", r"your drawing")
    assert shown_label(page) == "1", (status, page.locator("#prediction").inner_text())
    for picture in ("#seen", "#attention", "#rollout", "#saliency", "#occlusion"):
        image_ready(page, picture + " img")
    wait_for_alt(page, "#seen img", "your drawing")  # the maps follow the label: they are of the drawing now
    wait_for_alt(page, "#occlusion img", "class 1")
    no_error_shown(page)
    page.screenshot(path=str(served[2] / "predict.png"), full_page=True)

    page.locator("#pad button[aria-label='Clear canvas']").first.click()
    wait_for_text(page, "#status", r"Draw a digit")  # blank canvas: a prompt, not a confident guess
    assert shown_label(page) == "Draw a digit"
    assert page.locator("#prediction meter").count() == 0  # no confidence bars
    draw(page, [line((0.5, 0.2), (0.5, 0.8))])  # the pad draws again at once
    wait_for_text(page, "#status", r"your drawing")
    no_error_shown(page)


def test_drawing_a_seven_with_two_strokes(page, served):
    open_tab(page, "2 · Predict")
    # the bar alone is answered first ("not a digit" for the default model): wait for the answer to both strokes
    draw(page, [line((0.25, 0.22), (0.75, 0.22)), line((0.75, 0.22), (0.42, 0.82))])
    wait_for_text(page, "#status", r"your drawing: the model reads 7 ")
    assert shown_label(page) == "7"
    no_error_shown(page)


IN_PAGE = "document.querySelector('#pad .pad').parentElement.inPage"  # what tabs/pad.py keeps of the page's reads


def draw_slowly(page, stroke: list[tuple[float, float]], pause: int = 30) -> list[str]:
    """One stroke, the mouse pausing `pause` ms between points as a hand moves; the pad's in-page line after each."""
    canvas = page.locator("#pad canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    seen = []
    page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.wait_for_timeout(pause)
        seen.append(page.locator("#pad .pad-live").inner_text())
    page.mouse.up()
    return seen


def test_the_page_answers_while_the_pen_moves_and_reads_the_canvas_as_the_server(page):
    from tabs.pad_model import SCRIPT
    from vit.preprocess import open_data_url, to_model_input
    open_tab(page, "2 · Predict")
    wait_for_text(page, "#pad .pad-live", "while the pen moves")  # the weights are in the page
    seen = draw_slowly(page, line((0.3, 0.25), (0.7, 0.25), 10) + line((0.7, 0.25), (0.42, 0.8), 14)[1:])
    assert any("keep drawing" in text for text in seen[:8]), seen  # the bar alone: no digit yet
    assert any(re.search(r"while you draw: 7 \(\d+ %\)", text) for text in seen[8:]), seen  # before the pen lifts
    assert page.locator("#pad .pad-seen").is_visible()  # what the model sees, as the page reads it
    reads = page.evaluate(f"[{IN_PAGE}.delays.length, {IN_PAGE}.times.length, {IN_PAGE}.moves.length]")
    assert reads[0] >= 5 and reads[1] >= reads[0] and reads[2] >= len(seen), reads  # every pointer event is kept
    wait_for_text(page, "#status", r"your drawing: the model reads 7 ")  # and the server's answer on mouse-up
    # the canvas the server was sent, read by the page's script and by the server's Python
    page.add_script_tag(content=SCRIPT + "\nwindow.inPage = inPage;")
    sent, framed = page.evaluate("""() => {
        const canvas = document.querySelector('#pad canvas'), context = canvas.getContext('2d');
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const framing = {box: 20, by_mass: true, pen: true, crop_at: 0.2};
        return [canvas.toDataURL('image/png'), Array.from(inPage.frame(pixels, canvas.width, canvas.height, framing).input)];
    }""")
    server = to_model_input(open_data_url(sent)).numpy()
    assert np.abs(np.asarray(framed, dtype=np.float32).reshape(28, 28) - server).max() <= 1 / 255
    # another model: the page reads the drawing on the pad with it at once, not at the next stroke
    choose_model(page, "fashion-mnist")
    garment = "|".join(re.escape(name) for name in DATASETS["fashion-mnist"].class_names)
    wait_for_text(page, "#pad .pad-live",  # the garment model's verdict on a drawn 7, whichever it is
                  rf"while you draw: (this does not look like a fashion item|(unsure between )?({garment}) \()")
    with page.expect_response("**/pad/model/mnist-tiny") as response:
        choose_model(page, "mnist-tiny")
    assert response.value.ok
    wait_for_text(page, "#pad .pad-live", r"while you draw: 7 \(")
    no_error_shown(page)


def test_a_page_that_cannot_run_the_model_says_so_and_the_server_answers(page):
    page.route("**/pad/model/**", lambda route: route.abort())  # as a page whose download of the model fails
    page.reload()
    open_tab(page, "2 · Predict")
    wait_for_text(page, "#pad .pad-live", "could not run the model: the answers come from the server")
    draw(page, [line((0.5, 0.2), (0.5, 0.8))])
    wait_for_text(page, "#status", r"your drawing: the model reads 1 ")
    assert page.evaluate(IN_PAGE + ".delays").__len__() == 0
    no_error_shown(page)


def test_strokes_drawn_while_the_first_is_read_are_in_the_answer(browser, tmp_path):
    # a server of its own: the first read after start-up is slow, so the flag's stroke is drawn while it runs
    with running_app(ROOT / "weights", tmp_path / "app.log") as (url, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        open_tab(page, "2 · Predict")
        draw(page, [line((0.42, 0.35), (0.55, 0.2)), line((0.55, 0.2), (0.55, 0.82))])  # a flag, then the stem
        wait_for_text(page, "#status", r"your drawing: the model reads 1 ")
        assert shown_label(page) == "1"
        page.close()


@pytest.mark.parametrize("tab, slug, picture", TABS)
def test_every_tab_renders(page, served, tab, slug, picture):
    open_tab(page, tab)
    image_ready(page, picture)
    no_error_shown(page)
    if slug == "tiling":  # the README's picture: 7×7 tiles, 16 words, whatever the default model cuts
        page.locator("#tiling-size").get_by_text("7", exact=True).click()
        wait_for_text(page, "#tiling-text", r"16 words \+ 1 CLS token = 17 tokens")
        image_ready(page, picture)
        time.sleep(1)  # the new picture replaces the old one
    if slug not in ("predict", "walk", "teach"):  # those screenshots are taken with drawings, in their own tests
        page.screenshot(path=str(served[2] / f"{slug}.png"), full_page=True)


def test_walking_through_one_forward_pass_of_a_drawing(page, served):
    """Draw a 7, click a tile, go through every step (a screenshot of each), change block, head and key."""
    open_tab(page, "2 · Predict")
    draw(page, [line((0.25, 0.25), (0.75, 0.25)), line((0.75, 0.25), (0.45, 0.8))])
    wait_for_text(page, "#status", r"your drawing: the model reads")
    open_tab(page, "3 · How it decides")
    wait_for_text(page, "#walk-heading", r"Following your drawing through mnist")
    tiles = page.locator("#walk-tiles img")
    image_ready(page, "#walk-tiles img")
    box = tiles.bounding_box()
    tiles.click(position={"x": box["width"] * 4.5 / 7, "y": box["height"] * 3.5 / 7})  # row 3, column 4: tile 26
    wait_for_text(page, "#walk-tiles-text", r"Tile 26 \(green")
    page.screenshot(path=str(served[2] / "walk-1.png"), full_page=True)
    checks = {2: ("#walk-embedding-text", r"Tile 26's largest entry is number \d+"),
              3: ("#walk-positions-text", r"For tile 26: its embedding has length"),
              4: ("#walk-dot", r"Why tile 26 attends to (CLS|tile \d+)"),
              5: ("#walk-lens-text", r"the answer \d leads"),
              6: ("#walk-head-text", r"The answer: \d, at")}
    for step, (selector, pattern) in checks.items():
        page.locator(f"#walk-next-{step - 1}").click()
        page.locator(selector).scroll_into_view_if_needed()
        wait_for_text(page, selector, pattern)
        if step == 4:  # block 3, head 2, then a click on a tile of the scores: the key, with its own q·k
            page.locator("#walk-layer").get_by_text("3", exact=True).click()
            wait_for_text(page, "#walk-block-intro", r"Block 3, head 1, query tile 26")
            page.locator("#walk-head").get_by_text("2", exact=True).click()
            wait_for_text(page, "#walk-block-intro", r"Block 3, head 2, query tile 26")
            scores = page.locator("#walk-scores img")
            image_ready(page, "#walk-scores img")
            box = scores.bounding_box()
            scores.click(position={"x": box["width"] * 0.5 / 7, "y": box["height"] * 6.5 / 7})  # tile 43
            wait_for_text(page, "#walk-dot", r"Why tile 26 attends to tile 43")
            assert re.search(r"score -?\d+\.\d{3}", page.locator("#walk-dot").inner_text())
        for picture in {4: ["#walk-vectors img", "#walk-weights img"], 5: ["#walk-lens img"]}.get(step, []):
            image_ready(page, picture)
        time.sleep(0.5)
        page.screenshot(path=str(served[2] / f"walk-{step}.png"), full_page=True)
    no_error_shown(page)


def test_which_map_to_trust_explains_any_class(page, served):
    open_tab(page, "4 · Which map to trust?")
    image_ready(page, "#trust-curves img")
    wait_for_text(page, "#trust-words", r"on this picture \w[\w ]* was the most faithful")
    wait_for_text(page, "#trust-board", r"On 1,000 test digits")
    page.locator("#trust-class").get_by_text("3", exact=True).click()  # why not 3?
    wait_for_text(page, "#trust-words", r"Explaining why 3")
    no_error_shown(page)


def test_clicking_a_confusion_cell_selects_that_pair(page, served):
    from vit import plots
    from vit.bundle import load_folder

    open_tab(page, "5 · Confusion")
    size = image_ready(page, "#confusion img")
    bundle = load_folder(served[1] / "mnist")
    figure = plots.confusion_figure(bundle.evaluation.confusion_matrix, bundle.evaluation.accuracy,
                                    bundle.model.class_names)
    _, boxes = plots.render(figure, boxes=True)
    left, top, right, bottom = boxes[0]
    scale = size["shown"] / size["natural"]
    image_box = page.locator("#confusion img").first.bounding_box()
    true, predicted = 2, 7  # row 2, column 7
    x = image_box["x"] + (left + (predicted + 0.5) * (right - left) / 10) * scale
    y = image_box["y"] + (top + (true + 0.5) * (bottom - top) / 10) * scale
    page.mouse.click(x, y)
    wait_for_text(page, "#pair-text", r"of \*?\*?2\*?\*? were read as \*?\*?7|of 2 were read as 7")
    no_error_shown(page)


def test_worst_loss_image_opens_in_predict(page):
    open_tab(page, "6 · Worst losses")
    image_ready(page, "#worst img")
    page.locator("#worst img").first.click()
    wait_for_text(page, "#status", r"worst-loss image #1")
    image_ready(page, "#occlusion img")
    no_error_shown(page)


def test_switching_to_the_tiny_model_updates_every_tab(page, served):
    tiny = sorted(p.name for p in served[1].iterdir() if p.name.startswith("mnist-tiny"))[0]
    choose_model(page, tiny)
    wait_for_text(page, "#model-info", rf"\*?\*?{re.escape(tiny)}\*?\*?: tiles of 7×7 pixels")
    for tab, _, picture in TABS:
        open_tab(page, tab)
        image_ready(page, picture)
    wait_for_text(page, "#tiling-text", r"16 words \+ 1 CLS token = 17 tokens")
    no_error_shown(page)


def choose_model(page, name: str) -> None:
    page.locator("#model-choice input").first.click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_for_text(page, "#model-info", rf"\*?\*?{re.escape(name)}\*?\*?:")


def ink_on_pad(page) -> int:
    """How many of the pad's canvas pixels are dark: what the visitor sees drawn."""
    return page.locator("#pad canvas").first.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }")


def said_answer(status: str) -> str:
    """The class the Predict status names first: its reading, the likelier of two it is unsure between, or the
    guess it would have made when it refuses."""
    found = re.search(r"reads (\S+) \(|unsure between (\S+) \(|would say (\S+) at", status)
    return next(group for group in found.groups() if group)


def test_a_drawn_four_stays_the_picture_through_every_model_and_back(page, served):
    """The pad, the answer, How it decides and Compare agree on the picture after every model switch."""
    open_tab(page, "2 · Predict")
    draw(page, [line((0.3, 0.15), (0.3, 0.55)) + line((0.3, 0.55), (0.75, 0.55))[1:], line((0.65, 0.15), (0.65, 0.88))])
    wait_for_text(page, "#status", r"your drawing: the model reads 4 ")
    drawn = ink_on_pad(page)
    names = sorted(name for name in bundled_folders(served[1]) if name != "mnist")  # the menu's other models
    assert len(names) >= 4, names
    for name in [*names, "mnist"]:
        choose_model(page, name)
        open_tab(page, "2 · Predict")
        status = wait_for_text(page, "#status", r"^(🚫 |🤔 )?your drawing")
        assert ink_on_pad(page) == drawn, name  # the pad still shows the drawing the answer is about
        answer = said_answer(status)
        if not name.startswith("fashion"):
            assert answer == "4", (name, status)
        open_tab(page, "3 · How it decides")
        wait_for_text(page, "#walk-heading", rf"Following your drawing through {re.escape(name)}:")
        open_tab(page, "9 · Compare the cuts")
        read = wait_for_text(page, "#zoo-readings", r"your drawing, read by every model")
        assert "stands in" not in read, name
    open_tab(page, "2 · Predict")
    page.locator("#examples .thumbnail-item").nth(3).click()  # a test 3 takes the drawing's place: the pad is wiped
    wait_for_text(page, "#status", r"^a test 3: the model reads 3 ")
    deadline = time.monotonic() + 10
    while ink_on_pad(page) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ink_on_pad(page) == 0
    no_error_shown(page)


def test_train_a_model_watch_it_learn_and_only_this_visitor_sees_it(browser, served, page):
    """Tiles of 7, learned positions, 2 blocks, 30 s: the curve and the maps are redrawn while it trains, and another
    visitor's drawing is read meanwhile; the model joins this visitor's menu, chosen, and Predict, How it decides and
    What it learned explain it; the other visitor's menu does not list it."""
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    other.goto(served[0])
    other.wait_for_selector("#model-info", timeout=60_000)
    open_tab(page, "10 · Train it yourself")
    for radio, value in (("#train-cut", "tiles"), ("#train-size", "7"), ("#train-positions", "learned")):
        page.locator(radio).get_by_label(value, exact=True).check()
    for slider, value in (("#train-blocks", "2"), ("#train-seconds", "30")):
        page.locator(f"{slider} input[type=number]").fill(value)
        page.locator(f"{slider} input[type=number]").press("Enter")
    page.locator("#train-start").click()
    curves, attention, answered = set(), set(), False
    deadline = time.monotonic() + 150
    while "Done after" not in page.locator("#train-status").inner_text() and time.monotonic() < deadline:
        if page.locator("#train-curve img").count():
            curves.add(page.locator("#train-curve img").first.get_attribute("alt"))
            attention.add(page.locator("#train-attention img").first.get_attribute("src"))
        if len(curves) >= 2 and not answered:  # the other visitor draws while the first one's model trains
            open_tab(other, "2 · Predict")
            draw(other, [line((0.3, 0.2), (0.7, 0.2)) + line((0.7, 0.2), (0.45, 0.85))[1:]])
            wait_for_text(other, "#status", r"^your drawing: the model reads 7 ", timeout=20)
            answered = "Training:" in page.locator("#train-status").inner_text()
        time.sleep(0.3)
    status = wait_for_text(page, "#train-status", r"Done after 3\d s: .* reads [\d.]+ % of the 10,000 test pictures")
    assert len(curves) >= 3 and len(attention) >= 3, (curves, attention)  # redrawn while it trained
    assert answered  # the other visitor's stroke was read while the first one trained
    # the menu names the run with the accuracy the sentence gives, so two runs can be told apart
    accuracy = re.search(r"reads ([\d.]+) %", status).group(1)
    assert page.input_value("#model-choice input") == f"yours: tiles of 7, 2 blocks · {float(accuracy):.1f} %", status
    info = wait_for_text(page, "#model-info", r"tile-7-2-blocks-[0-9a-f]+:")
    name = re.search(r"tile-7-2-blocks-[0-9a-f]+", info).group(0)  # the text may still carry a progress line
    page.evaluate("() => scrollTo(0, 0)")
    page.screenshot(path=str(served[2] / "train.png"))  # the README's picture: the curves and maps as it ended
    open_tab(page, "2 · Predict")
    draw(page, [line((0.3, 0.2), (0.7, 0.2)) + line((0.7, 0.2), (0.45, 0.85))[1:]])
    wait_for_text(page, "#status", r"^your drawing: the model reads \d ")
    open_tab(page, "3 · How it decides")
    wait_for_text(page, "#walk-heading", rf"Following your drawing through {re.escape(name)}:")
    open_tab(page, "7 · What it learned")
    image_ready(page, "#positions img")
    other.locator("#model-choice input").first.click()
    offered = other.get_by_role("option").all_inner_texts()
    assert "fashion-mnist" in offered and not any("yours" in option for option in offered), offered
    no_error_shown(page)
    no_error_shown(other)
    other.context.close()


def trainings(server_pid: int) -> list[str]:
    """The training processes (vit.live) the app runs now."""
    found = subprocess.run(["pgrep", "-P", str(server_pid), "-f", "vit.live"], capture_output=True, text=True)
    return found.stdout.split()


def test_leaving_the_page_ends_its_training(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(served[0])
    page.wait_for_selector("#model-info", timeout=60_000)
    open_tab(page, "10 · Train it yourself")
    page.locator("#train-start").click()
    wait_for_text(page, "#train-status", r"Training: \d+ s of 60 s")
    assert trainings(served[3])
    context.close()
    deadline = time.monotonic() + 30
    while trainings(served[3]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not trainings(served[3])


def test_stop_says_so_at_once_and_the_last_drawing_agrees_with_the_sentence(page):
    open_tab(page, "10 · Train it yourself")
    page.locator("#train-start").click()
    wait_for_text(page, "#train-status", r"Training: \d+ s of 60 s", timeout=90)
    page.locator("#train-stop").click()
    wait_for_text(page, "#train-status", r"Stopping: the model is measured", timeout=15)
    status = wait_for_text(page, "#train-status", r"Stopped after \d+ s: .* \(validation [\d.]+ %\)", timeout=90)
    validation = re.search(r"\(validation ([\d.]+) %\)", status).group(1)
    # the curve is drawn once more at the end: its last point is the sentence's validation accuracy
    deadline = time.monotonic() + 20
    while f"validation accuracy {validation} %" not in (page.locator("#train-curve img").first.get_attribute("alt")
                                                         or ""):
        assert time.monotonic() < deadline, (status, page.locator("#train-curve img").first.get_attribute("alt"))
        time.sleep(0.2)


def draw_symbol(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw on the Teach tab's pad, each stroke waiting for its read: the picture of what the model will learn from
    changes with every stroke, so the drawing Add takes is the whole of it."""
    seen = page.locator("#teach-seen img")
    for stroke in strokes:
        before = seen.first.get_attribute("src") if seen.count() and seen.first.is_visible() else None
        draw(page, [stroke], pad="#teach-pad")
        deadline = time.monotonic() + 30
        while not (seen.count() and seen.first.is_visible() and seen.first.get_attribute("src") != before):
            assert time.monotonic() < deadline, "the pad's drawing was never read"
            time.sleep(0.05)


def test_teach_three_symbols_five_drawings_each_then_predict_reads_a_new_one_of_each(page, served):
    """A star, a heart and an arrow, five drawings each, drawn with the mouse; Teach; the taught model is chosen in
    the menu, and the Predict tab reads a new drawing of each right, with the maps. Confusion counts the drawings."""
    import numpy as np
    from picture_files import symbol_strokes
    rng = np.random.default_rng(0)
    open_tab(page, "11 · Teach it")
    for symbol in ("star", "heart", "arrow"):
        page.locator("#teach-symbol").get_by_label(symbol, exact=True).check()
        for count in range(1, 6):
            draw_symbol(page, symbol_strokes(symbol, rng))
            page.locator("#teach-add").click()
            wait_for_text(page, "#teach-counts", rf"{symbol} {count}\b")
    page.locator("#teach-go").click()
    result = wait_for_text(page, "#teach-result", r"Taught: star, heart, arrow")
    assert re.search(r"\d+ of the 15 drawings were read right by a head fitted without them", result), result
    assert page.input_value("#model-choice input") == "taught: star, heart, arrow"
    wait_for_text(page, "#model-info", r"taught-star-heart-arrow-[0-9a-f]+.*accuracy on held-out drawings")
    page.screenshot(path=str(served[2] / "teach.png"), full_page=True)
    from axe_playwright_python.sync_playwright import Axe
    assert not axe_findings(page, Axe(), "teach, taught")  # the drawings collected, the result and its buttons
    page.locator("#teach-try").click()
    for symbol in ("star", "heart", "arrow"):
        draw(page, symbol_strokes(symbol, rng))
        wait_for_text(page, "#status", rf"^your drawing: the model reads {symbol} ")
        assert shown_label(page) == symbol
        wait_for_alt(page, "#occlusion img", f"class {symbol}")  # the maps are of the new drawing
        page.locator("#pad button[aria-label='Clear canvas']").first.click()
        wait_for_text(page, "#status", r"Draw a symbol")
    open_tab(page, "5 · Confusion")
    image_ready(page, "#confusion img")
    wait_for_text(page, "#pair-text", r"drawings of \w+ were read")
    no_error_shown(page)


def test_compare_the_zoo_and_run_both_experiments(page):
    open_tab(page, "9 · Compare the cuts")
    image_ready(page, "#zoo-figure img")
    wait_for_text(page, "#zoo-table", r"horizontal-strips-2.*\n(.*\n)*.*tiles-7-no-positions")
    wait_for_text(page, "#zoo-readings", r"read by every model")
    page.locator("#shuffle").click()
    image_ready(page, "#shuffled img")
    text = wait_for_text(page, "#shuffle-text", r"tiles-7-no-positions")
    rows = {cells[0]: cells for cells in (re.split(r"\s*\t\s*|\s*\|\s*", row.strip()) for row in text.splitlines())}
    unchanged = next(row for name, row in rows.items() if name.startswith("tiles-7-no-positions"))
    assert float(unchanged[-1]) < 1e-4, unchanged  # without positions the shuffled digit is the same digit
    page.locator("#blocks-off").get_by_text("block 1", exact=True).click()
    page.locator("#switch").click()
    wait_for_text(page, "#switch-text", r"tiles-7\*?\*? with block 1 switched off")
    no_error_shown(page)


def test_a_fashion_model_has_its_own_words_and_examples(page):
    choose_model(page, "fashion-mnist-tiny")
    open_tab(page, "2 · Predict")
    wait_for_text(page, "#status", r"a test T-shirt/top")
    assert "Draw a fashion item" in page.content() and "pick a test fashion item" in page.content()
    draw(page, [line((0.3, 0.2), (0.3, 0.8)), line((0.7, 0.2), (0.7, 0.8)), line((0.3, 0.2), (0.7, 0.2))])
    status = wait_for_text(page, "#status", r"your drawing")
    assert "digit" not in status
    no_error_shown(page)


def test_tiling_controls(page):
    open_tab(page, "1 · Tiling")
    page.locator("#tiling-source").get_by_text("3", exact=True).click()
    wait_for_text(page, "#tiling-text", r"cut from a test 3")
    page.locator("#tiling-size").get_by_text("28", exact=True).click()
    wait_for_text(page, "#tiling-text", r"1 word \+ 1 CLS token = 2 tokens")  # not "1 words"
    page.locator("#tiling-cut").get_by_text("horizontal strips").click()
    page.wait_for_selector("#tiling-strips", state="visible")
    assert not page.locator("#tiling-size").is_visible()  # strips have their own control, in pixels as tiles
    page.locator("#tiling-strips").get_by_text("2", exact=True).click()  # 2 rows high: 14 strips
    wait_for_text(page, "#tiling-text", r"14 words \+ 1 CLS token = 15 tokens")
    wait_for_text(page, "#tiling-code", r"k=14")  # the code block renders a moment after the text
    page.locator("#tiling-cut").get_by_text("tiles", exact=True).click()
    wait_for_text(page, "#tiling-text", r"1 word \+ 1 CLS token = 2 tokens")  # tiles kept their own 28
    no_error_shown(page)


def arc(centre: tuple[float, float], radius: float, start: float, end: float, points: int = 24) -> list:
    """Points along a circle's arc, angles in degrees (0: right, 90: down), as fractions of the pad."""
    angles = [math.radians(start + (end - start) * i / points) for i in range(points + 1)]
    return [(centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a)) for a in angles]


NOT_DIGITS = {  # what a curious learner draws first: none of them may get a confident digit
    "a capital A": [line((0.2, 0.85), (0.5, 0.15)), line((0.5, 0.15), (0.8, 0.85)), line((0.33, 0.55), (0.67, 0.55))],
    "a smiley": [arc((0.5, 0.5), 0.35, 0, 360), line((0.38, 0.38), (0.39, 0.4), 1), line((0.62, 0.38), (0.63, 0.4), 1),
                 arc((0.5, 0.5), 0.2, 30, 150)],
    "a zigzag": [[(0.15, 0.3), (0.3, 0.7), (0.45, 0.3), (0.6, 0.7), (0.75, 0.3), (0.9, 0.7)]],
}


def test_pictures_people_bring_drawn_non_digits_a_photographed_digit_and_a_seven_stroke_by_stroke(page, data_dir,
                                                                                                   tmp_path):
    open_tab(page, "2 · Predict")
    for name, strokes in NOT_DIGITS.items():
        page.locator("#pad button[aria-label='Clear canvas']").first.click()
        wait_for_text(page, "#status", r"Draw a digit")
        draw(page, strokes)
        status = wait_for_text(page, "#status", r"^(🚫 |🤔 )?your drawing: .*(This does not look like a digit|unsure)")
        assert " reads " not in status.split("\n")[0], (name, status)
        said = "this does not look like a digit" if "This does not look like" in status else r"unsure between"
        wait_for_text(page, "#pad .pad-live", "while you draw: " + said)  # the page's own read says the same
    page.locator("#pad button[aria-label='Clear canvas']").first.click()
    wait_for_text(page, "#status", r"Draw a digit")
    draw(page, [line((0.25, 0.22), (0.75, 0.22))])  # a 7 as it is drawn: its bar first, then its stem
    wait_for_text(page, "#status", r"Keep drawing")
    draw(page, [line((0.75, 0.22), (0.42, 0.82))])
    wait_for_text(page, "#status", r"^your drawing: the model reads 7 ")

    from paper_photos import photographed
    from vit.data import load_split
    seven = load_split("mnist", "test", data_dir).images[0, 0].numpy()
    photographed(seven, "shadow band", np.random.default_rng(0)).save(tmp_path / "photo.jpg", quality=85)
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "photo.jpg"))
    wait_for_text(page, "#status", r"^your picture: the model reads 7 ")
    wait_for_alt(page, "#seen img", "the page as read, its light and shadow divided out")
    no_error_shown(page)


def test_uploading_a_picture_and_a_non_picture(page, tmp_path):
    from PIL import Image, ImageDraw
    open_tab(page, "2 · Predict")
    picture = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(picture).line([(150, 60), (150, 340)], fill="black", width=28)  # a photographed "1"
    picture.save(tmp_path / "one.png")
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "one.png"))
    wait_for_text(page, "#status", r"your picture: the model reads")
    image_ready(page, "#seen img")
    no_error_shown(page)

    (tmp_path / "notes.png").write_text("not a picture at all")
    page.locator("#upload button[aria-label='Clear']").first.click()
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "notes.png"))
    wait_for_text(page, "#status", r"This file is not a picture")  # said where the answer was, not as a crash
    assert shown_label(page) == "digit not read"  # one was sent: not a prompt to draw
    # the old picture's maps go with it (they follow the status in a second step): no mixed state
    page.locator("#occlusion img").wait_for(state="detached", timeout=60_000)
    assert "Traceback" not in page.content()

    from vit import probes
    probes.noise(__import__("numpy").random.default_rng(0)).save(tmp_path / "noise.png")
    page.locator("#upload button[aria-label='Clear']").first.click()
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "noise.png"))
    wait_for_text(page, "#status", r"This does not look like a digit")  # an answer, with the scores behind it
    wait_for_text(page, "#status", r"evidence .* ink cover")
    no_error_shown(page)


def test_undo_takes_back_a_stroke_and_the_numbers_download(page, tmp_path):
    import json
    open_tab(page, "2 · Predict")
    page.locator("#pad button[aria-label='Clear canvas']").first.click()
    draw(page, [line((0.5, 0.2), (0.5, 0.8))])
    wait_for_text(page, "#status", r"your drawing: the model reads \*?\*?1")
    page.locator("#pad button[aria-label='Undo']").first.click()
    wait_for_text(page, "#status", r"Draw a digit")  # its only stroke taken back: the pad is empty again
    draw(page, [line((0.25, 0.22), (0.75, 0.22)), line((0.75, 0.22), (0.42, 0.82))])
    wait_for_text(page, "#status", r"your drawing: the model reads \*?\*?7")
    for picture in ("#seen", "#attention", "#rollout", "#saliency", "#occlusion"):
        image_ready(page, picture + " img")  # the maps in place: the button below them stops moving
    page.locator("#export").click()
    link = page.locator("#exported a").first
    link.wait_for(timeout=60_000)
    with page.expect_download() as download:
        link.click()
    numbers = json.loads(Path(download.value.path()).read_text())
    assert numbers["picture"] == "your drawing" and len(numbers["occlusion"]["one_tile"]) == 7
    assert abs(sum(numbers["probabilities"]) - 1) < 1e-4
    no_error_shown(page)


def test_worst_losses_show_only_mistakes_with_captions_under_the_digits(page, served):
    from vit.bundle import load_folder
    mistakes = load_folder(served[1] / "mnist").mistakes
    open_tab(page, "6 · Worst losses")
    image_ready(page, "#worst img")
    assert int(page.locator("#worst-count input[type=range]").get_attribute("max")) == mistakes
    assert page.locator("#worst .caption-label:visible").count() == 0  # captions are drawn under the digit instead
    first = page.locator("#worst img").first.get_attribute("alt")  # the gallery's caption: the picture's alt text
    assert re.fullmatch(r"a \d read as \d, loss \d+\.\d", first), first
    box = page.locator("#worst img").first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert box[1] > box[0]  # the 112-px digit plus its caption strip
    number = page.locator("#worst-count input[type=number]")
    number.fill("3")
    number.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#worst img').length === 3", timeout=30_000)
    no_error_shown(page)


def test_attention_by_label_with_all_ten_labels(page):
    open_tab(page, "8 · Attention by label")
    image_ready(page, "#label-attention img")
    for label in "0124569":  # 3, 7 and 8 are ticked already
        page.locator("#label-attention-labels").get_by_label(label, exact=True).check()
    page.wait_for_function(
        "() => { const i = document.querySelector('#label-attention img'); return i && i.naturalHeight > 1500; }",
        timeout=90_000)  # ten labels wrap onto rows: every map keeps its size
    no_error_shown(page)


@pytest.mark.parametrize("tab, slug, picture", [("1 · Tiling", "phone-tiling", "#tiling-picture img"),
                                                ("2 · Predict", "phone-predict", "#occlusion img"),
                                                ("9 · Compare the cuts", "phone-compare", "#zoo-figure img")])
def test_phone_width(browser, served, tab, slug, picture):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(served[0])
    page.wait_for_selector("#model-info", timeout=60_000)
    page.wait_for_selector('[role="tab"]', state="visible", timeout=60_000)  # the tab bar may come after the header
    names = [t.inner_text() for t in page.locator('[role="tab"]').all() if t.is_visible()]
    import tabs
    assert len(names) == len(tabs.TABS), names  # every tab in sight: none hidden behind an overflow menu
    open_tab(page, tab)
    page.locator(picture.split()[0]).scroll_into_view_if_needed()
    image_ready(page, picture)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself never scrolls sideways
    widths = page.evaluate("() => [...document.querySelectorAll('.figure img')].filter(i => i.offsetParent)"
                           ".map(i => i.getBoundingClientRect().width)")
    assert all(width >= 600 for width in widths), widths  # wide figures keep a legible size, scrolling inside
    cells = page.evaluate("() => [...document.querySelectorAll('.prose td')].filter(c => c.offsetParent)"
                          ".map(c => c.getBoundingClientRect().height)")
    assert all(height < 80 for height in cells), cells  # table cells on one line, the table scrolling sideways
    no_error_shown(page)
    page.screenshot(path=str(served[2] / f"{slug}.png"), full_page=True)
    context.close()


def test_a_finger_draws_on_the_pad_without_scrolling_the_page(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(served[0])
    page.wait_for_selector("#model-info", timeout=60_000)
    open_tab(page, "2 · Predict")
    canvas = page.locator("#pad canvas").first
    canvas.scroll_into_view_if_needed()
    box, touch = canvas.bounding_box(), context.new_cdp_session(page)  # a real touch, as a phone's screen sends it
    scrolled = page.evaluate("() => window.scrollY")
    x, ys = box["x"] + box["width"] / 2, [box["y"] + box["height"] * share for share in (0.2, 0.4, 0.6, 0.8)]
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": ys[0]}]})
    for y in ys[1:]:
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_text(page, "#status", r"your drawing: the model reads \*?\*?1")
    assert page.evaluate("() => window.scrollY") == scrolled  # the finger drew; the page stayed put
    no_error_shown(page)
    context.close()


# --- Accessibility: axe-core on every tab, at a desktop's and a phone's width --------------------------------

PICTURE_FAULTS = """() => [...document.querySelectorAll('.picture')].filter(b => b.offsetParent).flatMap(block => {
  const img = block.querySelector('img'), bar = block.querySelector('.icon-button-wrapper');
  if (!img || !bar) return [];
  const a = img.getBoundingClientRect(), b = bar.getBoundingClientRect();
  const covers = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return covers ? [`${block.id || img.alt.slice(0, 40)}: its buttons cover the picture`] : [];
})"""
GALLERY_FAULTS = """() => [...document.querySelectorAll('.gallery-container')].filter(g => g.offsetParent)
.flatMap(g => {
  const right = g.getBoundingClientRect().right + 1;
  const hidden = [...g.querySelectorAll('.thumbnail-item')].filter(t => t.getBoundingClientRect().right > right);
  return hidden.length ? [`${g.closest('[id]').id}: ${hidden.length} pictures cut off at the right`] : [];
})"""


def axe_findings(page, axe, slug: str) -> list[str]:
    """The critical and serious axe-core violations on the page: rule, impact and the first element's html."""
    return [f"{slug}: {found['id']} ({found['impact']}): {found['nodes'][0]['html'][:200]}"
            for found in axe.run(page).response["violations"] if found["impact"] in ("critical", "serious")]


def layout_findings(page, slug: str, phone: bool) -> list[str]:
    """What axe does not see: a picture's buttons over it, a gallery hiding pictures, the walk's buttons too small,
    and on a phone the Predict tab's pad below the first screen."""
    found = [f"{slug}: {fault}" for fault in page.evaluate(PICTURE_FAULTS) + page.evaluate(GALLERY_FAULTS)]
    if slug == "walk":
        size = page.locator("#walk-next-1").evaluate(
            "b => [parseFloat(getComputedStyle(b).fontSize), b.getBoundingClientRect().height]")
        found += [f"walk: the next button is {size}: text under 14 px or under 24 px high"] if (
            size[0] < 14 or size[1] < 24) else []
    if slug == "predict" and phone:
        bottom = page.evaluate("() => document.querySelector('#pad canvas').getBoundingClientRect().bottom + scrollY")
        found += [f"predict: the pad ends {bottom:.0f} px down, below the first screen"] if bottom > 844 else []
    return found


@pytest.mark.parametrize("width", [1280, 390])
def test_every_tab_is_accessible_at_desktop_and_phone_width(browser, served, width):
    """No critical or serious axe-core violation on any tab (names, contrast, scrolling regions a keyboard can
    reach), nor the layout faults it cannot see; on the desktop, a test digit is picked with the keyboard."""
    from axe_playwright_python.sync_playwright import Axe
    phone = width < 640
    context = browser.new_context(viewport={"width": width, "height": 844 if phone else 1000}, device_scale_factor=1,
                                  is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.goto(served[0])
    page.wait_for_selector("#model-info", timeout=60_000)
    axe, found = Axe(), []
    for tab, slug, picture in TABS:
        open_tab(page, tab)
        page.locator(picture.split()[0]).scroll_into_view_if_needed()
        image_ready(page, picture)
        page.evaluate("() => scrollTo(0, 0)")
        time.sleep(0.3)  # the page's own script names and tabs what has just been drawn, once a frame
        found += axe_findings(page, axe, slug) + layout_findings(page, slug, phone)
        if slug == "walk":  # a step done is drawn as a bare tick on a phone: the page's script names it
            page.locator("#walk-next-1").click()
            wait_for_text(page, "#walk-embedding-text", r"largest entry")
            time.sleep(0.3)
            found += axe_findings(page, axe, "walk, step 2")
    open_tab(page, "10 · Train it yourself")  # no picture until something is trained: its controls
    page.locator("#train-start").wait_for(timeout=30_000)
    found += axe_findings(page, axe, "train") + layout_findings(page, "train", phone)
    assert not found, "\n".join(found)
    if not phone:  # the drawing pad needs a pointer; the test pictures below it take a keyboard (Tab, Enter)
        open_tab(page, "2 · Predict")
        assert "No mouse, pen or touch screen?" in page.locator("#pad").inner_text()
        thumbnail = page.locator("#examples .thumbnail-item").nth(3)
        assert thumbnail.get_attribute("aria-label") == "a test 3"  # named by its picture, not "Thumbnail 4 of 10"
        thumbnail.focus()
        page.keyboard.press("Enter")
        wait_for_text(page, "#status", r"a test 3: the model reads")
        page.wait_for_function("() => document.querySelector('#rollout img')?.alt.includes('for a test 3:')")
        alt = page.locator("#rollout img").get_attribute("alt")  # each picture says what it shows, with numbers
        assert re.fullmatch(r"Attention rollout for a test 3: .* tile \d+ \(\d+ %\) and tile \d+ \(\d+ %\)\.", alt), alt
        no_error_shown(page)
    context.close()


def test_charts_follow_dark_mode_and_maps_keep_their_colours(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(served[0] + "?__theme=dark")
    page.wait_for_selector("#model-info", timeout=60_000)
    filter_of = lambda selector: page.locator(selector).first.evaluate("img => getComputedStyle(img).filter")  # noqa: E731
    open_tab(page, "About the model")
    image_ready(page, "#training img")
    assert "invert" in filter_of("#training img")  # a chart's white ground turns dark
    open_tab(page, "2 · Predict")
    image_ready(page, "#rollout img")
    assert filter_of("#rollout img") == "none"  # a map's colours are a scale: never turned
    context.close()


# -- a link reopens what was on screen (tabs/link.py): one test per parameter; the glossary's links -------------

def copied_link(page) -> str:
    """Press the header's copy-link button; the new link its box then shows (each test copies different views)."""
    box = page.locator("#link textarea, #link input").first
    before = box.input_value() if box.count() and box.is_visible() else ""
    page.locator("#copy-link").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if box.count() and box.is_visible() and box.input_value().startswith("http") and box.input_value() != before:
            return box.input_value()
        time.sleep(0.2)
    raise AssertionError(f"the link box never showed a new link (it held {before!r})")


@pytest.fixture
def reopen(browser):
    """Open a link in a fresh browser context (nothing shared with the page it came from)."""
    contexts = []

    def opened(link: str):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        page.goto(link)
        page.wait_for_selector("#model-info", timeout=60_000)
        return page
    yield opened
    for context in contexts:
        context.close()


def open_tab_name(page) -> str:
    return page.locator('[role="tab"][aria-selected="true"]').first.inner_text()


def test_a_link_reopens_the_model(page, reopen):
    choose_model(page, "mnist-tiny")
    wait_for_text(page, "#model-info", r"mnist-tiny\*?\*?: tiles of 7×7 pixels")
    link = copied_link(page)
    assert "model=mnist-tiny" in link
    shared = reopen(link)
    wait_for_text(shared, "#model-info", r"mnist-tiny\*?\*?: tiles of 7×7 pixels")
    wait_for_text(shared, "#tiling-text", r"16 words \+ 1 CLS token = 17 tokens")  # the open tab, for that model
    no_error_shown(shared)


def test_a_link_reopens_the_tab(page, reopen, served):
    open_tab(page, "About the model")
    image_ready(page, "#reliability img")
    page.get_by_text(f'Client("{served[0]}")').wait_for(timeout=10_000)  # the address it runs at, to copy
    link = copied_link(page)
    assert "tab=about" in link
    shared = reopen(link)
    image_ready(shared, "#reliability img")  # the lazy tab draws itself when the link selects it
    assert open_tab_name(shared) == "About the model"
    no_error_shown(shared)
    open_tab(page, "2 · Predict")  # another view: the box naming the old one goes
    page.wait_for_selector("#link textarea, #link input", state="hidden", timeout=10_000)


def test_a_link_reopens_the_picture_drawn_or_picked(page, reopen):
    open_tab(page, "2 · Predict")
    draw(page, [line((0.25, 0.22), (0.75, 0.22)), line((0.75, 0.22), (0.42, 0.82))])
    status = wait_for_text(page, "#status", r"your drawing: the model reads \*?\*?7\*?\*? \(\d")
    link = copied_link(page)
    assert "tab=predict" in link and "&picture=" in link and "example=" not in link
    shared = reopen(link)
    linked = wait_for_text(shared, "#status", r"the linked picture: the model reads \*?\*?7\*?\*? \(\d")
    assert open_tab_name(shared) == "2 · Predict"
    confidence = [float(re.search(r"\(([\d.]+) %\)", text)[1]) for text in (status, linked)]
    assert abs(confidence[0] - confidence[1]) <= 0.1, confidence  # the model input travels rounded to 1/255
    image_ready(shared, "#occlusion img")

    page.locator("#examples img").nth(3).click()  # a stored test 3: linked by its class and index, not its pixels
    wait_for_text(page, "#status", r"a test 3: the model reads")
    link = copied_link(page)
    assert "example=3.0" in link and "picture=" not in link
    wait_for_text(reopen(link), "#status", r"a test 3: the model reads")
    no_error_shown(shared)


def test_a_link_reopens_the_step_of_how_it_decides(page, reopen):
    open_tab(page, "3 · How it decides")
    wait_for_text(page, "#walk-heading", r"Following")
    for step in range(1, 4):
        page.locator(f"#walk-next-{step}").click()
    intro = wait_for_text(page, "#walk-block-intro", r"Block 1, head 1, query tile \d+\.")
    link = copied_link(page)
    assert "tab=walk&step=4" in link
    shared = reopen(link)
    wait_for_text(shared, "#walk-block-intro", re.escape(intro.split(".")[0]))  # step 4, the same tile followed
    image_ready(shared, "#walk-scores img")
    assert not shared.locator("#walk-tiles-text").is_visible()  # step 4 is open, not step 1
    no_error_shown(shared)


def test_a_malformed_link_says_why_and_the_app_starts_as_usual(reopen, served):
    shared = reopen(served[0] + "?tab=walk&picture=not-a-picture")
    wait_for_text(shared, "#link-notice", r"could not be opened: its picture= is not a picture this app wrote")
    assert open_tab_name(shared) == "1 · Tiling"
    image_ready(shared, "#tiling-picture img")
    no_error_shown(shared)


def test_a_term_links_to_its_glossary_entry_and_shows_its_sentence(reopen, served):
    from tabs import glossary
    page = reopen(served[0] + "?tab=about")  # a shared link: following a term must not lose what it opened
    image_ready(page, "#reliability img")
    term = page.locator("#model-info a", has_text="tokens").first
    assert term.get_attribute("title") == glossary.plain(glossary.BY_NAME["token"].meaning)
    term.click()
    page.wait_for_function("() => location.hash === '#glossary-token'")
    assert page.url == served[0] + "?tab=about#glossary-token" and open_tab_name(page) == "About the model"
    top = page.locator("#glossary-token").evaluate("element => element.getBoundingClientRect().top")
    assert 0 <= top < page.viewport_size["height"]  # the page scrolled to the entry
    page.locator("#lesson-button").click()  # the suggested path, a click away in the header of every tab
    wait_for_text(page, "#lesson", r"Suggested path for a class\s+Take the tabs in this order")
