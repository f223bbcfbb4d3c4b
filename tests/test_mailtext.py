"""Tests of maild.mailtext: the new text of a mail, without the quoted history, for the clients we meet.

The first half uses small literal mails (Gmail, Outlook, Apple Mail, Thunderbird in English and Spanish);
the second half runs the public reply-parser corpora in ../shared/corpora. The corpus expectations below
are also what benchmarks/quote_stripping.py scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import mailparser
import pytest

from maild.mailtext import html_to_text, new_text, strip_html_quotes

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


# --- plain text: reply headers ----------------------------------------------------------------------------


def test_gmail_english_top_post() -> None:
    """A Gmail reply keeps the text above "On … wrote:" and drops the header and the quote."""
    body = (
        "Thanks, that fixed it.\n\n"
        "On Mon, Mar 4, 2024 at 10:15 AM Juan Pérez <juan@example.com> wrote:\n\n"
        "> Please restart the router.\n>\n> Juan\n"
    )
    assert new_text(body, None) == "Thanks, that fixed it."


def test_gmail_spanish_top_post() -> None:
    """A Spanish Gmail reply drops "El … escribió:" (mail-parser-reply's own pattern misses it)."""
    body = (
        "Perfecto, gracias.\n\n"
        "El lun, 4 mar 2024 a las 10:15, Juan Pérez (<juan@example.com>) escribió:\n\n"
        "> Hola,\n> reinicia el router.\n"
    )
    assert new_text(body, None) == "Perfecto, gracias."


def test_gmail_spanish_wrapped_header() -> None:
    """An "El … escribió:" header wrapped over two lines is removed whole."""
    body = (
        "Listo.\n\n"
        "El lun., 4 mar. 2024 a las 10:15, Juan Pérez Gómez (<\n"
        "juan.perez.gomez@example.com>) escribió:\n\n"
        "> Hola\n"
    )
    assert new_text(body, None) == "Listo."


def test_outlook_english_block() -> None:
    """An Outlook reply is cut at the rule and From/Sent/To/Subject block; the history is not quoted."""
    body = (
        "Done, closing.\n\n"
        "________________________________\n"
        "From: Juan Pérez <juan@example.com>\n"
        "Sent: Monday, March 4, 2024 10:15 AM\n"
        "To: Support <support@example.com>\n"
        "Subject: RE: Printer\n\n"
        "The printer is broken again.\n"
    )
    assert new_text(body, None) == "Done, closing."


def test_outlook_spanish_block() -> None:
    """A Spanish Outlook reply is cut at its De/Enviado/Para/Asunto block."""
    body = (
        "Ya está resuelto.\n\n"
        "De: Juan Pérez <juan@example.com>\n"
        "Enviado: lunes, 4 de marzo de 2024 10:15\n"
        "Para: Soporte <soporte@example.com>\n"
        "Asunto: RE: Impresora\n\n"
        "La impresora no funciona.\n"
    )
    assert new_text(body, None) == "Ya está resuelto."


def test_outlook_spanish_original_message() -> None:
    """Older Outlook's "-----Mensaje original-----" with "Enviado el:" is cut, separator included."""
    body = (
        "Gracias.\n\n"
        "-----Mensaje original-----\n"
        "De: Juan Pérez [mailto:juan@example.com]\n"
        "Enviado el: lunes, 4 de marzo de 2024 10:15\n"
        "Para: Soporte\n"
        "Asunto: Impresora\n\n"
        "No imprime.\n"
    )
    assert new_text(body, None) == "Gracias."


def test_outlook_original_message_english() -> None:
    """The "-----Original Message-----" separator starts the history."""
    body = "See attached.\n\n-----Original Message-----\nFrom: a@example.com\nSent: today\n\nold\n"
    assert new_text(body, None) == "See attached."


def test_apple_mail_quoted_header() -> None:
    """Apple Mail quotes its own "On … wrote:" line; everything quoted goes."""
    body = (
        "Sounds good.\n\n> On 4 Mar 2024, at 10:15, Juan Pérez <juan@example.com> wrote:\n>\n> Shall we meet at noon?\n"
    )
    assert new_text(body, None) == "Sounds good."


def test_apple_mail_spanish() -> None:
    """Apple Mail's Spanish header "El 4 mar 2024, a las 10:15, … escribió:" is removed."""
    body = "De acuerdo.\n\nEl 4 mar 2024, a las 10:15, Juan Pérez <juan@example.com> escribió:\n\n> ¿Nos vemos?\n"
    assert new_text(body, None) == "De acuerdo."


def test_thunderbird_bottom_post() -> None:
    """Thunderbird puts the header on top and the answer under the quote: the answer is kept."""
    body = "On 04/03/2024 10:15, Juan Pérez wrote:\n> Is it fixed?\n\nYes, since this morning.\n"
    assert new_text(body, None) == "Yes, since this morning."


def test_thunderbird_spanish_top_post() -> None:
    """Thunderbird's "El 4/3/24 a las 10:15, Juan Pérez escribió:" is removed with its quote."""
    body = "Sí, funciona.\n\nEl 4/3/24 a las 10:15, Juan Pérez escribió:\n> ¿Funciona?\n"
    assert new_text(body, None) == "Sí, funciona."


def test_french_and_german_headers() -> None:
    """French "Le … a écrit :" and German "Am … schrieb …:" headers are removed."""
    french = "Merci.\n\nLe lun. 4 mars 2024 à 10:15, Jean <jean@example.com> a écrit :\n> Bonjour\n"
    german = "Danke.\n\nAm Mo., 4. März 2024 um 10:15 Uhr schrieb Hans <hans@example.com>:\n> Hallo\n"
    assert new_text(french, None) == "Merci."
    assert new_text(german, None) == "Danke."


def test_false_on_lines_are_kept() -> None:
    """Sentences that start with "On" or end with a colon are not mistaken for reply headers."""
    body = "On Monday I will restart the server.\n\nOne thing I noticed:\n\nthe disk is full."
    assert new_text(body, None) == body


# --- plain text: quotes, inline replies, signatures, commands ---------------------------------------------


def test_quoted_lines_removed() -> None:
    """Lines starting with '>' are history and go, at any depth."""
    body = "New text.\n> old\n>> older\n> > oldest\n"
    assert new_text(body, None) == "New text."


def test_inline_reply_keeps_new_lines() -> None:
    """An interleaved reply keeps every line typed between the quotes."""
    body = (
        "On Tue, Apr 29, 2014 at 4:22 PM, Ana <ana@example.com> wrote:\n"
        "> Can you check the logs?\n\n"
        "Checked, nothing there.\n\n"
        "> And the disk?\n\n"
        "It is 90% full.\n"
    )
    assert new_text(body, None) == "Checked, nothing there.\n\nIt is 90% full."


def test_command_line_and_signature_kept() -> None:
    """A '#time 30m' command line and a '-- ' signature survive (mail-parser-reply's body would drop it)."""
    body = (
        "#time 30m\nReplaced the toner.\n\n-- \nAna\nSupport team\n\n"
        "On Mon, Mar 4, 2024 at 10:15 AM Juan <juan@example.com> wrote:\n> Toner?\n"
    )
    assert new_text(body, None) == "#time 30m\nReplaced the toner.\n\n-- \nAna\nSupport team"


def test_device_lines_dropped() -> None:
    """'Sent from my iPhone'-style lines go, in English and Spanish, with a '--' left alone above them."""
    assert new_text("Ok\n\nSent from my iPhone", None) == "Ok"
    assert new_text("Vale\n\nEnviado desde mi iPhone\n", None) == "Vale"
    assert new_text("Ok\n\n--\nSent from my Galaxy\n", None) == "Ok"
    assert new_text("Ok\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", None) == "Ok"


def test_sentence_starting_like_device_line_kept() -> None:
    """A real sentence that starts with 'Sent from my' is not a device line."""
    body = "Here it is\n\nSent from my desk, which is much easier than my phone."
    assert new_text(body, None) == body


def test_forward_with_comment_keeps_comment() -> None:
    """A forward with a comment yields the comment only."""
    body = (
        "Please handle this.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Juan <juan@example.com>\nDate: Mon, 4 Mar 2024\nSubject: Printer\nTo: Ana <ana@example.com>\n\n"
        "It is broken.\n"
    )
    assert new_text(body, None) == "Please handle this."


def test_forward_without_comment_keeps_forwarded_text() -> None:
    """A forward with nothing typed yields the forwarded message, which is what the sender passes on."""
    body = (
        "---------- Forwarded message ---------\n"
        "From: Juan <juan@example.com>\nDate: Mon, 4 Mar 2024\nSubject: Printer\nTo: Ana <ana@example.com>\n\n"
        "It is broken.\n"
    )
    assert new_text(body, None) == "It is broken."


def test_reply_with_nothing_typed_is_empty() -> None:
    """An Outlook reply with nothing above its header block has no new text (the thread is not repeated)."""
    body = "\n\nFrom: Ana <ana@example.com>\nSent: Monday\nTo: Juan\nSubject: RE: Printer\n\nFixed.\n"
    assert new_text(body, None) == ""


def test_windows_line_endings_and_trailing_whitespace() -> None:
    """CRLF bodies work and trailing whitespace is trimmed."""
    body = "Yes   \r\n\r\nOn Mon, Mar 4, 2024 at 10:15 AM Juan <juan@example.com> wrote:\r\n> Ok?\r\n"
    assert new_text(body, None) == "Yes"


def test_quoted_printable_leftovers_decoded() -> None:
    """A body still quoted-printable encoded (soft breaks inside the header) is decoded first."""
    body = (
        "Thanks =E2=80=93 the printer wo=\nrks again.\n\n"
        "On Mon, Jun 3, 2024 at 12:53=E2=80=AFAM Cody Hart <cody@example.com> w=\nrote:\n\n> Hi\n"
    )
    assert new_text(body, None) == "Thanks – the printer works again."


# --- HTML -------------------------------------------------------------------------------------------------

GMAIL_HTML = (
    '<div dir="ltr">Thanks, done.<div><br></div><div>#time 15m</div></div><br>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Mar 4, 2024 at 10:15 AM Juan '
    '&lt;<a href="mailto:juan@example.com">juan@example.com</a>&gt; wrote:<br></div>'
    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204)">'
    "<div>Can you add paper?</div></blockquote></div>"
)


