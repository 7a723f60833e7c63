"""The web page at `/`: served without a key and outside the API schema, and, end to end in
headless Chromium (Debian's package, driven by Playwright; never a browser download), against
a real server on loopback: streamed answers with clickable footnotes that open the document
with the cited sentence highlighted, refusals, errors, the working indicator and the API key.

Screenshots (desktop and phone width) are saved under each test's `tmp_path/screenshots`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from service.api.routes_page import STATIC_DIR
from service.llm.base import LLMError
from tests.api.support import FakeModel, context_lines

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

SEED_QUESTION = "How many countries pledged to guarantee Ukraine's security?"
UNANSWERABLE = "What is the boiling point of water?"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


# ---- without a browser ------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_without_a_key_and_are_not_in_the_schema(serve):
    live = serve(api_keys="page-key")
    with live.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
            r = c.get(f"/static/{name}")
            assert r.status_code == 200 and kind in r.headers["content-type"]
            assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
            assert r.text == (STATIC_DIR / name).read_text(encoding="utf-8")
        assert c.get("/static/missing.js").status_code == 404
        assert c.get("/static/../routes_page.py").status_code in (401, 404)  # no way out of static/
        # everything else still needs the key
        assert c.get("/v1/documents").status_code == 401
        assert c.get("/openapi.json").status_code == 401
        paths = c.get("/openapi.json", headers={"Authorization": "Bearer page-key"}).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_a_sentence_link_serves_the_same_page_without_a_key(serve):
    live = serve(api_keys="page-key")
    with live.client() as c:
        home = c.get("/")
        for path in ("/documents/000_f586ed492cfdf968.txt?s=3", "/documents/sub/any%20name.md", "/documents/x"):
            r = c.get(path)
            assert r.status_code == 200 and r.text == home.text, path
            assert r.headers["content-security-policy"] == home.headers["content-security-policy"]
        assert c.get("/v1/documents/000_f586ed492cfdf968.txt").status_code == 401  # the data still needs it


def test_the_page_loads_nothing_from_elsewhere_and_never_writes_html_from_text():
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "an external asset in index.html"
    assert not re.search(r"url\(|@import", css), "the stylesheet loads something"
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)


# ---- in Chromium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.skip("playwright is not installed (it is in the `test` extra: pip install -e '.[test]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's `chromium` package (apt-get install chromium); "
                    "the tests never download a browser of their own")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browsing:
    """A fresh browser context (so a fresh sessionStorage) on one server, recording every URL it
    requests and any script error."""

    def __init__(self, browser, live, shots: Path) -> None:  # noqa: ANN001
        self.live, self.shots = live, shots
        self.context = browser.new_context(viewport=DESKTOP)
        self.context.set_default_timeout(10_000)
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(live.url + "/")

    def ask(self, question: str) -> None:
        self.page.get_by_label("Your question").fill(question)
        self.page.get_by_label("Your question").press("Enter")

    def wait_until_finished(self) -> None:
        expect(self.page.locator("#status")).not_to_have_class(re.compile("working"))

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"script errors on the page: {self.errors}"
        assert all(u.startswith(self.live.url) or u.startswith("data:") for u in self.requests), \
            f"the page fetched something from elsewhere: {self.requests}"


@pytest.fixture()
def browse(browser, serve, tmp_path):
    """browse(**server_settings_or_model) -> Browsing on a fresh server."""
    opened: list[Browsing] = []

    def start(model: FakeModel | None = None, **overrides) -> Browsing:
        b = Browsing(browser, serve(model, **overrides), tmp_path / "screenshots")
        opened.append(b)
        return b

    yield start
    for b in opened:
        b.close()


def box(page: Page, selector: str) -> dict:
    found = page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not visible"
    return found


@pytest.mark.browser
def test_footnote_1_opens_the_document_with_the_cited_sentence_highlighted(browse):
    b = browse()
    page = b.page
    b.ask(SEED_QUESTION)
    footnote = page.locator("#answer button.footnote", has_text="[1]")
    expect(footnote).to_be_visible()
    b.wait_until_finished()
    expect(page.locator("#status")).to_contain_text("Answered in")

    with b.live.client() as c:
        answer = c.post("/v1/ask", json={"question": SEED_QUESTION}).json()
        citation = answer["citations"][0]
        document = c.get(f"/v1/documents/{citation['document']}").json()
    sentence = document["text"][citation["start"]:citation["end"]]
    assert citation["n"] == 1 and sentence == citation["text"] and "26 countries" in sentence

    # the answer as text, markers in place; the sources list quotes each cited sentence
    assert page.locator("#answer").inner_text() == answer["answer"]
    sources = page.locator("#sources li")
    expect(sources).to_have_count(len(answer["citations"]))
    expect(sources.first.locator(".source-doc")).to_have_text(citation["document"])
    expect(sources.first).to_contain_text(f"sentence {citation['sentence']}")
    expect(sources.first.locator("blockquote")).to_have_text(citation["text"])

    footnote.click()
    current = page.locator("#doc-text mark.hl-current")
    expect(current).to_have_count(1)
    assert current.inner_text() == sentence == citation["text"]
    expect(page.locator("#doc-title")).to_have_text(citation["document"])
    expect(current).to_be_focused()
    # the document is all there, around the highlight
    assert page.locator("#doc-text").inner_text() == document["text"]
    # scrolled so the sentence is inside the pane's visible area
    pane, mark = box(page, "#doc-text"), box(page, "#doc-text mark.hl-current")
    assert pane["y"] <= mark["y"] and mark["y"] + min(mark["height"], 40) <= pane["y"] + pane["height"]
    # beside the answer on a desktop
    column = box(page, "#result")
    assert box(page, "#doc-pane")["x"] >= column["x"] + column["width"]
    b.shot("answer-desktop")

    # keyboard: Escape closes and gives focus back to the footnote; Enter on it reopens
    page.keyboard.press("Escape")
    expect(page.locator("#doc-pane")).to_be_hidden()
    expect(footnote).to_be_focused()
    page.keyboard.press("Enter")
    expect(current).to_be_focused()

    # a phone: the document stacks under the answer, nothing wider than the screen
    page.set_viewport_size(PHONE)
    current.scroll_into_view_if_needed()
    result, pane = box(page, "#result"), box(page, "#doc-pane")
    assert pane["y"] >= result["y"] + result["height"] - 1 and pane["width"] > PHONE["width"] * 0.8
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    b.shot("answer-phone")
    page.evaluate("window.scrollTo(0, 0)")
    b.shot("answer-phone-top")


def two_cited_sentences(messages) -> str:  # noqa: ANN001
    lines = list(context_lines(messages).items())[:2]
    return " ".join(f"{text.rstrip('.')} [{n}]." for n, text in lines)


@pytest.mark.browser
def test_a_slow_answer_shows_it_is_working_and_other_cited_sentences_are_marked_lightly(browse):
    model = FakeModel(two_cited_sentences, chunk=6, delay=0.06)
    b = browse(model, llm="openai")
    page = b.page
    b.ask(SEED_QUESTION)
    status = page.locator("#status")
    # visible at once, and counting
    expect(status).to_have_class(re.compile("working"), timeout=500)
    expect(status).to_contain_text("Working on the answer", timeout=500)
    expect(page.locator("#spinner")).to_be_visible()
    expect(page.locator("#elapsed")).to_have_text("0 s", timeout=500)
    expect(page.locator("#elapsed")).to_have_text("1 s", timeout=1600)
    expect(status).to_have_class(re.compile("working"))
    b.shot("working")
    b.wait_until_finished()
    expect(page.locator("#spinner")).to_be_hidden()
    assert model.chunks_sent == model.total_chunks > 20

    footnotes = page.locator("#answer button.footnote")
    expect(footnotes).to_have_count(2)
    with b.live.client() as c:
        doc_id = page.locator("#sources .source-doc").first.inner_text()
        text = c.get(f"/v1/documents/{doc_id}").json()["text"]
    quotes = page.locator("#sources blockquote").all_inner_texts()
    assert len(quotes) == 2 and all(q in text for q in quotes)

    footnotes.nth(1).click()
    expect(page.locator("#doc-text mark.hl-current")).to_have_text(quotes[1])
    expect(page.locator("#doc-text mark.hl-other")).to_have_text([quotes[0]])
    expect(page.locator("#doc-subtitle")).to_contain_text("cited as [2]")
    b.shot("two-citations")
    # the sources list opens the same way
    page.locator("#sources .source-open").first.click()
    expect(page.locator("#doc-text mark.hl-current")).to_have_text(quotes[0])
    expect(page.locator("#doc-text mark.hl-other")).to_have_text([quotes[1]])


@pytest.mark.browser
def test_a_refusal_shows_the_plain_message_and_no_sources(browse, api_settings):
    b = browse()
    page = b.page
    b.ask(SEED_QUESTION)
    expect(page.locator("#sources li")).to_have_count(1)
    b.ask(UNANSWERABLE)
    b.wait_until_finished()
    answer = page.locator("#answer")
    expect(answer).to_have_text(api_settings.refusal_message)
    expect(answer).to_have_class(re.compile("refusal"))
    expect(page.locator("#answer-heading")).to_have_text("No answer in the documents")
    expect(page.locator("#answer button.footnote")).to_have_count(0)
    expect(page.locator("#sources li")).to_have_count(0)
    expect(page.locator("#sources-section")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    b.shot("refusal")


@pytest.mark.browser
def test_errors_show_the_services_message(browse):
    b = browse(FakeModel(fail=LLMError("server down")), llm="openai", llm_fallback=False, max_question_chars=80)
    page = b.page
    b.ask(SEED_QUESTION)  # fails inside the stream: an `error` event
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("the generative backend failed: server down")
    b.wait_until_finished()
    expect(page.locator("#result")).to_be_hidden()
    b.shot("error-stream")

    b.ask("why? " * 30)  # refused before streaming: a 422 with its message
    expect(error).to_contain_text("the limit is 80")
    expect(page.locator("#status")).not_to_have_class(re.compile("working"))


@pytest.mark.browser
def test_with_api_keys_the_page_asks_for_the_key_once_and_keeps_it_for_the_session(browse):
    b = browse(api_keys="page-key")
    page = b.page
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_hidden()  # the page itself needs no key
    b.ask(SEED_QUESTION)
    expect(dialog).to_be_visible()
    page.get_by_label("API key", exact=True).fill("not-the-key")
    page.get_by_label("API key", exact=True).press("Enter")
    expect(page.locator("#key-message")).to_contain_text("did not accept")
    b.shot("api-key")
    page.get_by_label("API key", exact=True).fill("page-key")
    page.get_by_role("button", name="Continue").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#answer button.footnote")).to_have_count(1)
    assert page.evaluate("sessionStorage.getItem('footnote.apiKey')") == "page-key"

    # kept: the next question and the document need no asking
    b.ask(SEED_QUESTION.replace("guarantee", "ensure"))
    b.wait_until_finished()
    page.locator("#answer button.footnote").first.click()
    expect(page.locator("#doc-text mark.hl-current")).to_contain_text("26 countries")
    expect(dialog).to_be_hidden()

    # cancelling the dialog shows the service's 401 message
    page.evaluate("sessionStorage.clear()")
    b.ask(SEED_QUESTION)
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#error")).to_contain_text("missing API key")
    b.wait_until_finished()


@pytest.mark.browser
def test_a_chat_citation_link_opens_its_sentence_highlighted(browse):
    b = browse()
    page = b.page
    with b.live.client() as c:
        chat = c.post("/v1/chat/completions", json={
            "model": "footnote", "messages": [{"role": "user", "content": SEED_QUESTION}]}).json()
        document = c.get("/v1/documents/000_f586ed492cfdf968.txt").json()
    [citation] = chat["footnote"]["citations"]
    url = chat["choices"][0]["message"]["annotations"][0]["url_citation"]["url"]
    assert url == citation["url"] == chat["sources"][0]["source"]["url"]

    page.goto(url)
    current = page.locator("#doc-text mark.hl-current")
    expect(current).to_have_text(citation["text"])
    expect(current).to_be_focused()
    expect(page.locator("#doc-title")).to_have_text(citation["document"])
    expect(page.locator("#doc-subtitle")).to_have_text(f"Sentence {citation['sentence']} of {document['sentence_count']}")
    expect(page.locator("#legend-other")).to_be_hidden()  # nothing else is marked
    b.shot("linked-sentence")

    # a later sentence, scrolled into the pane; the #sN form and Open WebUI's text fragment work too
    later = document["sentences"][-2]
    page.goto(f"{b.live.url}/documents/000_f586ed492cfdf968.txt#s{later['sentence']}")
    expect(current).to_have_text(later["text"])
    pane, mark = box(page, "#doc-text"), box(page, "#doc-text mark.hl-current")
    assert pane["y"] <= mark["y"] and mark["y"] + min(mark["height"], 40) <= pane["y"] + pane["height"]
    page.goto(f"{url}#:~:text=French,ended")
    expect(current).to_have_text(citation["text"])

    page.goto(f"{b.live.url}/documents/000_f586ed492cfdf968.txt?s=999")
    expect(page.locator("#doc-subtitle")).to_contain_text("has no sentence 999")
    expect(current).to_have_count(0)
    page.goto(f"{b.live.url}/documents/missing.txt?s=1")
    expect(page.locator("#doc-subtitle")).to_contain_text("Could not open the document")
    expect(page.locator("#doc-subtitle")).to_contain_text("no document 'missing.txt'")


@pytest.mark.browser
def test_with_api_keys_a_sentence_link_asks_for_the_key_then_opens(browse):
    b = browse(api_keys="page-key")
    page = b.page
    page.goto(f"{b.live.url}/documents/000_f586ed492cfdf968.txt?s=2")
    expect(page.locator("#key-dialog")).to_be_visible()
    page.get_by_label("API key", exact=True).fill("page-key")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#doc-text mark.hl-current")).to_have_count(1)
    expect(page.locator("#doc-subtitle")).to_contain_text("Sentence 2 of")
