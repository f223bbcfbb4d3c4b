"""Extract the *new* text of an email: what the sender just wrote, without the quoted history.

Tickets are built from replies, so the quoted thread, the "On … wrote:" / "El … escribió:" lines and the
Outlook "From:/De: … Sent:/Enviado: …" blocks must go, while what the agent or customer typed (including
their signature and command lines such as ``#time 30m``) must stay intact.

The plain-text work is line based: header lines are found with mail-parser-reply's multi-language header
grammar plus a few patterns it lacks (Spanish Gmail, Russian, forwards, generic "date <address>:" lines),
then one linear walk keeps the unquoted lines, drops ``>`` quoted lines and their attribution (so inline
replies survive) and stops at the first header that introduces unquoted history. Regular expressions only
ever see short, stripped copies of the lines, which keeps pathological bodies linear.
"""

from __future__ import annotations

import logging
import quopri
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape as _escape_html
from html import unescape as _unescape_html
from html.parser import HTMLParser
from typing import Final

import html2text
from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped, unused-ignore]

__all__ = ["html_to_text", "new_text", "strip_html_quotes"]

logger = logging.getLogger(__name__)

#: Languages handed to mail-parser-reply; 'david' is a groupware header style, not a language.
LANGUAGES: Final = ("en", "es", "de", "fr", "it", "nl", "da", "sv", "pl", "cs", "ja", "ko", "zh", "david")

# Limits that keep odd input cheap: header lines are short, so regexes only see a truncated copy of each
# line, and header detection stops after a generous number of lines (the rest is still quote-filtered).
_VIEW_LINE_CHARS: Final = 300
_HEADER_SCAN_LINES: Final = 5000
_LIBRARY_VIEW_CHARS: Final = 60_000
_HTML_MAX_CHARS: Final = 500_000
_HTML_LOOKAHEAD_TOKENS: Final = 200
_DEVICE_LINE_MAX_CHARS: Final = 150

_INVISIBLE: Final = "\ufeff\u200b\u200c\u200d\u200e\u200f\u2060"

# --- plain-text header patterns ---------------------------------------------------------------------------

_LIBRARY_HEADER_RE: Final[re.Pattern[str]] = EmailReplyParser(languages=list(LANGUAGES)).read("").HEADER_REGEX