def test_html_only_gmail() -> None:
    """An HTML-only Gmail reply loses its gmail_quote and keeps the new lines and the command."""
    assert new_text(None, GMAIL_HTML) == "Thanks, done.\n\n#time 15m"
    assert new_text("", GMAIL_HTML) == "Thanks, done.\n\n#time 15m"


def test_html_only_gmail_spanish() -> None:
    """A Spanish Gmail HTML reply whose attribution sits in the quote div (old style) loses it too."""
    html = (
        '<div>Gracias.</div><div class="gmail_quote">El lun, 4 mar 2024 a las 10:15, Juan '
        '(&lt;<a href="mailto:juan@example.com">juan@example.com</a>&gt;) escribió:<br>'
        '<blockquote class="gmail_quote">Hola</blockquote></div>'
    )
    assert new_text(None, html) == "Gracias."


def test_html_inline_reply() -> None:
    """Text typed between blockquotes in HTML (inline reply) is kept, the quotes and header are not."""
    html = (
        '<div>See below.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 4, 2024 '
        'Juan &lt;juan@example.com&gt; wrote:</div><blockquote class="gmail_quote">Question 1?</blockquote>'
        '<div>Answer 1.</div><blockquote class="gmail_quote">Question 2?</blockquote><div>Answer 2.</div></div>'
    )
    assert new_text(None, html) == "See below.\n\nAnswer 1.\n\nAnswer 2."


