"""The language a new ticket's customer mail is answered in: the customer's own, when maild can tell.

maild ships its customer templates in English and Spanish. A desk whose `[maild] language` is one of them still
gets mail in the other, and a customer should not be acknowledged in a language they did not write in. The
words of the mail decide when they are clear (mail clients label a message with the language of their menus,
not of what their user typed); else the mail's Content-Language, then its Accept-Language; else the desk's
language. Agents correct a ticket with ``#language``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Frequent words of one of the two languages that are rare in the other; those Spanish shares with Dutch
# ("de", "en") or Italian ("la", "con", "una", "se", "lo", "su", "al") are left out.
_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and to of is it you my we our for with this that please thanks thank hello hi have be are was on "  # noqa: SIM905
        "can regards would could your will not from at but there what if i".split()
    ),
    "es": frozenset(
        "el los las que y por para está pero como del muy gracias hola tengo nuestro nuestra usted ustedes "  # noqa: SIM905
        "buenos buenas saludos favor también cuando desde hay mi este esta es sus".split()
    ),
}
_LANGUAGE_OF = {word: language for language, words in _WORDS.items() for word in words}
# Clear means at least this many telling words, and this many times the other language's.
MIN_WORDS, MIN_RATIO = 3, 2
# The start of a long mail says as much as all of it.
SAMPLE_CHARS = 4000
_WORD = re.compile(r"[^\W\d_]+")
# Spanish alone of the two writes these: an opening ¿ or ¡ tells as much as MIN_WORDS words (a short "¿Me
# ayudan?" is clear), and a word with ñ or an accented vowel counts as one Spanish word.
_SPANISH_MARKS = re.compile(r"[¿¡]")
_SPANISH_LETTERS = re.compile(r"[ñáéíóú]")


def customer_language(text: str, headers: Sequence[str], default: str, supported: Sequence[str]) -> str:
    """The language to answer in: the text's when clear, else the first supported tag of ``headers``
    (Content-Language, then Accept-Language values), else ``default``."""
    return written_in(text, supported) or header_language(headers, supported) or default


def written_in(text: str, supported: Sequence[str]) -> str | None:
    """English or Spanish when the words clearly say so, else None."""
    sample = text[:SAMPLE_CHARS].lower()
    counts = dict.fromkeys(_WORDS, 0)
    counts["es"] += MIN_WORDS * len(_SPANISH_MARKS.findall(sample))
    for word in _WORD.findall(sample):
        language = _LANGUAGE_OF.get(word)
        if language is not None:
            counts[language] += 1
        elif not word.isascii():  # most words are: a C check spares the regex
            counts["es"] += bool(_SPANISH_LETTERS.search(word))
    (best, most), (_, other) = sorted(counts.items(), key=lambda item: -item[1])
    if best in supported and most >= MIN_WORDS and most >= MIN_RATIO * other:
        return best
    return None


def header_language(headers: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first supported language of Content-Language/Accept-Language values ("es-ES, en;q=0.8"), each
    header's tags taken by their q-value."""
    for value in headers:
        tags = []
        for position, item in enumerate(value.split(",")):
            tag, _, params = item.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    continue
            tags.append((-quality, position, tag.strip().split("-")[0].lower()))
        for _, _, primary in sorted(tags):
            if primary in supported:
                return primary
    return None