#: Last line of an attribution ("On … wrote:"), in the languages mail clients localise it to.
_ATTRIBUTION_END: Final = re.compile(
    r"(?:\bwrote|\bwrites|\bescribi[oó]|\bescreveu|\ba [ée]crit|\bschrieb|\bgeschrieben|\bha scritto"
    r"|\bschreef|\bskrev|\bnapisa[lł](?:\s?\(a\)|a)?|\bnapsal(?:\s?\(a\))?|\bkirjoitti|\bírta"
    r"|написал(?:\s?\(а\)|а)?|пишет|写道|寫道|님이 작성)\s*[:：]$",
    re.IGNORECASE,
)
#: First line of a multi-line attribution: a localised "On", a date or a weekday.
_ATTRIBUTION_START: Final = re.compile(
    r"^(?:-{2,}\s*)?(?:(?:on|el|le|am|il|op|em|den|dnia|dne|w dniu|la|pada|vào)\s|\d)", re.IGNORECASE
)
_EMAIL_DOMAIN: Final = re.compile(r"@[\w-]+\.\w")
_DATE_OR_TIME: Final = re.compile(r"\d{1,2}:\d{2}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\b\d{4}\b")
#: Separator lines that start quoted history (Outlook, Thunderbird, Zimbra, mailing-list footers).
_SEPARATOR: Final = re.compile(
    r"^(?:[-=*_]{2,}\s*(?:original message|message original|mensaje original|message d'origine"
    r"|messaggio originale|urspr[üu]ngliche nachricht|original-nachricht|oorspronkelijk bericht"
    r"|oprindelig meddelelse|ursprungligt meddelande|oryginalna wiadomo[śs][ćc]|mensagem original"
    r"|исходное сообщение)\s*[-=*_]{2,}|_{30,})$",
    re.IGNORECASE,
)
#: Separator lines that start a forwarded message: its content is what a comment-less forward carries.
_FORWARD_SEPARATOR: Final = re.compile(
    r"^(?:[-=*_]{2,}\s*(?:forwarded message|mensaje reenviado|message transf[ée]r[ée]|messaggio inoltrato"
    r"|weitergeleitete nachricht|doorgestuurd bericht|videresendt meddelelse|vidarebefordrat meddelande"
    r"|wiadomo[śs][ćc] przekazana dalej|mensagem encaminhada|пересылаемое сообщение"
    r"|переадресованное сообщение)\s*[-=*_]{2,}"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht|inicio del mensaje reenviado"
    r"|d[ée]but du message r[ée]exp[ée]di[ée]|início da mensagem reencaminhada)\s*:)$",
    re.IGNORECASE,
)
#: Outlook-style header fields, including spellings mail-parser-reply lacks ("Enviado el:", "De :",
#: Russian, Portuguese, Japanese, Chinese). A sender or date field plus another field make a header block.
_FIELD_LINE: Final = re.compile(
    r"^[*\s]*(?:from|sent(?: on)?|to|subject|date|cc|bcc|reply-to|de|envoy[ée](?: le)?|[àa]|objet"
    r"|enviad[oa](?: el)?|para|asunto|assunto|fecha|data|von|gesendet|an|betreff|datum|da|inviato|oggetto"
    r"|van|verzonden|aan|onderwerp|fra|sendt|til|emne|dato|fr[åa]n|skickat|till|ämne|od|wysłano|do|temat"
    r"|от|отправлено|кому|тема|дата|копия|差出人|送信日時|宛先|件名|发件人|发送时间|收件人|主题)[*\s]*[:：]",
    re.IGNORECASE,
)
_FIELD_FIRST: Final = re.compile(
    r"^[*\s]*(?:from|de|von|van|fra|fr[åa]n|od|da|от|差出人|发件人|date|fecha|datum|sent(?: on)?"
    r"|envoy[ée](?: le)?|enviad[oa](?: el)?|gesendet|отправлено)[*\s]*[:：]",
    re.IGNORECASE,
)
#: The sender field every Outlook/forward header block has; a block without one ("Date: Monday" /
#: "To: all staff" in a typed message) is not a header.
_FROM_FIELD: Final = re.compile(
    r"^[*\s]*(?:from|de|von|van|fra|fr[åa]n|od|da|от|发件人|差出人|보낸\s?사람)[*\s]*[:：]", re.IGNORECASE
)
#: A "Label:" line (no commas or digits in the label, unlike "On Mon, 4 Mar 2024 at 10:15 …").
_FIELD_LABEL: Final = re.compile(r"^[*\s]*[^\W\d][\w' -]{0,24}[*\s]*[:：]")
_DEVICE_LINE: Final = re.compile(
    r"^(?:-{1,2}\s*)?(?:sent from my|sent from (?:mail|outlook|yahoo mail|aol|gmail|samsung)|sent via"
    r"|get outlook for|enviado desde (?:mi|el|outlook|yahoo|correo)|obtener outlook para|enviado do meu"
    r"|enviado a partir do meu|von meinem|gesendet von (?:meinem|mobil|iphone|ipad|outlook)|gesendet mit"
    r"|envoy[ée] (?:de|depuis) mon|envoy[ée] depuis|inviato da|inviato dal mio|verzonden (?:vanaf|met) mijn"
    r"|verstuurd vanaf mijn|sendt fra min|hent outlook til|skickat från min|wysłane z|wysłano z|отправлено с)"
    r"(?:\s+[^\s,;!?]+){0,6}\s*$",
    re.IGNORECASE,
)
#: "CAUTION: This email originated from outside …" banners that gateways prepend to the body.
_EXTERNAL_BANNER: Final = re.compile(
    r"^\[?(?:caution|warning|external(?: email| sender)?|attention|precauci[oó]n|atenci[oó]n|aviso)\]?\s*:"
    r".{0,400}\b(?:outside|external|externo|externa|fuera)\b",
    re.IGNORECASE,
)
_RULE_LINE: Final = re.compile(r"^[-_=*~\s]{3,}$")
_QP_SOFT_BREAK: Final = re.compile(r"[^=\s]=\n")
_QP_ESCAPE: Final = re.compile(r"=(?:[89A-F][0-9A-F]|3D|20|09)")