def test_html_outlook_spanish() -> None:
    """Outlook HTML is cut at divRplyFwdMsg, and at a border-top separator followed by De:/Enviado:."""
    rply = (
        '<div><p class="MsoNormal">Listo.</p></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg"><b>De:</b> Juan<br><b>Enviado:</b> lunes</div><div>Viejo</div>'
    )
    border = (
        '<p class="MsoNormal">Listo.</p><p class="MsoNormal">&nbsp;</p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        '<p class="MsoNormal"><b>De:</b> Juan <br><b>Enviado el:</b> lunes<br><b>Para:</b> Soporte</p></div>'
        '<p class="MsoNormal">Viejo</p>'
    )
    assert new_text(None, rply) == "Listo."
    assert new_text(None, border) == "Listo."


def test_html_thunderbird_and_apple() -> None:
    """Thunderbird's moz-cite-prefix and Apple Mail's blockquote type=cite are removed."""
    thunderbird = (
        '<p>Yes.</p><div class="moz-cite-prefix">On 04/03/2024 10:15, Juan wrote:<br></div>'
        '<blockquote type="cite">Is it fixed?</blockquote>'
    )
    apple = (
        '<div>Yes.<br><div><br><blockquote type="cite"><div>On 4 Mar 2024, at 10:15, Juan '
        "&lt;juan@example.com&gt; wrote:</div><div>Is it fixed?</div></blockquote></div></div>"
    )
    assert new_text(None, thunderbird) == "Yes."
    assert new_text(None, apple) == "Yes."


