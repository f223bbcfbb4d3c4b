"""Mail decoded as its writer meant it (maild/charsets.py and maild/mime.py), through `parse_mail` as the pipeline
calls it: charsets, files, the header block."""

from __future__ import annotations

import base64

import pytest

from maild.charsets import codec, header_text
from maild.mime import parse_mail


def mail(head: str, body: bytes, charset: str | None, encoding: str = "8bit") -> bytes:
    content_type = f"text/plain; charset={charset}" if charset else "text/plain"
    return (
        f"From: ana@customer.example\r\nTo: support@example.com\r\n{head}Content-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("text", "wire", "label"),
    [
        ("“Quoted” 5€ – ok", "cp1252", "iso-8859-1"),  # Outlook's Windows-1252 under a Latin-1 label
        ("España, ñandú", "utf-8", "iso-8859-1"),  # UTF-8 under a Latin-1 label
        ("España, ñandú", "cp1252", None),  # 8-bit text with no label
        ("España, ñandú", "utf-8", "us-ascii"),
        ("Café crème", "cp1252", "utf-8"),  # Latin-1 bytes under a UTF-8 label
        ("朱镕基是总理", "gb18030", "gb2312"),  # GBK characters under gb2312
        ("Türkçe ığş", "cp1254", "iso-8859-9"),
        ("שלום עולם", "iso-8859-8", "iso-8859-8-i"),  # a label Python does not know
    ],
)
def test_body_text_is_read_in_the_charset_meant(text: str, wire: str, label: str | None) -> None:
    """The labels clients get wrong are read as their supersets (WHATWG), unlabelled 8-bit text as UTF-8 or
    else Windows-1252: no character is lost or turned into a control code."""
    assert parse_mail(mail("Subject: t\r\n", text.encode(wire) + b"\r\n", label), "<x@y>").text == text


def test_quoted_printable_latin1_label_with_windows_1252_bytes() -> None:
    body = b"=93Quoted=94 5=80 =96 ok\r\n"
    parsed = parse_mail(mail("Subject: t\r\n", body, "iso-8859-1", "quoted-printable"), "<x@y>")
    assert parsed.text == "“Quoted” 5€ – ok"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("información mañana".encode("cp1252"), "información mañana"),  # raw 8-bit Latin-1
        ("información mañana".encode(), "información mañana"),  # raw 8-bit UTF-8
        (b"=?gb2312?B?" + base64.b64encode("朱镕基是总理".encode("gb18030")) + b"?=", "朱镕基是总理"),
        (b"=?iso-8859-1?Q?=93Hola=94?=", "“Hola”"),
        (b"=?utf-8?q?Ol=C3=A1?= mundo", "Olá mundo"),
    ],
)
def test_subjects_are_read_in_the_charset_meant(raw: bytes, shown: str) -> None:
    """8-bit bytes in a subject and RFC 2047 words under a loose label keep every letter."""
    assert (
        parse_mail(mail("Subject: ", b"", "utf-8").replace(b"Subject: ", b"Subject: " + raw + b"\r\n"), "<x@y>").subject
        == shown
    )


def test_a_quoted_encoded_word_in_a_display_name_is_decoded() -> None:
    """'"=?Windows-1252?B?...?=" <addr>' breaks RFC 2047, but every reader shows the name: so does maild."""
    name = base64.b64encode("Formação Frenetikpolis".encode("cp1252")).decode()
    raw = mail("Subject: t\r\n", b"Hi\r\n", "utf-8").replace(
        b"From: ana@customer.example", f'From: "=?Windows-1252?B?{name}?=" <form@example.pt>'.encode()
    )
    parsed = parse_mail(raw, "<x@y>")
    assert (parsed.from_name, parsed.from_address) == ("Formação Frenetikpolis", "form@example.pt")


def test_an_8bit_display_name_is_decoded() -> None:
    raw = mail("Subject: t\r\n", b"Hi\r\n", "utf-8").replace(
        b"From: ana@customer.example", "From: José Ñúñez <jose@example.es>".encode("cp1252")
    )
    parsed = parse_mail(raw, "<x@y>")
    assert (parsed.from_name, parsed.from_address) == ("José Ñúñez", "jose@example.es")