_REPLY: Final = "reply"  # quoted history follows (or, followed by '>' lines, the attribution of a quote)
_WEAK: Final = "weak"  # "date <address>:" or "Juan wrote:" lines: only a header when a quote follows
_FORWARD: Final = "forward"  # a forwarded message follows


@dataclass(frozen=True, slots=True)
class _Header:
    """A reply header spanning view lines ``start``..``end`` (inclusive)."""

    start: int
    end: int
    kind: str = _REPLY


def _view(line: str) -> str:
    """A short, stripped copy of a line that the header regexes can scan in bounded time."""
    return line[: _VIEW_LINE_CHARS * 4].strip().strip(_INVISIBLE).strip()[:_VIEW_LINE_CHARS]


#: The first line of every mail to agents (`maild.render.REPLY_MARKERS`): where an agent's reply to one ends,
#: however their client quoted it. Outlook in a language whose header block we do not know quotes with no ">"
#: and no header we recognise: the notice, and the customer's text and the internal notes in it, would
#: otherwise count as the agent's new text, relayed to the customer and read for commands.
REPLY_MARKER: Final = re.compile(r"##-[^#]{1,80}-##")

#: Lines the library's field-block patterns can start with: a short label and a colon.
_FIELD_LIKE: Final = re.compile(r"^[*\s]*[^\W\d][^:：]{0,24}[:：]")


def _library_view(view: list[str]) -> list[str]:
    """The lines mail-parser-reply's grammar could use, others blanked.

    Its "On … wrote:" patterns backtrack quadratically on long lines, so it only sees
    unquoted lines that can belong to a header: lines ending in a colon and the two lines above them
    (wrapped "On … wrote:"), field lines ("From: …") and the line after them, separator lines, and
    david's "Original Message processed by david" block. Quoted lines never matter: they are dropped anyway.
    """
    keep = [False] * len(view)
    budget = _LIBRARY_VIEW_CHARS
    for index, line in enumerate(view):
        if budget <= 0:
            break
        if not line or line.startswith(">"):
            continue
        if line.endswith((":", "：")):
            marked = range(max(index - 2, 0), index + 1)
        elif line.endswith("-"):
            marked = range(index, index + 1)
        elif _FIELD_LIKE.match(line):
            marked = range(index, index + 2)
        elif "processed by david" in line.lower():
            marked = range(index, index + 7)
        else:
            continue
        for position in marked:
            if position < len(view) and not keep[position] and not view[position].startswith(">"):
                keep[position] = True
                budget -= len(view[position]) + 1
    return [line if flag else "" for line, flag in zip(view, keep, strict=True)]


def _library_matches(text: str, lines: list[str], starts: list[int]) -> Iterator[re.Match[str]]:
    """Exactly what ``_LIBRARY_HEADER_RE.finditer(text)`` yields, trying only where a match can begin.

    Every branch of the grammar begins with ``^`` or a newline and then needs text on that line, so a
    match starts at a non-empty line or at the newline just before it. finditer tries every character
    against all 28 branches (about 4 µs each), which made it the costliest step of processing a mail.
    """
    resume = 0
    for start, line in zip(starts, lines, strict=False):
        if not line:
            continue
        for candidate in (start - 1, start):
            if candidate < resume or candidate < 0:
                continue
            match = _LIBRARY_HEADER_RE.match(text, candidate)
            if match:
                yield match
                resume = max(match.end(), candidate + 1)
                break