def test_strip_html_quotes_keeps_markup_of_new_text() -> None:
    """strip_html_quotes returns HTML: new text and its markup stay, quote blocks and Outlook history go."""
    stripped = strip_html_quotes(GMAIL_HTML)
    assert "Thanks, done." in stripped and "<div>#time 15m</div>" in stripped
    assert "Can you add paper?" not in stripped and "wrote:" not in stripped
    outlook = '<p>Hi</p><div id="divRplyFwdMsg"><b>From:</b> x</div><p>old</p>'
    assert strip_html_quotes(outlook) == "<p>Hi</p>"
    assert strip_html_quotes('<p>A &amp; B &lt;c&gt;</p><blockquote type="cite">q</blockquote>') == (
        "<p>A &amp; B &lt;c&gt;</p>"
    )


def test_html_to_text_is_plain() -> None:
    """html_to_text gives plain text: no Markdown markup or escapes, links as 'text (url)', no images."""
    html = (
        "<h2>Status</h2><p><b>Bold</b> and <i>italic</i>.</p><p>1. first<br>- second<br>C:\\temp</p>"
        '<p>See <a href="https://example.com/doc">the doc</a>, <a href="https://example.com">example.com</a>'
        ' and <a href="mailto:a@example.com">Ana</a>.<img src="x.png" alt="logo"></p>'
        "<table><tr><td>a</td><td>b</td></tr></table>"
    )
    assert html_to_text(html) == (
        "Status\n\nBold and italic.\n\n1. first\n- second\nC:\\temp\n\n"
        "See the doc (https://example.com/doc), example.com and Ana.\n\na b"
    )


def test_html_to_text_keeps_outlook_lines() -> None:
    """Outlook's one-paragraph-per-line markup reads as lines, and its &nbsp; paragraphs as blank lines."""
    html = '<p class="MsoNormal">Hi,</p><p class="MsoNormal">&nbsp;</p><p class="MsoNormal">Bye</p>'
    assert html_to_text(html) == "Hi,\n\nBye"


# --- empty and odd input ----------------------------------------------------------------------------------


def test_empty_bodies() -> None:
    """No body, blank bodies and an empty HTML document all give ""."""
    assert new_text(None, None) == ""
    assert new_text("", "") == ""
    assert new_text(" \r\n\t\n", None) == ""
    assert new_text(None, "<html><body><br></body></html>") == ""


def test_plain_preferred_over_html() -> None:
    """The text/plain body wins when it has content; a blank one falls back to the HTML body."""
    assert new_text("plain", "<p>html</p>") == "plain"
    assert new_text("\n \n", "<p>html</p>") == "html"


@pytest.mark.parametrize(
    "odd",
    [
        "\x00\x00",
        "\ud800 lone surrogate",
        ">" * 5000,
        "On\n" * 3,
        "From:\nTo:\n",
        "=\n=\n=E2=80=A\n=ZZ",
        "a" * 200_000 + ":",
        "\u202e\ufeff\u200b",
    ],
)
def test_odd_plain_input_never_raises(odd: str) -> None:
    """Junk text bodies give a string, never an exception."""
    assert isinstance(new_text(odd, None), str)


