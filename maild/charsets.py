"""Reading text in the charset a mail means, not the one it names.

Mail clients label text loosely, and the labels that lie are always the same ones: Outlook writes Windows-1252
(curly quotes, €, dashes) under "iso-8859-1", Chinese clients write GBK under "gb2312", and text with no
label or "us-ascii" carries UTF-8 or Windows-1252 bytes. Read strictly, such text loses those characters or
turns them into control codes. Browsers settled this long ago: the WHATWG Encoding Standard reads each
label as its superset. maild does the same for text parts (before mail-parser decodes them) and for headers:
8-bit bytes are UTF-8 when they decode as such, else Windows-1252; RFC 2047 words name their charset as
above, and are decoded even where a client quoted them (``"=?utf-8?q?Jos=C3=A9?=" <jose@example.es>``),
as every mail reader does.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email import quoprimime
from email.message import Message

# label (lower case) → the codec that reads what is sent under it (WHATWG Encoding Standard, section 4.2).
SUPERSETS: dict[str, str] = {
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819"), "cp1252"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "cp936", "euc-cn", "csgb2312", "chinese"), "gb18030"),
    **dict.fromkeys(("iso-8859-9", "iso8859-9", "latin5", "l5"), "cp1254"),
    **dict.fromkeys(("iso-8859-11", "tis-620", "windows-874"), "cp874"),
    **dict.fromkeys(("ks_c_5601-1987", "euc-kr", "ks_c_5601", "korean"), "cp949"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j"), "cp932"),
    **dict.fromkeys(("iso-8859-8-i", "iso-8859-8-e", "logical"), "iso-8859-8"),
    **dict.fromkeys(("iso-8859-6-i", "iso-8859-6-e"), "iso-8859-6"),
    "big5": "big5hkscs",
}
# Labels that promise nothing beyond ASCII (or say nothing): their 8-bit bytes are UTF-8 or Windows-1252.
_UNSPOKEN = frozenset({"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"})
# <meta charset="x"> or <meta http-equiv="Content-Type" content="text/html; charset=x">, near an HTML part's start.
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_QUOTED_WORDS = re.compile(r'"(=\?[^"]*\?=)"')


def codec(label: str) -> str:
    """The codec that reads text sent under ``label``."""
    return SUPERSETS.get(label.strip().lower(), label.strip())


def bytes_text(data: bytes) -> str:
    """Unlabelled 8-bit bytes: UTF-8 when they decode as such, else Windows-1252 (never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def collapse_rfc2231_charsets(message: Message) -> None:
    """Write each ``charset*=`` label (RFC 2231's form, with a language) plainly: compat32's get_payload()
    passes its (charset, language, value) tuple to decode() and raises, in mail-parser and in our own walks."""
    for part in message.walk():
        if isinstance(part.get_param("charset"), tuple):
            part.set_param("charset", part.get_content_charset() or "us-ascii")


def mend_text_charsets(message: Message) -> None:
    """Relabel the body text parts of ``message`` (compat32, in place) with the charset that reads them.

    A part labelled Latin-1 or with no charset whose bytes are valid UTF-8 is UTF-8 (clients mislabel
    UTF-8 far more often than Latin-1 text happens to form UTF-8 sequences), and one labelled UTF-8 whose
    bytes are not is Windows-1252; an HTML part with no charset label in its MIME header reads as its own
    ``<meta charset>`` says.
    """
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_filename() or part.get_content_disposition() == "attachment":
            continue  # a file goes on as it came, its label with it
        declared = part.get_content_charset() or ""
        if declared in ("utf-7", "unicode-1-1-utf-7"):
            _as_utf8(part, "utf-7")  # 7-bit text mail-parser would hand back undecoded (+AOk- for é)
            continue
        wanted = codec(declared) if declared not in _UNSPOKEN else ""
        if declared in _UNSPOKEN or wanted in ("cp1252", "utf-8"):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes) or payload.isascii():
                continue
            label = _meta_charset(payload) if declared == "" and part.get_content_subtype() == "html" else ""
            # An HTML part's own <meta charset>, as browsers read it; else UTF-8 when it is (a Latin-1 label
            # lies far more often than text forms UTF-8 by chance), else Windows-1252.
            wanted = codec(label) if label else "utf-8" if is_utf8(payload) else "cp1252"
        if wanted and wanted != declared:
            part.set_param("charset", wanted)


def header_text(value: str) -> str:
    """A raw header value (compat32: 8-bit bytes as surrogate escapes) as people read it.

    Encoded words are decoded run by run (adjacent words of one charset together: clients split a character
    across two), so a run that lies about its charset (Latin-1 bytes under "utf-8") is read as unlabelled
    bytes are and the rest of the header still decodes. Whitespace between two encoded words goes (RFC 2047
    section 6.2); the rest stays as written.
    """
    text = bytes_text(value.encode("utf-8", "surrogateescape"))
    if "=?" not in text:
        return text
    text = _QUOTED_WORDS.sub(r"\1", text)  # quotes around encoded words (against RFC 2047, common in names)
    out: list[str] = []
    run: list[bytes] = []
    run_charset = ""
    last = 0
    for word in _ENCODED_WORD.finditer(text):
        between = text[last : word.start()]
        charset, data = _word_bytes(word)
        if data is None:  # not decodable: left as written
            out.append(_decoded(run, run_charset) + between + word.group(0))
            run, run_charset = [], ""
        elif run and (not between or between.isspace()):
            if charset.lower() == run_charset.lower():
                run.append(data)
            else:
                out.append(_decoded(run, run_charset))
                run, run_charset = [data], charset
        else:
            out.append(_decoded(run, run_charset) + between)
            run, run_charset = [data], charset
        last = word.end()
    out.append(_decoded(run, run_charset) + text[last:])
    return "".join(out)


def _word_bytes(word: re.Match[str]) -> tuple[str, bytes | None]:
    """An encoded word's charset (without an RFC 2231 language) and bytes; None for bytes it cannot hold."""
    charset, encoding, encoded = word.group(1).partition("*")[0], word.group(2).lower(), word.group(3)
    try:
        if encoding == "b":
            bare = encoded.rstrip("=")
            return charset, base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
        return charset, quoprimime.header_decode(encoded).encode("latin-1")
    except (binascii.Error, ValueError, UnicodeError):
        return charset, None


def _decoded(run: list[bytes], charset: str) -> str:
    if not run:
        return ""
    data = b"".join(run)
    try:
        return data.decode(codec(charset))
    except (LookupError, UnicodeDecodeError):
        return bytes_text(data)


def raw_header(message: Message, name: str) -> str | None:
    """The first ``name`` field of ``message`` as it came (compat32 keeps 8-bit bytes as surrogates)."""
    wanted = name.lower()
    return next((str(value) for key, value in message.raw_items() if key.lower() == wanted), None)


def _as_utf8(part: Message, charset: str) -> None:
    """Rewrite a text part's payload from ``charset`` to UTF-8 (base64), for a decoder that would not apply it."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        del part["Content-Transfer-Encoding"]
        part.set_payload(payload.decode(charset, "replace"), "utf-8")


def _meta_charset(html: bytes) -> str:
    """The charset an HTML page's ``<meta>`` names near its start, when Python can read it; else ""."""
    found = _META_CHARSET.search(html, 0, 4096)
    if found is None:
        return ""
    label = found.group(1).decode("ascii")
    try:
        codecs.lookup(codec(label))
    except LookupError:
        return ""
    return label


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