def _library_headers(view: list[str]) -> Iterator[_Header]:
    """Header spans found by mail-parser-reply's header grammar (all its languages)."""
    library_view = _library_view(view)
    text = "\n".join(library_view)
    starts = [0]
    for line in library_view:
        starts.append(starts[-1] + len(line) + 1)
    for match in _library_matches(text, library_view, starts):
        begin, finish = match.start(), match.end()
        while begin < finish and text[begin].isspace():
            begin += 1
        while finish > begin and text[finish - 1].isspace():
            finish -= 1
        if begin >= finish:
            continue
        first = bisect_right(starts, begin) - 1
        last = bisect_right(starts, finish - 1) - 1
        # The grammar may swallow one extra line after a field block; never let it eat quoted lines.
        while last > first and (not view[last] or view[last].startswith(">")):
            last -= 1
        span = view[first : last + 1]
        if _FIELD_LABEL.match(span[0]) and not any(_FROM_FIELD.match(line) for line in span):
            continue  # a field block without a sender field is typed text, not a header
        yield _Header(first, last)


def _own_headers(view: list[str]) -> Iterator[_Header]:
    """Header spans the library misses: separators, localised attributions, Russian/Portuguese blocks."""
    index = -1
    while index + 1 < len(view):
        index += 1
        line = view[index]
        if not line or line.startswith(">"):
            continue
        if _SEPARATOR.match(line):
            yield _Header(index, index)
            continue
        if _FORWARD_SEPARATOR.match(line):
            yield _Header(index, index, _FORWARD)
            continue
        if _FIELD_FIRST.match(line):
            last = index
            while last + 1 < len(view) and _FIELD_LINE.match(view[last + 1]):
                last += 1
            if last > index and any(_FROM_FIELD.match(field) for field in view[index : last + 1]):
                yield _Header(index, last)
                index = last
                continue
        if not line.endswith((":", "：")):
            continue
        start = _attribution_start(view, index)
        if start is None:
            continue
        joined = " ".join(view[start : index + 1])
        if _ATTRIBUTION_END.search(joined):
            dated = any(ch.isdigit() for ch in joined) or _EMAIL_DOMAIN.search(joined)
            yield _Header(start, index, _REPLY if dated else _WEAK)  # "Juan wrote:" only above a quote
        elif _EMAIL_DOMAIN.search(joined) and _DATE_OR_TIME.search(joined):
            yield _Header(start, index, _WEAK)


def _attribution_start(view: list[str], end: int) -> int | None:
    """First line of an attribution ending on line ``end`` (wrapped over at most three lines).

    The nearest line above that starts like a header wins, a localised "On" before a date, so that
    "Am heutigen Tage" above "Am So., 1. Jan. 2023 … schrieb …:" stays text.
    """
    worded: int | None = None
    dated: int | None = None
    for back in (1, 2):
        candidate = end - back
        if candidate < 0 or not view[candidate] or view[candidate].startswith(">"):
            break
        match = _ATTRIBUTION_START.match(view[candidate])
        if match is None:
            continue
        if match.group(0)[-1].isdigit():
            dated = candidate if dated is None else dated
        elif worded is None:
            worded = candidate
    start = worded if worded is not None else dated if dated is not None else end
    if start == end and len(view[end]) >= _VIEW_LINE_CHARS:
        return None  # a truncated line only looks like it ends with a colon
    return start


def _find_headers(view: list[str]) -> dict[int, _Header]:
    """All header spans by first line. Overlapping spans merge; a forward separator absorbs the field
    block right under it, and a reply header beats a weak one."""
    window = view[:_HEADER_SCAN_LINES]
    spans = sorted([*_library_headers(window), *_own_headers(window)], key=lambda header: (header.start, -header.end))
    merged: list[_Header] = []
    for span in spans:
        if merged:
            previous = merged[-1]
            gap = previous.end + 1
            while previous.kind == _FORWARD and gap < span.start and not view[gap]:
                gap += 1
            if span.start <= previous.end or (previous.kind == _FORWARD and span.start == gap):
                kinds = {previous.kind, span.kind}
                kind = _FORWARD if _FORWARD in kinds else _REPLY if _REPLY in kinds else _WEAK
                merged[-1] = _Header(previous.start, max(previous.end, span.end), kind)
                continue
        merged.append(span)
    return {span.start: span for span in merged}


# --- plain-text extraction --------------------------------------------------------------------------------


def _is_noise(view_line: str) -> bool:
    """Lines that are not the sender's words: rules, device lines, gateway banners."""
    return bool(_RULE_LINE.match(view_line) or _is_device_line(view_line) or _EXTERNAL_BANNER.match(view_line))