@pytest.mark.parametrize(
    "odd",
    [
        "<",
        "<blockquote>",
        "<div class='gmail_attr'>On x wrote:",
        "<![CDATA[x]]><?xml x?><!DOCTYPE html>&#xD800;&bogus;",
        "<hr>" * 2000,
        "<table><td>" * 500,
        "<style>a > b {}</style><script>if (a < b) {}</script>text",
    ],
)
def test_odd_html_input_never_raises(odd: str) -> None:
    """Junk HTML bodies give a string from all three functions, never an exception."""
    assert isinstance(new_text(None, odd), str)
    assert isinstance(strip_html_quotes(odd), str)
    assert isinstance(html_to_text(odd), str)


# --- corpora ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromFixture:
    """An expected text made of the fixture's own lines (ranges are 0-based, end excluded) and literals.

    Used for long fixtures, where copying the text into the test would hide what is kept and what is not.
    """

    parts: tuple[tuple[int, int | None] | str, ...]

    def render(self, fixture: str) -> str:
        """The expected text for ``fixture``: chosen lines right-stripped (a '-- ' delimiter kept)."""
        lines = fixture.replace("\r\n", "\n").split("\n")
        picked: list[str] = []
        for part in self.parts:
            picked.extend([part] if isinstance(part, str) else lines[part[0] : part[1]])
        return "\n".join(line if line == "-- " else line.rstrip() for line in picked).rstrip()


Expected = str | FromFixture


def corpus_dir(name: str) -> Path:
    """A corpus folder, or a skip when the shared corpora are not checked out beside the repository."""
    folder = CORPORA / name
    if not folder.is_dir():
        pytest.skip(f"corpora not found at {folder}: CI provides ../shared/corpora")
    return folder


def read_text(path: Path) -> str:
    """A plain-text fixture as the mail parser would hand it over (UTF-8, CRLF kept)."""
    return path.read_bytes().decode("utf-8", errors="replace")


def resolve(expected: Expected, fixture: str) -> str:
    """The expected string of a corpus entry."""
    return expected.render(fixture) if isinstance(expected, FromFixture) else expected


_ANOTHER_EMAIL = "Here is another email"
_GREEDY_ON = (
    "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\n"
    "This should connect to TextMate (on your Mac, via the tunnel). If that\nfails, the tunnel is not working."
)

#: github/email_reply_parser fixtures: the visible reply of its test suite, with our two differences:
#: signatures stay (email_1_1's "-Abhishek Kona") and inline replies keep only the typed lines.
GITHUB: dict[str, Expected] = {
    "correct_sig.txt": "this is an email with a correct -- signature.\n\n-- \nrick",
    "email_1_1.txt": FromFixture(((0, 7),)),
    "email_1_2.txt": FromFixture(((0, 1), "", (8, 34))),
    "email_1_3.txt": "Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona",
    "email_1_4.txt": "Awesome! I haven't had another problem with it.",
    "email_1_5.txt": FromFixture(((0, None),)),
    "email_1_6.txt": "I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
    "email_1_7.txt": ":+1:",
    "email_1_8.txt": "I will reply under this one\n\nand under this.\n\n--\nHey there, this is my signature",
    "email_2_1.txt": "Outlook with a reply",
    "email_2_2.txt": "Outlook with a reply directly above line",
    "email_2_3.txt": "Outlook with a reply directly above line",
    "email_BlackBerry.txt": _ANOTHER_EMAIL,
    "email_bullets.txt": FromFixture(((0, 9), "", (19, 22))),
    "email_iPhone.txt": _ANOTHER_EMAIL,
    "email_long_quote.txt": FromFixture(((0, 4), (5, 10))),
    "email_multi_word_sent_from_my_mobile_device.txt": _ANOTHER_EMAIL,
    "email_one_is_not_on.txt": (
        "Thank, this is really helpful.\n\nOne outstanding question I had:\n\nLocally (on development), when I run..."
    ),
    "email_sent_from_my_not_signature.txt": (
        "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
    ),
    "email_sig_delimiter_in_middle_of_line.txt": FromFixture(((0, None),)),
    "greedy_on.txt": _GREEDY_ON,
    "pathological.txt": (
        "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer."
    ),
}

_GITHUB_SHARED = {name: GITHUB[name] for name in GITHUB if name not in ("email_2_3.txt", "email_long_quote.txt")}

