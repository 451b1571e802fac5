"""The page in a real browser: headless Chromium, driven by selenium, against the app served by uvicorn.
It uploads a PNG of a test digit, draws digits on the canvas with mouse and touch pointer actions, and checks
the digit and the error messages the page shows. `make test` installs Chromium when it is missing (see its `browser` step);
set MNIST_SKIP_BROWSER=1 to skip this file on a machine that cannot have it."""
import os
import shutil
import socket
import threading
import time

import pytest

SKIP = "MNIST_SKIP_BROWSER"
if os.environ.get(SKIP) == "1":
    pytest.skip(f"{SKIP}=1 asks to skip the browser test (headless Chromium and chromedriver); unset it to run it",
                allow_module_level=True)

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from mnist_utils.app import create_app  # noqa: E402
from mnist_utils.config import reports_dir  # noqa: E402
from mnist_utils.preprocess import MAX_BYTES  # noqa: E402

SCREENSHOT = "app.png"  # in the reports folder; docs/app.png in the README is a copy of one
WAIT = 60  # seconds the page may take to answer on a busy machine


@pytest.fixture(scope="module")
def server(step3_checkpoint):
    """The app on a free local port, in a thread; its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(step3_checkpoint.parent), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("Chromium and chromedriver are not installed: `apt-get install chromium chromium-driver` "
                    f"(`make test` does it), or set {SKIP}=1 to skip the browser test.")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, server):
    browser.get(server)
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    return browser


def shown(page, element: str) -> str:
    return page.find_element(By.ID, element).text


def seen(page) -> str:
    """The image the model saw, as the page shows it (a data URL)."""
    return page.find_element(By.ID, "seen").get_attribute("src") or ""


def wait_for_answer(page, previous: str = "") -> str:
    """The digit the page shows once it has read something new: the status line says who read it, and the
    image the model saw is not `previous`'s."""
    WebDriverWait(page, WAIT).until(lambda d: " as " in shown(d, "status") and seen(d) != previous)
    return shown(page, "digit")


def draw(page, *strokes, kind=interaction.POINTER_MOUSE):
    """Each of `strokes` (points in canvas pixels, 280×280): press at its first point, move through the others,
    lift; with a mouse or a finger (touch). All in one action sequence: the browser plays them without a pause
    between strokes longer than one move (250 ms), as a hand drawing one digit would."""
    canvas = page.find_element(By.ID, "canvas")
    actions = ActionBuilder(page, mouse=PointerInput(kind, "touch" if kind == interaction.POINTER_TOUCH else "mouse"))
    for points in strokes:
        (x, y), rest = points[0], points[1:]
        actions.pointer_action.move_to(canvas, x - 140, y - 140).pointer_down()
        for x, y in rest:
            actions.pointer_action.move_to(canvas, x - 140, y - 140)
        actions.pointer_action.pointer_up()
    actions.perform()


def test_an_uploaded_png_of_a_test_digit_is_read(page, mnist, make_picture, tmp_path):
    path = tmp_path / "two.png"
    path.write_bytes(make_picture(mnist.test.images[1]))  # a 2
    assert int(mnist.test.labels[1]) == 2
    draw(page, [(150, 40), (146, 100), (142, 160), (138, 230)])  # a drawing first: the upload replaces it
    previous = seen(page) if wait_for_answer(page) else ""
    page.find_element(By.ID, "upload").send_keys(str(path))
    assert wait_for_answer(page, previous) == "2"
    assert shown(page, "status").startswith("Read two.png as 2, ") and "% sure, by " in shown(page, "status")
    blank = page.execute_script("const d = document.getElementById('canvas').getContext('2d')"
                                ".getImageData(0, 0, 280, 280).data; return d.every((v) => v === 255);")
    assert blank, "the canvas no longer shows a drawing the answer is not to"
    assert "sure" in shown(page, "confidence") and len(page.find_elements(By.CSS_SELECTOR, "#top .bar")) == 3
    assert seen(page).startswith("data:image/png;base64,")
    assert shown(page, "error") == ""


def test_a_seven_drawn_with_the_mouse_and_a_one_drawn_by_touch_are_read(page):
    draw(page, [(60, 62), (110, 60), (160, 58), (215, 60), (190, 110), (165, 160), (140, 215), (128, 245)])
    assert wait_for_answer(page) == "7"
    (reports_dir()).mkdir(parents=True, exist_ok=True)
    page.save_screenshot(str(reports_dir() / SCREENSHOT))
    previous = seen(page)

    page.find_element(By.ID, "clear").click()
    assert not page.find_element(By.ID, "answer").is_displayed() and shown(page, "status") == "", \
        "after Clear, no answer to the erased drawing"
    draw(page, [(150, 40), (146, 100), (142, 160), (138, 230)], kind=interaction.POINTER_TOUCH)
    assert wait_for_answer(page, previous) == "1"


def test_a_digit_of_two_strokes_is_read_once_when_the_hand_rests(page):
    """The page reads a drawing once the hand has rested (600 ms), not at the end of each stroke: a 4's first
    stroke alone is another digit."""
    draw(page, [(100, 40), (85, 150), (215, 150)], [(175, 60), (172, 150), (168, 250)])  # ∟, then the upright
    assert wait_for_answer(page) == "4"
    time.sleep(1)  # longer than the rest: a read of the first stroke would have been made by now
    assert page.execute_script("return sent;") == 1, "one read of the whole digit, none of its first stroke"


def test_the_page_fits_a_narrow_phone_without_scrolling_sideways(page):
    page.set_window_size(360, 800)
    try:
        page.refresh()
        WebDriverWait(page, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        width, scrolled = page.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
        assert scrolled <= width, f"the page is {scrolled} px wide in a {width} px window"
        # as a model trained with label smoothing is shown: its note must not take the bars' room (it took all
        # but 5 px of their width once, on any screen)
        page.execute_script("models[document.getElementById('model').value].label_smoothing = 0.1;")
        draw(page, [(60, 62), (110, 60), (160, 58), (215, 60), (190, 110), (165, 160), (140, 215), (128, 245)])
        assert wait_for_answer(page) == "7", "a smaller canvas still draws where the finger goes"
        assert "label smoothing 0.1" in shown(page, "aim")
        track = page.find_element(By.CSS_SELECTOR, "#top .track").size["width"]
        assert track >= 100, f"the bars' tracks are {track} px wide"
    finally:
        page.set_window_size(1100, 900)


def test_bad_input_shows_the_servers_message(page, tmp_path):
    page.find_element(By.ID, "clear").click()
    page.find_element(By.ID, "read").click()  # a blank canvas
    WebDriverWait(page, WAIT).until(lambda d: shown(d, "error"))
    assert shown(page, "error").startswith("No digit found")

    text = tmp_path / "notes.png"
    text.write_text("a shopping list, not a picture")
    page.find_element(By.ID, "upload").send_keys(str(text))
    WebDriverWait(page, WAIT).until(lambda d: "not an image" in shown(d, "error"))

    # The server answers 413 before it has read the whole body; the browser must still show the message.
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\0" * (MAX_BYTES + 1))
    page.find_element(By.ID, "upload").send_keys(str(huge))
    WebDriverWait(page, WAIT).until(lambda d: "larger than the 5 MB" in shown(d, "error"))