def _is_device_line(view_line: str) -> bool:
    """'Sent from my iPhone'-style lines, which carry no content."""
    return len(view_line) <= _DEVICE_LINE_MAX_CHARS and bool(_DEVICE_LINE.match(view_line))


def _walk(lines: list[str], view: list[str]) -> list[str | None]:
    """Keep new lines, drop quotes and headers; ``None`` marks where something was removed."""
    headers = _find_headers(view)
    out: list[str | None] = []
    has_text = False
    index = 0
    total = len(lines)
    while index < total:
        line = view[index]
        if line.startswith(">"):
            out.append(None)
            index += 1
            continue
        if REPLY_MARKER.fullmatch(line):  # our notice starts here, its quote header (if any) just above
            _drop_trailing_fields(out)
            out.append(None)
            return out
        header = headers.get(index)
        if header is not None:
            after = header.end + 1
            while after < total and not view[after]:
                after += 1
            quote_follows = after >= total or view[after].startswith(">")
            if quote_follows:  # attribution of a quote (inline or bottom reply): drop just the header
                out.append(None)
                index = header.end + 1
                continue
            if header.kind == _FORWARD and not has_text:  # a forward without comment: keep its content
                out.append(None)
                index = header.end + 1
                continue
            if header.kind != _WEAK:  # unquoted history starts here (nothing typed above it: empty reply)
                _drop_trailing_rules(out)
                out.append(None)
                return out
        out.append(lines[index])
        if line and not _is_noise(line):
            has_text = True
        index += 1
    return out


def _drop_trailing_fields(out: list[str | None]) -> None:
    """Remove the quote header left just above our reply marker: two or more field lines ("Kimden: …",
    "Gönderildi: …") in a language the header patterns do not know, and the rules and blank lines around."""
    _drop_trailing_rules(out)
    start = len(out)
    while start > 0 and (line := out[start - 1]) is not None and _FIELD_LIKE.match(line.strip()):
        start -= 1
    if len(out) - start >= 2:
        del out[start:]
        _drop_trailing_rules(out)


def _drop_trailing_rules(out: list[str | None]) -> None:
    """Remove separator rules and blank lines left just above a cut (e.g. Outlook's dashed line)."""
    while out:
        last = out[-1]
        if last is None or not last.strip() or _RULE_LINE.match(last.strip()):
            out.pop()
            continue
        break


def _finish(out: list[str | None]) -> str:
    """Drop device lines and banners, collapse gaps left by removals, trim trailing whitespace."""
    kept: list[str | None] = []
    for line in out:
        if line is not None:
            stripped = line.strip().strip(_INVISIBLE)
            if stripped and _is_device_line(stripped):
                kept.append(None)
                continue
            # RFC 3676's signature delimiter keeps its significant trailing space; other lines lose theirs.
            line = line[:3] if line.startswith("-- ") and not line[3:].strip() else line.rstrip()
        kept.append(line)
    # A gateway banner is only noise as the first line of the message.
    first = next((i for i, line in enumerate(kept) if line), None)
    if first is not None:
        text = kept[first]
        if text is not None and _EXTERNAL_BANNER.match(text.strip()):
            kept[first] = None
    # Blank lines around a removed block collapse to one, so no hole is left where a quote was.
    lines: list[str] = []
    pending_gap = False
    blank_run = 0
    for line in kept:
        if line is None:
            pending_gap = True
            continue
        if not line.strip(_INVISIBLE + " \t\xa0"):
            blank_run += 1
            continue
        if lines:
            lines.extend([""] * (min(blank_run, 1) if pending_gap else blank_run))
        lines.append(line)
        pending_gap = False
        blank_run = 0
    # A signature delimiter left alone at the end (its "Sent from my iPhone" was dropped) is noise too.
    while lines and lines[-1].strip() in ("--", "__"):
        lines.pop()
        while lines and not lines[-1].strip():
            lines.pop()
    return "\n".join(lines).rstrip()