#: zapier/email-reply-parser: github's files plus four of its own.
ZAPIER: dict[str, Expected] = {
    **_GITHUB_SHARED,
    "email_2_3.txt": "Outlook with a reply above headers using unusual format",
    "email_gmail.txt": "This is a test for inbox replying to a github message.",
    "email_headers_no_delimiter.txt": "And another reply!",
    "email_partial_quote_header.txt": _GREEDY_ON,
}

_FROM_ZAPIER = (
    "correct_sig.txt",
    "email_1_1.txt",
    "email_1_3.txt",
    "email_1_4.txt",
    "email_1_5.txt",
    "email_1_6.txt",
    "email_1_7.txt",
    "email_1_8.txt",
    "email_2_1.txt",
    "email_2_2.txt",
    "email_2_3.txt",
    "email_bullets.txt",
    "email_gmail.txt",
    "email_headers_no_delimiter.txt",
    "email_one_is_not_on.txt",
    "email_partial_quote_header.txt",
    "email_sig_delimiter_in_middle_of_line.txt",
    "greedy_on.txt",
    "pathological.txt",
)

#: alfonsrv/mail-parser-reply: the header line and everything after it go. A body that *opens* with a
#: header block (the email_pl_1_* files, multiline_on) has nothing typed above it, so no new text.
ALFONSRV: dict[str, Expected] = {
    **{name: ZAPIER[name] for name in _FROM_ZAPIER},
    "begins_with_signature.txt": (
        "Thank you, Sonya Johnson.\n\nI have sent an invite for 10:30am Monday PDT (today).  I\nhope you can join."
        "\n\nRegards,\n\nChristopher Edwards"
    ),
    "caution.txt": FromFixture(((4, 33),)),
    "caution2.txt": FromFixture(((0, None),)),
    "email_3_1.txt": "First reply.\n\nThis is fairly common; nothing too hard here!",
    "email_danish_1.txt": "Hej Peter,\n\nTak for din mail. Det lyder godt.\n\nMed venlig hilsen\nAnders Andersen",
    "email_danish_2.txt": "Hej Hanne,\n\nJeg har modtaget filerne.\n\nHilsen\nSøren",
    "email_danish_3.txt": "Hej,\n\nSvar.",
    "email_danish_4.txt": "Hej,\n\nSvar.",
    "email_danish_5.txt": "Hej,\n\nSvar.\n\nKh\nPeter",
    "email_ja_1_1.txt": "こんにちは、みなさん！",
    "email_ja_1_2.txt": FromFixture(((0, 8),)),
    "email_nl_1_1.txt": FromFixture(((0, 6),)),
    "email_nl_1_2.txt": "Outlook met een antwoord",
    "email_pl_1_1.txt": "",
    "email_pl_1_2.txt": "",
    "email_pl_1_3.txt": "",
    "email_sent_from_BlackBerry.txt": _ANOTHER_EMAIL,
    "email_sent_from_iPhone.txt": _ANOTHER_EMAIL,
    "email_sent_from_multi_word_mobile_device.txt": _ANOTHER_EMAIL,
    "email_sent_from_not_signature.txt": (
        "Here is another email\n\nSent from my desk, is much easier than my mobile phone."
    ),
    "email_sv_anon_1.txt": FromFixture(((0, 8),)),
    "email_swedish_1.txt": FromFixture(((0, 8),)),
    "email_swedish_2.txt": FromFixture(((0, 7),)),
    "forward.txt": FromFixture(((0, None),)),
    "multi_header.txt": "No problem. I’ll just start a new order.",
    "multiline_on.txt": "",
    "multiline_on_de.txt": "Am heutigen Tage",
    "outlook.txt": FromFixture(((0, 8),)),
}

PLAIN_CORPORA: dict[str, dict[str, Expected]] = {
    "github-email_reply_parser": GITHUB,
    "zapier-email-reply-parser": ZAPIER,
    "alfonsrv-mail-parser-reply": ALFONSRV,
}

#: Known failures: fixture -> reason (each becomes a strict xfail).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

