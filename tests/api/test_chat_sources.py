"""Citations in the shapes chat frontends read (service/api/chat_sources.py), without a server."""

from __future__ import annotations

import re

from service.answer.models import Answer, Citation
from service.api.chat_sources import ChatCitations, claim_spans, short_name, source_name
from service.api.links import SentenceLinks

BASE = "https://footnote.example.org"
DOC = "000_f586ed492cfdf968.txt"
C1 = Citation(n=1, document=DOC, sentence=1, start=0, end=20, text="Macron said 26 countries pledged.")
C2 = Citation(n=2, document="sub dir/notes_[draft]*.md", sentence=9, start=40, end=80,
              text="Meloni said *no* troops_\nwould go [sic].")
# As the verifier writes answers: claims joined by one space, markers closing each claim.
TEXT = ("26 countries pledged [1]. Italy said \"no troops.\" [2] Both spoke in Paris [1][2]. "
        "A quoted [3] is not a marker [2].")


def cites(markdown: bool = False) -> ChatCitations:
    return ChatCitations(SentenceLinks(BASE), markdown=markdown)


def test_names_are_short_and_say_which_sentence():
    assert short_name(DOC) == "000_f586….txt"
    assert short_name("a/short.md") == "a/short.md"
    assert short_name("README") == "README"
    assert source_name(C2) == "sub dir/notes_[d….md · sentence 9"


def test_each_claim_span_ends_with_its_markers_and_unknown_markers_do_not_cut():
    spans = claim_spans(TEXT, {1, 2})
    assert [TEXT[s:e] for s, e, _ in spans] == [
        "26 countries pledged [1].", "Italy said \"no troops.\" [2]", "Both spoke in Paris [1][2].",
        "A quoted [3] is not a marker [2]."]
    assert [numbers for *_, numbers in spans] == [[1], [2], [1, 2], [2]]


def test_annotations_index_the_whole_content_one_per_marker():
    c = cites()
    found = c.annotations(TEXT, {1: C1, 2: C2})
    assert len(found) == 5 == len(re.findall(r"\[[12]\]", TEXT))
    for a in found:
        span = TEXT[a.url_citation.start_index:a.url_citation.end_index]
        n = 1 if a.url_citation.url == c.url(C1) else 2
        assert f"[{n}]" in span and not span.startswith(" ") and a.type == "url_citation"
    assert found[0].url_citation.url == f"{BASE}/documents/{DOC}?s=1"
    assert found[1].url_citation.url == f"{BASE}/documents/sub%20dir/notes_%5Bdraft%5D%2A.md?s=9"
    assert found[0].url_citation.title == "000_f586….txt · sentence 1"


def test_streamed_pieces_get_the_same_annotations_as_the_whole_text():
    whole = cites().annotations(TEXT, {1: C1, 2: C2})
    c = cites()
    c.cited(C1)
    c.cited(C2)
    pieces = ["26 countries pledged [1].", " Italy said \"no troops.\" [2]", " Both spoke in Paris [1][2].",
              " A quoted [3] is not a marker [2]."]
    assert "".join(pieces) == TEXT
    assert [a for p in pieces for a in c.delta(p)] == whole


def test_a_source_is_what_open_webui_reads_one_per_citation():
    source = cites().cited(C1)
    assert source.type == "source"
    data = source.data.model_dump()
    url = f"{BASE}/documents/{DOC}?s=1"
    assert data["source"] == {"id": f"{DOC}#s1", "name": "000_f586….txt · sentence 1", "url": url}
    assert data["document"] == [C1.text]
    assert data["metadata"] == [{"source": url, "name": "000_f586….txt · sentence 1", "source_url": url,
                                 "document": DOC, "sentence": 1, "n": 1, "external": True}]
    assert "type" not in data  # Open WebUI stores only sources without a `type`


def test_the_markdown_sources_list_links_and_quotes_each_citation_escaped():
    answer = Answer(answer=TEXT, answerable=True, citations=[C1, C2])
    assert cites().content(answer) == TEXT  # only -markdown models get the list
    content = cites(markdown=True).content(answer)
    assert content.startswith(TEXT + "\n\n**Sources**\n\n")
    lines = content.split("\n\n**Sources**\n\n")[1].split("\n")
    assert lines == [
        f"1. [000\\_f586….txt · sentence 1]({BASE}/documents/{DOC}?s=1) “Macron said 26 countries pledged.”",
        f"2. [sub dir/notes\\_\\[d….md · sentence 9]({BASE}/documents/sub%20dir/notes_%5Bdraft%5D%2A.md?s=9) "
        "“Meloni said \\*no\\* troops\\_ would go \\[sic\\].”",
    ]
    refusal = Answer(answer="The documents do not contain the answer to this question.", answerable=False)
    assert cites(markdown=True).content(refusal) == refusal.answer


def test_linked_citations_keep_every_field_and_add_the_url():
    [linked] = cites().linked([C1])
    assert linked.model_dump() == {**C1.model_dump(), "url": f"{BASE}/documents/{DOC}?s=1"}