def _undo_quoted_printable(text: str) -> str:
    """Decode a body that reached us still quoted-printable encoded (soft line breaks split headers)."""
    soft_breaks = len(_QP_SOFT_BREAK.findall(text))
    if soft_breaks < 2 or len(_QP_ESCAPE.findall(text)) < 2:
        return text
    try:
        return quopri.decodestring(text.encode("utf-8")).decode("utf-8")
    except (UnicodeError, ValueError):
        return text


def _plain_new_text(text: str) -> str:
    """New text of a plain-text body."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _undo_quoted_printable(text)
    lines = text.split("\n")
    view = [_view(line) for line in lines]
    return _finish(_walk(lines, view))


# --- HTML -------------------------------------------------------------------------------------------------

_VOID_TAGS: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_BLOCK_TAGS: Final = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "form", "h1", "h2"}
    | {"h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tbody", "td"}
    | {"tfoot", "th", "thead", "tr", "ul"}
)
#: Containers of quoted history (besides <blockquote>, which is always a quote in a reply).
_QUOTE_CLASSES: Final = frozenset({"yahoo_quoted", "protonmail_quote", "zmail_extra"})
#: Attribution lines ("On … wrote:") that clients mark up; removed when a quote follows them (a
#: forward's header has no quote under it and is left for the text rules).
_ATTRIBUTION_CLASSES: Final = frozenset({"gmail_attr", "moz-cite-prefix"})
#: Elements after which everything is quoted history (Outlook, Hotmail, Zimbra, Apple "Begin forwarded").
_CUT_IDS: Final = frozenset({"divrplyfwdmsg", "olk_src_body_section", "appendonsend", "stopspelling", "zwchr"})
_CUT_CLASSES: Final = frozenset({"outlookmessageheader", "divrplyfwdmsg"})
#: Start of the header block that follows an Outlook rule or border-top separator.
_HTML_HEADER_START: Final = re.compile(
    r"^\W*(?:from|de|von|van|fra|fr[åa]n|od|da|от|date|datum|fecha|data|sent|enviado|gesendet|envoy[ée]"
    r"|subject|asunto|betreff|to|para|an)\s*[:：]",
    re.IGNORECASE,
)
#: What a removed blockquote leaves behind in ``new_text``: one quoted line, so the attribution above
#: it is recognised and text typed below it (an inline reply) is kept.
_QUOTE_PLACEHOLDER: Final = "<blockquote>\u2026</blockquote>"


class _Token:
    """One lexical piece of an HTML document, kept raw so the document can be written back."""

    __slots__ = ("attrs", "kind", "raw", "tag")

    def __init__(self, kind: str, raw: str, tag: str = "", attrs: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.raw = raw
        self.tag = tag
        self.attrs = attrs or {}


class _Tokenizer(HTMLParser):
    """Splits HTML into tokens with the stdlib parser (tolerant of broken markup)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[_Token] = []
        self._raw_text = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or f"<{tag}>"
        values = {name.lower(): (value or "") for name, value in attrs}
        self.tokens.append(_Token("start", raw, tag, values))
        if tag in ("script", "style"):
            self._raw_text += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or f"<{tag}/>"
        values = {name.lower(): (value or "") for name, value in attrs}
        self.tokens.append(_Token("startend", raw, tag, values))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(_Token("end", f"</{tag}>", tag))
        if tag in ("script", "style") and self._raw_text:
            self._raw_text -= 1

    def handle_data(self, data: str) -> None:
        raw = data if self._raw_text else _escape_html(data, quote=False)
        self.tokens.append(_Token("data", raw, attrs={"text": data}))

    def handle_comment(self, data: str) -> None:
        self.tokens.append(_Token("other", f"<!--{data}-->"))

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(_Token("other", f"<!{decl}>"))

    def handle_pi(self, data: str) -> None:
        self.tokens.append(_Token("other", f"<?{data}>"))

    def unknown_decl(self, data: str) -> None:
        return None


def _tokenize(markup: str) -> list[_Token]:
    """Tokens of an HTML document."""
    parser = _Tokenizer()
    parser.feed(markup)
    parser.close()
    return parser.tokens


def _classes(token: _Token) -> set[str]:
    """Lower-cased class names of a start tag."""
    return set(token.attrs.get("class", "").lower().split())