TALON_STANDARD = (
    "android",
    "aol",
    "apple_mail",
    "apple_mail_2",
    "comcast",
    "gmail",
    "hotmail",
    "iphone",
    "outlook",
    "sparrow",
    "thunderbird",
    "yahoo",
)
TALON_HTML = (
    "gmail",
    "hotmail",
    "mail_ru",
    "ms_outlook_2003",
    "ms_outlook_2007",
    "ms_outlook_2010",
    "thunderbird",
    "windows_mail",
    "yandex_ru",
)
TALON_HTML_EXPECTED = "Hi.Iamfine.Thanks,Alex"


def eml_bodies(path: Path) -> tuple[str, str]:
    """The text/plain and text/html bodies of an .eml file, as maild's intake reads them."""
    mail = mailparser.parse_from_bytes(path.read_bytes())
    return "\n".join(mail.text_plain), "\n".join(mail.text_html)


def talon_expected(folder: Path, name: str) -> str:
    """talon's expected reply ('Hello' or <name>_reply_text), minus the device line our spec drops."""
    reply = folder / f"{name}_reply_text"
    if not reply.exists():
        return "Hello"
    lines = [line if line == "-- " else line.rstrip() for line in reply.read_text(encoding="utf-8").split("\n")]
    lines = [line for line in lines if not re.fullmatch(r"Sent from my \w+", line)]
    return "\n".join(lines).strip()