def test_codec_and_header_text_leave_what_they_do_not_know() -> None:
    assert codec("ISO-8859-1") == "cp1252" and codec("utf-8") == "utf-8" and codec("x-unheard-of") == "x-unheard-of"
    assert header_text("=?utf-8?b?!!!?= as sent") == "=?utf-8?b?!!!?= as sent"  # no base64: left as written


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("=?utf-8?q?Caf=E9?= y m=?utf-8?q?=C3=A1s?=", "Café y más"),  # Latin-1 bytes under "utf-8": that word alone
        ("=?NONE?B?VEVTVA=?=", "TEST"),  # a charset nobody knows: read as unlabelled bytes
        ("TEST=?utf-8?b?44OG44K544OI?=", "TESTテスト"),  # no space is added
        ("=?utf-8?b?U2XD?= =?UTF-8?b?sW9yaXRh?=", "Señorita"),  # one character split across two words
        ("Re: [ACME#5] =?iso-8859-1?q?caf=E9?= x", "Re: [ACME#5] café x"),
    ],
)
def test_encoded_words_decode_run_by_run(raw: str, shown: str) -> None:
    """One bad word no longer leaves the whole subject encoded (a token in it would be lost)."""
    assert header_text(raw) == shown


# --- files: every part that is not body text, named as readers name it (maild/mime.py `_files`) -----------


def multipart(*parts: str, outer: str = "multipart/mixed") -> bytes:
    body = "".join(f"--B\r\n{part}\r\n" for part in parts)
    return (
        "From: ana@customer.example\r\nTo: support@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: {outer}; boundary="B"\r\n\r\n{body}--B--\r\n'
    ).encode()


TEXT = "Content-Type: text/plain; charset=utf-8\r\n\r\nSee the files."


@pytest.mark.parametrize(
    ("part", "name", "content_type"),
    [
        (
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC",
            "attachment.bin",
            "application/octet-stream",
        ),
        ("Content-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR", "attachment.ics", "text/calendar"),
        (
            "Content-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\n%PDF-1.4",
            "attachment.pdf",
            "application/pdf",
        ),
        ("Content-Type: image/png\r\nContent-ID: <img1@x>\r\n\r\nPNG", "attachment.png", "image/png"),
        (
            "Content-Type: image/jpg\r\nContent-Disposition:\r\nContent-Location: http://x.example/a/photo.jpg\r\n\r\nJPG",
            "photo.jpg",
            "image/jpg",
        ),
        (
            'Content-Type: application/pdf; name="=?utf-8?q?factura_espa=C3=B1a.pdf?="\r\n\r\n%PDF',
            "factura españa.pdf",
            "application/pdf",
        ),
    ],
)
def test_every_file_is_kept_and_named_as_readers_name_it(part: str, name: str, content_type: str) -> None:
    """A nameless part is a file too (mail-parser dropped it, or named it by its Content-ID or at random):
    named by its Content-Location, else "attachment" and its type's extension."""
    parsed = parse_mail(multipart(TEXT, part), "<x@y>")
    assert parsed.text == "See the files."
    [file] = parsed.attachments
    assert (file.filename, file.content_type) == (name, content_type) and file.data


def test_a_bounces_returned_headers_are_no_file_unless_named() -> None:
    """text/rfc822-headers is part of a delivery report, not a file someone sent; named, it is kept as one."""
    raw = multipart(TEXT, "Content-Type: text/rfc822-headers\r\n\r\nSubject: x", outer="multipart/report")
    assert parse_mail(raw, "<x@y>").attachments == ()
    named = 'Content-Type: text/rfc822-headers; name="Undelivered Message Headers.txt"\r\n\r\nSubject: x'
    raw = multipart(TEXT, named, outer="multipart/report")
    assert [f.filename for f in parse_mail(raw, "<x@y>").attachments] == ["Undelivered Message Headers.txt"]


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/alternative\r\n\r\nBlah blah blah\r\n",
        b'From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\nBlah blah blah\r\n',
    ],
)
def test_a_multipart_without_its_boundary_keeps_its_text(raw: bytes) -> None:
    """No boundary given, or none found: the email package leaves the body as one text, which is the mail."""
    assert parse_mail(raw, "<x@y>").text == "Blah blah blah"


def test_an_attached_mail_is_one_file_named_by_its_subject() -> None:
    """A forwarded-as-attachment mail is kept whole (headers and all, its own files inside), as the sender
    attached it, not taken apart; so is a delivery report's returned mail."""
    inner = "From: boss@example.org\r\nSubject: Budget 2027\r\n\r\nNumbers inside.\r\n"
    raw = multipart(TEXT, f"Content-Type: message/rfc822\r\n\r\n{inner}")
    [file] = parse_mail(raw, "<x@y>").attachments
    assert (file.filename, file.content_type) == ("Budget 2027.eml", "message/rfc822")
    assert b"Subject: Budget 2027" in file.data and b"Numbers inside." in file.data
    report = multipart(TEXT, f"Content-Type: message/rfc822\r\n\r\n{inner}", outer="multipart/report")
    assert [f.filename for f in parse_mail(report, "<x@y>").attachments] == ["Budget 2027.eml"]