def _text_after(tokens: list[_Token], index: int, limit: int = 300) -> str:
    """Visible text that follows token ``index`` (for deciding whether a rule starts a header block)."""
    parts: list[str] = []
    size = 0
    for token in tokens[index + 1 : index + 1 + _HTML_LOOKAHEAD_TOKENS]:
        if token.kind == "data":
            text = token.attrs["text"]
            parts.append(text)
            size += len(text)
            if size >= limit:
                break
        elif token.kind in ("start", "startend") and token.tag in _BLOCK_TAGS:
            parts.append(" ")
    return " ".join("".join(parts).split())


def _starts_history(tokens: list[_Token], index: int) -> bool:
    """Whether token ``index`` begins the quoted history (so everything from it on can go)."""
    token = tokens[index]
    if token.kind not in ("start", "startend"):
        return False
    if token.attrs.get("id", "").lower() in _CUT_IDS or _classes(token) & _CUT_CLASSES:
        return True
    style = token.attrs.get("style", "").replace(" ", "").lower()
    separator = token.tag == "hr" or (token.tag == "div" and "border-top" in style and "solid" in style)
    return separator and bool(_HTML_HEADER_START.match(_text_after(tokens, index)))


def _strip_tokens(tokens: list[_Token], placeholder: str) -> str:
    """Serialise ``tokens`` without quote blocks; each removed quote becomes ``placeholder``."""
    out: list[str] = []
    ends = _element_ends(tokens)
    index = 0
    total = len(tokens)
    while index < total:
        token = tokens[index]
        if _starts_history(tokens, index):
            break
        if token.kind == "start" and token.tag not in _VOID_TAGS:
            classes = _classes(token)
            if token.tag == "blockquote" or classes & _QUOTE_CLASSES:
                index = ends[index]
                out.append(placeholder)
                continue
            if classes & _ATTRIBUTION_CLASSES:
                after = ends[index]
                if _quote_starts_at(tokens, after):
                    index = after
                    continue
        out.append(token.raw)
        index += 1
    return "".join(out)


def _quote_starts_at(tokens: list[_Token], index: int) -> bool:
    """Whether the next visible thing from token ``index`` on is a blockquote."""
    for token in tokens[index : index + 50]:
        if token.kind == "data" and not token.attrs["text"].strip():
            continue
        if token.kind in ("other", "end") or token.tag == "br":
            continue
        return token.kind == "start" and token.tag == "blockquote"
    return False


def _element_ends(tokens: list[_Token]) -> list[int]:
    """For each start tag, the index just after its matching end tag (end of input if never closed)."""
    ends = [len(tokens)] * len(tokens)
    open_tags: dict[str, list[int]] = {}
    for position, token in enumerate(tokens):
        if token.kind == "start" and token.tag not in _VOID_TAGS:
            open_tags.setdefault(token.tag, []).append(position)
        elif token.kind == "end" and open_tags.get(token.tag):
            ends[open_tags[token.tag].pop()] = position + 1
    return ends


def strip_html_quotes(html: str) -> str:
    """Remove quoted history blocks from HTML before conversion (gmail_quote, blockquote type=cite,
    Outlook divRplyFwdMsg / OLK_SRC_BODY_SECTION / border-top separators, moz-cite-prefix, yahoo_quoted, etc.).

    Done on the markup because clients mark their quotes there far more reliably than in the text.
    Blockquotes are removed wherever they are, so text typed between them (inline replies) is kept.
    """
    try:
        return _strip_tokens(_tokenize(html[:_HTML_MAX_CHARS]), placeholder="")
    except Exception:  # the stdlib parser is tolerant, but a body must never break ingestion
        logger.exception("strip_html_quotes failed; returning the HTML unchanged")
        return html


