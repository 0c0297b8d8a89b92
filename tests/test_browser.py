"""The chat page in real headless Chromium against a real `chatbot serve`: typing, answers, HTML kept inert, outages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.checkpoint import load_checkpoint

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=900,760",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def open_page(browser, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 15).until(lambda d: d.find_element("id", "status").get_attribute("data-state") == "online")


def send(browser, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element("id", "message")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def wait_for_messages(browser, css: str, count: int):
    """The elements matching `css` in the conversation, once there are `count` of them."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15).until(lambda d: len(d.find_elements("css selector", f"#conversation {css}")) >= count)
    return browser.find_elements("css selector", f"#conversation {css}")


def bot_answers(browser, count: int):
    return wait_for_messages(browser, ".message.bot:not(.typing)", count + 1)[1:]  # the first is the greeting


def screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("CHATBOT_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_message_sent_with_enter_gets_the_bots_answer(browser, start_server, trained_model, classifier, tmp_path):
    server = start_server(trained_model, workers=1, threads=4)
    open_page(browser, server.url)
    assert browser.find_element("id", "status").text == "online · 20 intents"

    send(browser, "hello there")
    answer = bot_answers(browser, 1)[0]
    expected = classifier.predict("hello there")
    assert answer.find_element("css selector", ".bubble").text in classifier.responses["greeting"]
    assert answer.find_element("css selector", ".note").text == f"greeting · {round(expected.confidence * 100)}%"
    assert browser.find_element("id", "message").get_attribute("value") == ""  # the box is cleared for the next one

    send(browser, "how do I call the API from Python?")
    send(browser, "qzxv wplk")  # no known word: the bot falls back
    unsure = bot_answers(browser, 3)[2].find_element("css selector", ".note.unsure")
    assert unsure.text.startswith("Not sure — try rephrasing (closest: ")

    send(browser, "<i>typed</i> & sent")
    user = wait_for_messages(browser, ".message.user", 4)[3]
    assert user.text == "<i>typed</i> & sent"
    bot_answers(browser, 4)
    assert browser.find_element("id", "status").text == "online · 20 intents"
    browser.save_screenshot(str(screenshot_path(tmp_path, "chat_screenshot.png")))


def test_html_in_an_answer_is_shown_as_text_and_never_runs(browser, start_server, html_model):
    html = load_checkpoint(html_model)["responses"]["greeting"][0]
    assert "<script>" in html
    server = start_server(html_model, workers=1, threads=4)
    open_page(browser, server.url)

    send(browser, "hello")
    answer = bot_answers(browser, 1)[0]
    assert answer.find_element("css selector", ".bubble").text == html
    conversation = browser.find_element("id", "conversation")
    assert conversation.find_elements("css selector", "script, b, img") == []
    assert browser.execute_script("return window.pwned === undefined")


def test_the_page_says_when_the_server_cannot_be_reached(browser, start_server, trained_model, tmp_path):
    server = start_server(trained_model, workers=1, threads=4)
    open_page(browser, server.url)
    send(browser, "hello")
    bot_answers(browser, 1)

    assert server.stop() == 0
    send(browser, "are you there?")
    error = wait_for_messages(browser, ".message.error", 1)[0]
    assert error.text == "Cannot reach the chatbot server. Check that it is running, then try again."
    assert browser.find_element("id", "status").text == "offline"
    assert (
        wait_for_messages(browser, ".message.user", 2)[1].text == "are you there?"
    )  # the unanswered message stays in view
    browser.save_screenshot(str(screenshot_path(tmp_path, "chat_unreachable.png")))


def test_the_page_carries_the_conversation_context_and_a_new_page_starts_over(
    browser, start_server, rental_model, tmp_path
):
    server = start_server(rental_model, workers=2, threads=2)  # two workers: the token, not a worker, holds it
    open_page(browser, server.url)
    send(browser, "today")  # out of turn: "today" is filtered until a rental question sets its context
    early = bot_answers(browser, 1)[0]
    assert early.find_element("css selector", ".bubble").text != "For rentals today please call 1-800-MYMOPED"
    send(browser, "can we rent a moped?")
    rental = bot_answers(browser, 2)[1]
    assert rental.find_element("css selector", ".note").text.endswith("· context: rentalday")
    send(browser, "today")
    today = bot_answers(browser, 3)[2]
    assert today.find_element("css selector", ".bubble").text == "For rentals today please call 1-800-MYMOPED"
    browser.save_screenshot(str(screenshot_path(tmp_path, "chat_context.png")))

    open_page(browser, server.url)  # a new page: a new conversation
    send(browser, "today")
    fresh = bot_answers(browser, 1)[0]
    assert fresh.find_element("css selector", ".bubble").text != "For rentals today please call 1-800-MYMOPED"


def test_a_thumbs_down_on_an_answer_reaches_the_message_log(browser, start_server, rental_model, tmp_path):
    import json

    from selenium.webdriver.support.ui import WebDriverWait

    log_path = tmp_path / "messages.log"
    server = start_server(rental_model, workers=1, threads=2, env={"CHATBOT_MESSAGE_LOG": str(log_path)})
    open_page(browser, server.url)
    send(browser, "my order number is 12345")
    answer = bot_answers(browser, 1)[0]
    answer.find_element("css selector", "button.feedback").click()
    WebDriverWait(browser, 15).until(lambda d: "noted" in answer.text)
    browser.save_screenshot(str(screenshot_path(tmp_path, "chat_feedback.png")))
    WebDriverWait(browser, 15).until(lambda _: log_path.read_text(encoding="utf-8").count("\n") >= 2)  # batched
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    assert [(r["kind"], r["message"]) for r in records] == [
        ("answer", "my order number is #####"),
        ("feedback", "my order number is #####"),
    ]
    assert records[1]["conversation"] == records[0]["conversation"] and records[1]["model"] == records[0]["model"]
    assert records[1]["intent"] == records[0]["intent"]
