"""The customer's language (`maild.language`): rules here, through mail in test_commands_e2e.py."""

from __future__ import annotations

import logging

import pytest

from maild.language import customer_language, header_language, written_in
from maild.mime import content_message_id, parse_mail
from tests.helpers import CORPORA

BOTH = ("es", "en")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hola,\n\nmi impresora está en llamas. ¿Pueden ayudarme?\n\nGracias, Carmen", "es"),
        ("Buenos días, tengo un problema con la factura de este mes. Saludos", "es"),
        ("Hi,\n\nmy printer is on fire. Can you help?\n\nThanks, Carmen", "en"),
        ("Hello, I have not received the invoice for this month. Regards", "en"),
        ("Ciao, la mia stampante non funziona: potete aiutarmi con una soluzione? Grazie", None),  # Italian
        ("Hoi, de printer doet het niet en ik weet niet wat ik moet doen.", None),  # Dutch
        ("OK", None),
        ("", None),
        # Short Spanish: an opening ¿ or ¡ is Spanish alone of the two, and so are ñ and accented vowels.
        ("¿Me ayudan?", "es"),
        ("¡Urgente! No funciona", "es"),
        ("Impresora averiada\nNo imprime ningún documento, sólo páginas en blanco", "es"),
        ("Hi, this is José from the café. My printer is on fire, can you help? Thanks", "en"),
        ("Thanks for the quick answer! We will try it, and tell you if it works on our side.", "en"),
    ],
)
def test_written_in_decides_only_on_clear_words(text: str, language: str | None) -> None:
    assert written_in(text, BOTH) == language


def test_written_in_answers_only_supported_languages() -> None:
    assert written_in("Hola, mi impresora está rota. Gracias", ("en",)) is None


@pytest.mark.parametrize(
    ("headers", "language"),
    [
        (["es-ES", ""], "es"),
        (["", "en-US, es;q=0.9"], "en"),
        (["", "de-DE, es;q=0.5, en;q=0.8"], "en"),  # German first, then by q
        (["fr-FR", "es-ES"], "es"),  # Content-Language unsupported: Accept-Language next
        (["", "es;q=bad, en"], "en"),
        (["", ""], None),
        (["fr", "de"], None),
    ],
)
def test_header_language_takes_the_first_supported_tag(headers: list[str], language: str | None) -> None:
    assert header_language(headers, BOTH) == language


def test_clear_words_win_over_headers_which_win_over_the_default() -> None:
    """A client labels mail with its menus' language; what the customer typed says more."""
    spanish = "Hola, mi impresora está rota desde ayer. Gracias"
    assert customer_language(spanish, ["en-US", "en-US"], "en", BOTH) == "es"
    assert customer_language("OK", ["es-ES", ""], "en", BOTH) == "es"
    assert customer_language("OK", ["", ""], "en", BOTH) == "en"


def test_corpus_mail_labelled_english_is_answered_in_english() -> None:
    """Every corpus mail whose Content-Language is English gets English on a Spanish desk, by its words or
    by that header: the Spanish word list does not misread real English mail."""
    if not CORPORA.is_dir():
        pytest.skip(f"corpus not found at {CORPORA}: CI provides ../shared/corpora beside the checkout")
    logging.disable(logging.WARNING)  # mail-parser logs every MIME type it does not decode
    try:
        checked = 0
        for path in sorted(p for p in CORPORA.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv")):
            raw = path.read_bytes()
            try:
                mail = parse_mail(raw, content_message_id(raw, "example.com"))
            except ValueError:
                continue
            if not mail.header("content-language").lower().startswith("en"):
                continue
            headers = [mail.header("content-language"), mail.header("accept-language")]
            assert customer_language(mail.text or mail.full_text, headers, "es", BOTH) == "en", path
            checked += 1
    finally:
        logging.disable(logging.NOTSET)
    assert checked >= 10