class _PlainTextConverter(html2text.HTML2Text):
    """html2text tuned for mail bodies: no wrapping, no Markdown escapes, headings and links as text."""

    def __init__(self) -> None:
        super().__init__(bodywidth=0)
        self.ignore_images = True
        self.ignore_emphasis = True
        self.ignore_links = True  # no [text](url); the URL is appended in plain text below
        self.ignore_tables = True
        self.ul_item_mark = "-"
        self._links: list[tuple[str, list[str]]] = []
        self._soft_paragraphs: list[bool] = []
        self._lines: list[list[bool]] = []  # per open div/line: [saw text, saw only &nbsp;]

    def handle_tag(self, tag: str, attrs: dict[str, str | None], start: bool) -> None:
        if html2text.utils.hn(tag):
            tag = "p"  # no "## " heading markup
        if tag == "p":  # Outlook writes every line as <p class=MsoNormal> with no margin
            if start:
                self._soft_paragraphs.append("msonormal" in (attrs.get("class") or "").lower())
                soft = self._soft_paragraphs[-1]
            else:
                soft = self._soft_paragraphs.pop() if self._soft_paragraphs else False
            if soft:
                tag = "div"
        if tag == "div":  # a div is a line, not a paragraph: one line break, not a blank line
            self.current_tag = tag
            if start:
                self._lines.append([False, False])
            elif self._lines:
                saw_text, saw_nbsp = self._lines.pop()
                if saw_nbsp and not saw_text:  # <p>&nbsp;</p> is how Outlook writes an empty line
                    self.p()
            self.pbr()
            return
        if tag == "a":
            if start:
                self._links.append(((attrs.get("href") or "").strip(), []))
            elif self._links:
                href, text = self._links.pop()
                url = _visible_url(href, "".join(text))
                if url:
                    super().handle_data(f" ({url})", True)
        super().handle_tag(tag, attrs, start)
        if tag in ("td", "th") and not start:
            self.o(" ")

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        if self._links:
            self._links[-1][1].append(data)
        if self._lines:
            if data.strip():
                self._lines[-1][0] = True
            elif "\xa0" in data:
                self._lines[-1][1] = True
        # entity_char=True stops html2text from backslash-escaping "1.", "-", "+" and "\" for Markdown.
        super().handle_data(data, True)


def _visible_url(href: str, text: str) -> str:
    """The link target to print after its text, or "" when the text already shows it."""
    if not href.lower().startswith(("http://", "https://")):
        return ""
    text = " ".join(text.split())
    if not text:
        return ""
    bare = re.sub(r"^https?://(?:www\.)?", "", href, flags=re.IGNORECASE).rstrip("/")
    return "" if bare.lower() in text.lower() else href


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (links kept as text, no markup).

    Used when a mail has no text/plain part, so what comes out must read like a typed message.
    """
    try:
        converter = _PlainTextConverter()
        text = converter.handle(html[:_HTML_MAX_CHARS])
    except Exception:  # html2text is robust, but a body must never break ingestion
        logger.exception("html_to_text failed; falling back to tag stripping")
        text = _unescape_html(re.sub(r"<[^>]*>", " ", html[:_HTML_MAX_CHARS]))
    lines = [line.rstrip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# --- public entry point -----------------------------------------------------------------------------------


def new_text(plain: str | None, html: str | None) -> str:
    """The sender's new text: from the text/plain body when present and non-empty, else from the HTML
    body (quotes removed, then converted); reply headers and quoted lines removed; signatures KEPT except
    the 'Sent from my iPhone'-style device lines; trailing whitespace trimmed. Never raises on odd input;
    returns "" for an empty body.

    Tickets store only this text, so the thread does not repeat itself and commands typed in the reply
    (``#time 30m``) are seen once.
    """
    try:
        if isinstance(plain, str) and plain.strip():
            return _plain_new_text(plain)
        if isinstance(html, str) and html.strip():
            stripped = _strip_tokens(_tokenize(html[:_HTML_MAX_CHARS]), placeholder=_QUOTE_PLACEHOLDER)
            return _plain_new_text(html_to_text(stripped))
    except Exception:  # odd input must not stop mail ingestion; fall back to the raw text
        logger.exception("new_text failed; returning the body without quoted lines")
        body = plain if isinstance(plain, str) and plain.strip() else html_to_text(html or "")
        kept = [line.rstrip() for line in body.splitlines() if not line.lstrip().startswith(">")]
        return "\n".join(kept).strip()
    return ""