def _corpus_params() -> list[object]:
    """One pytest param per plain-text corpus fixture, strict-xfail for the known failures."""
    params: list[object] = []
    for corpus, table in PLAIN_CORPORA.items():
        for name in sorted(table):
            reason = KNOWN_FAILURES.get((corpus, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(corpus, name, id=f"{corpus.split('-')[0]}/{name}", marks=marks))
    return params


@pytest.mark.parametrize(("corpus", "name"), _corpus_params())
def test_plain_corpus(corpus: str, name: str) -> None:
    """Each reply-parser fixture yields exactly its expected new text."""
    fixture = read_text(corpus_dir(corpus) / name)
    assert new_text(fixture, None) == resolve(PLAIN_CORPORA[corpus][name], fixture)


def test_long_quote_is_correct() -> None:
    """The 767 KB long-quote fixture gives its new lines exactly, the 700 KB unquoted line included."""
    fixture = read_text(corpus_dir("github-email_reply_parser") / "email_long_quote.txt")
    lines = fixture.split("\n")
    result = new_text(fixture, None)
    assert result == "\n".join([*lines[0:4], *lines[5:10]])
    assert result.startswith("Hi folks\n") and result.endswith("-Abhishek Kona")
    assert not any(line.startswith(">") for line in result.split("\n"))


@pytest.mark.parametrize("name", TALON_STANDARD)
def test_talon_standard_replies(name: str) -> None:
    """talon's replies from 11 clients give 'Hello' (or their reply_text) from the text/plain body."""
    folder = corpus_dir("talon") / "standard_replies"
    plain, html = eml_bodies(folder / f"{name}.eml")
    assert new_text(plain, html) == talon_expected(folder, name)


@pytest.mark.parametrize("name", TALON_HTML)
def test_talon_html_replies(name: str) -> None:
    """talon's HTML replies from 9 clients give 'Hi. I am fine. Thanks, Alex' (whitespace ignored)."""
    html = (corpus_dir("talon") / "html_replies" / f"{name}.html").read_text(encoding="utf-8", errors="replace")
    assert re.sub(r"\s", "", new_text(None, html)) == TALON_HTML_EXPECTED


def test_talon_outlook_source_body_section() -> None:
    """Outlook for Mac's OLK_SRC_BODY_SECTION span is history: only 'Reply' remains."""
    html = (corpus_dir("talon") / "OLK_SRC_BODY_SECTION.html").read_text(encoding="utf-8")
    assert new_text(None, html) == "Reply"


def test_talon_reply_separated_by_hr() -> None:
    """An <hr> followed by From:/To:/Sent: cuts the history; the 'Bob' signature above it is kept."""
    html = (corpus_dir("talon") / "reply-separated-by-hr.html").read_text(encoding="utf-8")
    assert new_text(None, html) == "Hi\nthere\nBob"


def test_talon_quotations_share_block() -> None:
    """Yahoo's '--- On … wrote:' inside the reply's block is cut in plain text and HTML alike."""
    plain, html = eml_bodies(corpus_dir("talon") / "reply-quotations-share-block.eml")
    for result in (new_text(plain, None), new_text(None, html)):
        assert result.startswith("Hi Katharine.")
        assert "From" not in result and "wrote" not in result
        assert result.endswith(("Joe XXX", "Jhon Doe"))


def test_talon_signature_bodies_untouched() -> None:
    """Bodies without any quote (talon's signature fixtures) come back whole: no false reply header."""
    folder = corpus_dir("talon") / "signature" / "emails"
    bodies = [*sorted((folder / "stripped").glob("*_body")), folder / "P" / "johndoeexamplecom_body"]
    bodies.append(folder / "P" / "unicode_msg")
    for path in bodies:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        expected = "\n".join(line.rstrip() for line in text.split("\n")).strip()
        assert new_text(text, None) == expected, path.name


# --- the reply-header grammar is only tried where a match can begin ----------------------------------------


def _library_spans(lines: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(finditer's spans, _library_matches' spans) over the same lines."""
    from maild.mailtext import _LIBRARY_HEADER_RE, _library_matches

    text = "\n".join(lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    everywhere = [m.span() for m in _LIBRARY_HEADER_RE.finditer(text)]
    candidates = [m.span() for m in _library_matches(text, lines, starts)]
    return everywhere, candidates


_HEADERISH = [
    "",
    "",
    "",
    "> quoted",
    ">",
    "Thanks, that fixed it.",
    "On Mon, Mar 4, 2024 at 10:15 AM Juan Pérez <juan@example.com> wrote:",
    "On Mon, Mar 4, 2024 at 10:15 AM Juan",
    "Pérez <juan@example.com> wrote:",
    "El lun, 4 mar 2024 a las 10:15, Juan (<juan@example.com>) escribió:",
    "Am 04.03.2024 um 10:15 schrieb Juan <juan@example.com>:",
    "Le 4 mars 2024 à 10:15, Juan a écrit :",
    "Den 4. mar. 2024 kl. 10:15 skrev Juan <juan@example.com>:",
    "2024年3月4日(月) 10:15 Juan <juan@example.com>:",
    "From: Juan <juan@example.com>",
    "*From:* Juan",
    "> From: Juan",
    "Sent: Monday, March 4, 2024",
    "To: Support",
    "Subject: RE: Printer",
    "De: Juan",
    "Enviado: lunes",
    "Para: Soporte",
    "Von: Juan",
    "An: Support",
    "Od: Juan",
    "Fra: Juan",
    "Sendt: mandag",
    "-----Oprindelig meddelelse-----",
    "-----Original Message-----",
    "[Original Message processed by david]",
    "  ",
    "Cc:",
]


def test_library_matches_equal_finditer_on_generated_text() -> None:
    """Trying the grammar only at non-empty lines and the newline before them finds exactly what trying every
    character finds: on 2,000 seeded mixes of reply headers, field blocks, quotes and blank runs."""
    import random

    rng = random.Random(8)
    found = 0
    for _ in range(2000):
        lines = [rng.choice(_HEADERISH) for _ in range(rng.randint(1, 30))]
        everywhere, candidates = _library_spans(lines)
        assert candidates == everywhere, lines
        found += len(everywhere)
    assert found > 1000  # the mixes do contain headers, so the equality is not vacuous


def test_library_matches_equal_finditer_on_the_corpora() -> None:
    """The same equality on every reply-parser fixture, as the lines _library_view hands the grammar and raw."""
    from maild.mailtext import _library_view, _view

    files = [
        path
        for name in ("github-email_reply_parser", "zapier-email-reply-parser", "alfonsrv-mail-parser-reply", "talon")
        for path in sorted(corpus_dir(name).rglob("*"))
        if path.is_file() and path.stat().st_size < 200_000
    ]
    assert len(files) > 100
    found = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        view = [_view(line) for line in text.splitlines()]
        for lines in (_library_view(view), view):
            everywhere, candidates = _library_spans(lines)
            assert candidates == everywhere, path
            found += len(everywhere)
    assert found > 100