def test_other_renderings_of_the_body_are_no_files() -> None:
    """text/enriched or an AMP version beside the plain text of a multipart/alternative is the body again."""
    raw = multipart(
        TEXT,
        "Content-Type: text/enriched\r\n\r\n<bold>See</bold>",
        "Content-Type: text/x-amp-html\r\n\r\n<p>",
        outer="multipart/alternative",
    )
    assert parse_mail(raw, "<x@y>").attachments == ()


@pytest.mark.parametrize("location", ["http://x.example/a/b/../", "http://x.example/..", "http://x.example/p?id=1/"])
def test_a_content_location_that_names_no_file_is_not_a_name(location: str) -> None:
    raw = multipart(TEXT, f"Content-Type: image/png\r\nContent-Location: {location}\r\n\r\nPNG")
    assert [f.filename for f in parse_mail(raw, "<x@y>").attachments] == ["attachment.png"]


def test_the_plainer_decoder_reads_the_same_body_and_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where mail-parser trips, the stdlib decoding still gives the body (an attached mail's text included,
    as mail-parser reads it), the files and the charsets as meant."""
    import mailparser

    def trips(message: object) -> None:
        raise ValueError("mail-parser tripped")

    inner = "From: boss@example.org\r\nSubject: Budget 2027\r\n\r\nNumbers inside.\r\n"
    latin = (
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=935=80=94"
    )
    raw = multipart(latin, f"Content-Type: message/rfc822\r\n\r\n{inner}", "Content-Type: application/pdf\r\n\r\n%PDF")
    monkeypatch.setattr(mailparser, "MailParser", trips)
    parsed = parse_mail(raw, "<x@y>")
    assert "“5€”" in parsed.full_text and "Numbers inside." in parsed.full_text
    assert [f.filename for f in parsed.attachments] == ["Budget 2027.eml", "attachment.pdf"]


def test_one_junk_line_in_the_header_block_does_not_hide_the_rest() -> None:
    """A broken gateway's stray line among the fields: the fields after it are still read, not taken as body."""
    raw = (
        b"Return-Path: <a@customer.example>\r\nquite Delivered-To: support@example.com\r\n"
        b"From: Ana <a@customer.example>\r\nSubject: Printer\r\nMessage-ID: <junk@customer.example>\r\n\r\nHello.\r\n"
    )
    parsed = parse_mail(raw, "<fallback@x>")
    assert (parsed.from_address, parsed.subject, parsed.message_id) == (
        "a@customer.example",
        "Printer",
        "<junk@customer.example>",
    )
    assert parsed.text == "Hello."


def test_the_obsolete_blank_before_a_fields_colon_is_read() -> None:
    """'From  : ...' (RFC 5322 section 4.5's obsolete syntax, RFC 2822's example A.6.3) is a field."""
    raw = b"From  : John Doe <jdoe@machine.example>\r\nSubject : Saying Hello\r\n\r\nThis is a message.\r\n"
    parsed = parse_mail(raw, "<x@y>")
    assert (parsed.from_address, parsed.subject, parsed.text) == (
        "jdoe@machine.example",
        "Saying Hello",
        "This is a message.",
    )


@pytest.mark.parametrize(
    "raw",
    [
        # No blank line after the fields: the body's first paragraph is no header, even quoting one.
        b"From: a@customer.example\r\nSubject: s\r\nHi team,\r\nas the mail said:\r\n"
        b"From: boss@x.example\r\n\r\nmore\r\n",
        # Two junk lines: too much to guess at.
        b"junk one\r\njunk two\r\nFrom: a@customer.example\r\n\r\nbody\r\n",
    ],
)
def test_a_header_block_that_is_not_one_junk_line_away_is_left_as_it_is(raw: bytes) -> None:
    from maild.mime import mend_header_block

    assert mend_header_block(raw) == raw


def test_an_html_part_without_a_mime_charset_reads_as_its_meta_says() -> None:
    """HTML-only mail whose Content-Type names no charset, with <meta charset=windows-1251> in the page."""
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"></head>'
    body = (html + "<body><p>Принтер не печатает</p></body></html>").encode("cp1251")
    raw = (
        b"From: a@customer.example\r\nSubject: s\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    assert parse_mail(raw + body, "<x@y>").text == "Принтер не печатает"


def test_utf7_text_is_decoded() -> None:
    """UTF-7 is 7-bit, so mail-parser hands it back as it came ("Caf+AOk-"): it is decoded before."""
    raw = b"From: a@customer.example\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n"
    raw += b"Caf+AOk- con le+AOE-che\r\n"
    assert parse_mail(raw, "<x@y>").text == "Café con leáche"
