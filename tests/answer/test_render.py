"""The terminal rendering: what a document contains must not drive the terminal."""

from service.answer.models import Answer, Citation
from service.answer.render import as_text, printable


def test_control_characters_from_documents_are_escaped_but_lines_and_tabs_kept():
    assert printable("red \x1b[31mALERT\x1b[0m\tok\nnext\r\x07") == "red \\x1b[31mALERT\\x1b[0m\tok\nnext\\x0d\\x07"


def test_an_answer_citing_an_escape_sequence_prints_it_harmlessly():
    text = "The \x1b]0;pwned\x07 title is set [1]."
    citation = Citation(n=1, document="a.txt", sentence=1, start=0, end=len(text), text=text)
    answer = Answer(answer=text, answerable=True, citations=[citation], model="extractive", backend="extractive")
    rendered = as_text(answer)
    assert "\x1b" not in rendered and "\x07" not in rendered and "\\x1b]0;pwned\\x07" in rendered
