"""Agents' ``#commands`` (CONTRACT §4): found in a mail's new text and parsed into typed values, without I/O.

`parse_commands(text)` returns every recognised command, every refused one with its reason, and the text with
all command lines removed, because command lines never reach the customer. Applying the commands (all or
none, permissions, transitions, dates in the past, conflicting commands) is the caller's business.

Which lines are commands
    A line whose first non-blank character is ``#`` followed at once by a letter, and whose first word (up to a
    blank or ``:``, case-insensitive, so ``#Status: open`` works) is a keyword below. Anything else is plain text:
    ``#1 issue``, ``# heading``, ``#hashtag``, ``#include``, ``see issue #12``. A known keyword with bad arguments
    is still a command line: it gives a `CommandError` and is removed from the text too. So does a first word
    one letter away from a keyword of `MISSPELT_MIN_LETTERS` or more (``#stauts``, ``#tiem``, ``#reslove``):
    an agent's typo must not be relayed to the customer as text while the command silently does nothing. A
    letter replaced counts in keywords of `MISSPELT_REPLACED_LETTERS` or more, and a trailing "s" or "d" makes
    a word of its own (``#line``, ``#notes``, ``#closed`` stay text).
    ``#thanks`` / ``#gracias`` (as in debbugs, trailing ``.``, ``,`` or ``!`` allowed) ends the commands: that
    line is removed and every later line is plain text, even one that starts with ``#``.
    At most `MAX_COMMANDS` command lines are read; the first one beyond gives one "too many commands" error and
    the rest are removed unread.

Keywords (canonical English ← aliases)
    status ← estado · wait ← esperar · time ← tiempo · resolve ← resolver · assign ← asignar ·
    priority ← prioridad · queue ← cola · category ← categoria, categoría · tag ← tags, etiqueta, etiquetas ·
    cc · internal ← note, comment (RT's word for it), nota, interna, interno · postpone ← aplazar, posponer ·
    link ← enlazar, vincular · forward ← reenviar · requester ← solicitante · close ← cerrar ·
    merge ← fusionar, unir · language ← idioma · digest ← resumen · block ← bloquear · unblock ← desbloquear.

Arguments → ``Command.args`` (values are case-insensitive, ``-`` and ``_`` interchangeable)
    ``#status S``        `SetStatus` — S in `STATUSES` or nuevo, abierto, esperando_cliente, esperando_tercero,
                         resuelto, cerrado; ``resolved`` gives `Resolve` ("responded", as ``#resolve responded``),
                         ``waiting_until DATE`` gives `Wait` (as ``#wait until DATE``); without a date it is refused.
    ``#wait K``          `Wait` — customer/cliente, third_party/tercero, or until/hasta DATE with DATE
                         ``YYYY-MM-DD`` (00:00), ``YYYY-MM-DD HH:MM`` or ``YYYY-MM-DDTHH:MM``: a naive datetime
                         the caller localises to the configured time zone.
    ``#time D [F] [N]``  `TimeEntry` — D as `parse_duration` reads it (``45m``, ``1h30m``, ``1h 30m``, ``1.5h``,
                         ``1:30``), more than 0 and at most 24h, rounded to the nearest minute (at least 1);
                         F nonbillable/non-billable/nofacturable/no-facturable; N a free note.
    ``#resolve M [N]``   `Resolve` — M in `RESOLUTION_METHODS` or respondido, sin_respuesta, rechazado; N a note.
    ``#assign A``        `Assign` — me/yo, none/nadie, an address (lower-cased, ``Name <addr>`` too) or a name.
    ``#priority P``      `Priority` — P in `PRIORITIES` or baja, alta, urgente.
    ``#queue Q``         `SetQueue` — one name of letters, digits, ``.``, ``_``, ``-`` (config's rule).
    ``#category C``      `SetCategory` — a name as for queues, or none/ninguna (``name`` None: clear it).
    ``#tag +a -b c``     `Tags` — names lower-cased; bare means add; commas allowed between tokens.
    ``#cc +x@y -z@w``    `Cc` — addresses lower-cased; bare means add; commas allowed between tokens.
    ``#internal``        `Internal` — no arguments.
    ``#postpone D``      `Postpone` — D more than 0 and at most 365 days.
    ``#link ID``         `Link` — ``12``, ``#12``, ``ACME#12`` or ``[ACME#12]`` (a token of another desk is refused).
    ``#forward ADDR``    `Forward` — one address (``Name <addr>`` too), lower-cased.
    ``#requester ADDR``  `Requester` — one address, lower-cased, and the display name if one was given.
    ``#close``           `Close` — no arguments.
    ``#merge ID``        `Merge` — the ticket to merge this one into, written as for ``#link``.
    ``#language L``      `SetLanguage` — L en/english/inglés or es/spanish/español: the customer's mail's language.
    ``#digest``          `SendDigest` — no arguments: the agent's digest (`maild.digest`) now, by mail.
    ``#block``           `Block` — no arguments: the ticket's requester's mail is refused from now on.
    ``#unblock``         `Unblock` — no arguments: lifts that.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

from maild.config import LANGUAGES, PRIORITIES
from maild.durations import parse_duration
from maild.refusals import Text
from maild.statuses import (
    RESOLUTION_METHODS,
    RESOLVED,
    STATUSES,
    WAITING_CUSTOMER,
    WAITING_THIRD_PARTY,
    WAITING_UNTIL,
)
from maild.tokens import Reference, ticket_reference

MAX_COMMANDS = 50
LAST_YEAR = 8999  # of `#wait until` dates, as of the CLI's
MAX_TIME_ENTRY = timedelta(hours=24)
MAX_POSTPONE = timedelta(days=365)

# --- the typed arguments of each command ---------------------------------------------------------------------

WaitKind: TypeAlias = Literal["customer", "third_party", "until"]
AssignKind: TypeAlias = Literal["me", "none", "address", "name"]

_WAIT_STATUS: dict[str, str] = {
    "customer": WAITING_CUSTOMER,
    "third_party": WAITING_THIRD_PARTY,
    "until": WAITING_UNTIL,
}


@dataclass(frozen=True)
class SetStatus:
    status: str


@dataclass(frozen=True)
class Wait:
    kind: WaitKind
    until: datetime | None  # naive; set only when kind is "until"

    @property
    def status(self) -> str:
        """The waiting status this command sets."""
        return _WAIT_STATUS[self.kind]


@dataclass(frozen=True)
class TimeEntry:
    minutes: int
    billable: bool
    note: str


@dataclass(frozen=True)
class Resolve:
    method: str
    note: str


@dataclass(frozen=True)
class Assign:
    kind: AssignKind
    target: str  # "me", "none", a lower-cased address or a name as written (blanks collapsed)


@dataclass(frozen=True)
class Priority:
    value: str


@dataclass(frozen=True)
class SetQueue:
    name: str


@dataclass(frozen=True)
class SetCategory:
    name: str | None  # None clears the category


@dataclass(frozen=True)
class Tags:
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class Cc:
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class Internal:
    pass


@dataclass(frozen=True)
class Postpone:
    delta: timedelta


@dataclass(frozen=True)
class Link:
    ticket_id: int
    prefix: str = ""  # of a token typed with one: [ACME#12] links 12 only on the desk whose prefix is ACME


@dataclass(frozen=True)
class Forward:
    address: str


@dataclass(frozen=True)
class Requester:
    address: str
    name: str  # the display name of "Name <addr>", or ""


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class Merge:
    ticket_id: int  # the ticket that takes this one's thread
    prefix: str = ""  # as Link's


@dataclass(frozen=True)
class SetLanguage:
    language: str  # one of config.LANGUAGES


@dataclass(frozen=True)
class SendDigest:
    pass


@dataclass(frozen=True)
class Block:
    pass


@dataclass(frozen=True)
class Unblock:
    pass


CommandArgs: TypeAlias = (
    SetStatus
    | Wait
    | TimeEntry
    | Resolve
    | Assign
    | Priority
    | SetQueue
    | SetCategory
    | Tags
    | Cc
    | Internal
    | Postpone
    | Link
    | Forward
    | Requester
    | Close
    | Merge
    | SetLanguage
    | SendDigest
    | Block
    | Unblock
)


@dataclass(frozen=True)
class Command:
    """One recognised, syntactically valid command line."""

    keyword: str  # canonical English keyword
    line: str  # the original line, stripped
    lineno: int  # 1-based
    args: CommandArgs


@dataclass(frozen=True)
class CommandError:
    """One command line that was refused, with what would have been accepted instead."""

    line: str
    lineno: int
    reason: Text  # English as a str; the error mail says it in the agent's language
    accepted: Text
    keyword: str = ""  # canonical keyword of the refused line; "" for "too many commands"


@dataclass(frozen=True)
class ParsedCommands:
    commands: tuple[Command, ...]
    errors: tuple[CommandError, ...]
    text: str  # without command lines and the #thanks line; outer blank lines trimmed

    @property
    def ok(self) -> bool:
        """True when no command line was refused (the commands may then be applied, all together)."""
        return not self.errors


# --- vocabularies --------------------------------------------------------------------------------------------

KEYWORDS: dict[str, str] = {
    **{k: k for k in ("status", "wait", "time", "resolve", "assign", "priority", "queue", "category")},
    **{k: k for k in ("tag", "cc", "internal", "postpone", "link", "forward", "requester", "close", "merge")},
    "language": "language",
    "idioma": "language",
    "digest": "digest",
    "resumen": "digest",
    "block": "block",
    "bloquear": "block",
    "unblock": "unblock",
    "desbloquear": "unblock",
    "tags": "tag",
    "estado": "status",
    "esperar": "wait",
    "tiempo": "time",
    "resolver": "resolve",
    "asignar": "assign",
    "prioridad": "priority",
    "cola": "queue",
    "categoria": "category",
    "categoría": "category",
    "etiqueta": "tag",
    "etiquetas": "tag",
    "nota": "internal",
    "note": "internal",
    "comment": "internal",
    "interna": "internal",
    "interno": "internal",
    "aplazar": "postpone",
    "posponer": "postpone",
    "enlazar": "link",
    "vincular": "link",
    "reenviar": "forward",
    "solicitante": "requester",
    "cerrar": "close",
    "fusionar": "merge",
    "unir": "merge",
}
STOP_WORDS = frozenset({"thanks", "gracias"})

STATUS_VALUES: dict[str, str] = {
    **{s: s for s in STATUSES},
    "nuevo": "new",
    "abierto": "open",
    "esperando_cliente": "waiting_customer",
    "esperando_tercero": "waiting_third_party",
    "resuelto": "resolved",
    "cerrado": "closed",
}
WAIT_VALUES: dict[str, WaitKind] = {
    "customer": "customer",
    "cliente": "customer",
    "third_party": "third_party",
    "tercero": "third_party",
    "until": "until",
    "hasta": "until",
}
RESOLUTION_VALUES: dict[str, str] = {
    **{m: m for m in RESOLUTION_METHODS},
    "respondido": "responded",
    "sin_respuesta": "no_response",
    "rechazado": "rejected",
}
PRIORITY_VALUES: dict[str, str] = {
    **{p: p for p in PRIORITIES},
    "baja": "low",
    "alta": "high",
    "urgente": "urgent",
}
LANGUAGE_VALUES: dict[str, str] = {
    **{language: language for language in LANGUAGES},
    "english": "en",
    "inglés": "en",
    "ingles": "en",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
}
ASSIGN_ME = frozenset({"me", "yo"})
ASSIGN_NONE = frozenset({"none", "nadie"})
CATEGORY_NONE = frozenset({"none", "ninguna"})
NONBILLABLE = frozenset({"nonbillable", "non_billable", "nofacturable", "no_facturable"})

# What would have been accepted, shown under each refused line (maild.refusals words them per language).
_STATUS_ACCEPTED = Text("accepted status", statuses=", ".join(s for s in STATUSES if s != WAITING_UNTIL))
_WAIT_ACCEPTED = Text("accepted wait")
_DATE_ACCEPTED = Text("accepted date")
_POSTPONE_ACCEPTED = Text("accepted postpone")
_TIME_ACCEPTED = Text("accepted time")
_RESOLVE_ACCEPTED = Text("accepted resolve", methods=", ".join(RESOLUTION_METHODS))
_ASSIGN_ACCEPTED = Text("accepted assign")
_PRIORITY_ACCEPTED = Text("accepted one of", values=", ".join(PRIORITIES))
_NAME_ACCEPTED = Text("accepted name")
_CATEGORY_ACCEPTED = Text("accepted category")
_TAG_ACCEPTED = Text("accepted tag")
_CC_ACCEPTED = Text("accepted cc")
_ADDRESS_ACCEPTED = Text("accepted address")
_LINK_ACCEPTED = Text("accepted link")
_MERGE_ACCEPTED = Text("accepted merge")
_LANGUAGE_ACCEPTED = Text("accepted one of", values=", ".join(LANGUAGES))
_NO_ARGUMENTS = Text("accepted nothing")

# --- syntax --------------------------------------------------------------------------------------------------

# "#" then a letter; the word runs to a blank or ":" so "#status: open" and "#status:open" both read as status.
_CANDIDATE = re.compile(r"\s*#([^\W\d_][^\s:]*):?(.*)", re.DOTALL)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:\s+|[Tt])(\d{1,2}):(\d{2}))?")
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@" + _LABEL + r"(?:\." + _LABEL + r")*")
_MAILBOX = re.compile(r"(?:\"?([^\"<>]*?)\"?\s*)?<([^<>]*)>")
_TAG = re.compile(r"\w[\w.-]*")
_SEPARATORS = re.compile(r"[\s,;]+")


class Refused(Exception):
    """A command refused, why, and what would have been accepted: raised by the parsers here for bad
    arguments, and by the commands step for what the ticket or the agent's role does not allow."""

    def __init__(self, reason: Text, accepted: Text) -> None:
        super().__init__(reason)
        self.reason = reason
        self.accepted = accepted


def _fold(word: str) -> str:
    """A value as the tables above spell it: NFC, lower case, "-" read as "_"."""
    return unicodedata.normalize("NFC", word).lower().replace("-", "_")


def _choose(rest: str, table: Mapping[str, str], what: Text, accepted: Text) -> str:
    words = rest.split()
    if not words:
        raise Refused(Text("missing", what=what), accepted)
    if len(words) > 1:
        raise Refused(Text("one expected", what=what, got=repr(rest)), accepted)
    value = table.get(_fold(words[0]))
    if value is None:
        raise Refused(Text("unknown", what=what, got=repr(words[0])), accepted)
    return value


def _no_arguments(rest: str) -> None:
    if rest:
        raise Refused(Text("no arguments", got=repr(rest)), _NO_ARGUMENTS)


def _alone(make: Callable[[], CommandArgs]) -> Callable[[str], CommandArgs]:
    """The parser of a keyword that takes no arguments: #internal, #close, #digest, #block, #unblock."""

    def parse(rest: str) -> CommandArgs:
        _no_arguments(rest)
        return make()

    return parse


def _address(token: str, accepted: Text) -> str:
    if not _ADDRESS.fullmatch(token):
        raise Refused(Text("not an address", got=repr(token)), accepted)
    return token.lower()


def _mailbox(rest: str) -> tuple[str, str]:
    """(display name, address) from "addr", "<addr>" or "Name <addr>"."""
    if not rest:
        raise Refused(Text("missing", what=Text("address")), _ADDRESS_ACCEPTED)
    bracketed = _MAILBOX.fullmatch(rest)
    if bracketed:
        return " ".join((bracketed.group(1) or "").split()), _address(bracketed.group(2), _ADDRESS_ACCEPTED)
    if len(rest.split()) > 1:
        raise Refused(Text("one expected", what=Text("address"), got=repr(rest)), _ADDRESS_ACCEPTED)
    return "", _address(rest, _ADDRESS_ACCEPTED)


def _name(rest: str, what: Text, accepted: Text) -> str:
    words = rest.split()
    if not words:
        raise Refused(Text("missing name", what=what), accepted)
    if len(words) > 1 or not all(c.isalnum() or c in "._-" for c in words[0]):
        raise Refused(Text("not a name", what=what, got=repr(rest)), accepted)
    return words[0]


def _bounded(delta: timedelta, limit: timedelta, limit_text: str, accepted: Text) -> timedelta:
    if delta <= timedelta(0):
        raise Refused(Text("duration zero"), accepted)
    if delta > limit:
        raise Refused(Text("duration too long", limit=limit_text), accepted)
    return delta


def _signed(rest: str, what: Text, accepted: Text) -> tuple[list[str], list[str]]:
    """Split "+a -b c" into (added, removed) raw names; a bare name is added."""
    add: list[str] = []
    remove: list[str] = []
    for token in _SEPARATORS.split(rest):
        if not token:
            continue
        sign, name = (token[0], token[1:]) if token[0] in "+-" else ("+", token)
        if not name:
            raise Refused(Text("names nothing", got=repr(token), what=what), accepted)
        (add if sign == "+" else remove).append(name)
    if not add and not remove:
        raise Refused(Text("missing", what=what), accepted)
    return add, remove


def _add_remove(
    add: list[str], remove: list[str], what: Text, accepted: Text
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    added, removed = tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove))
    both = [name for name in added if name in removed]
    if both:
        raise Refused(Text("added and removed", what=what, name=both[0]), accepted)
    return added, removed


# --- one parser per keyword: the rest of the line (stripped) → arguments, or Refused ----------------------


def _status(rest: str) -> SetStatus | Resolve | Wait:
    """CONTRACT §4 sets any status of §3: ``resolved`` as ``#resolve responded``, ``waiting_until DATE`` as
    ``#wait until DATE``."""
    words = rest.split(maxsplit=1)
    if len(words) == 2 and STATUS_VALUES.get(_fold(words[0])) == WAITING_UNTIL:
        return Wait("until", _date(words[1].strip()))
    status = _choose(rest, STATUS_VALUES, Text("status"), _STATUS_ACCEPTED)
    if status == WAITING_UNTIL:
        raise Refused(Text("waiting_until needs a date"), _STATUS_ACCEPTED)
    if status == RESOLVED:
        return Resolve("responded", "")
    return SetStatus(status)


def _wait(rest: str) -> Wait:
    words = rest.split(maxsplit=1)
    if not words:
        raise Refused(Text("missing wait"), _WAIT_ACCEPTED)
    kind = WAIT_VALUES.get(_fold(words[0]))
    if kind is None:
        raise Refused(Text("unknown wait", got=repr(words[0])), _WAIT_ACCEPTED)
    if kind != "until":
        if len(words) > 1:
            raise Refused(Text("unexpected after", got=repr(words[1]), word=words[0]), _WAIT_ACCEPTED)
        return Wait(kind, None)
    if len(words) == 1:
        raise Refused(Text("missing date after", word=words[0]), _DATE_ACCEPTED)
    return Wait("until", _date(words[1].strip()))


def _date(text: str) -> datetime:
    found = _DATE.fullmatch(text)
    if not found:
        raise Refused(Text("not a date", got=repr(text)), _DATE_ACCEPTED)
    year, month, day, hour, minute = (int(part) if part else 0 for part in found.groups())
    if year > LAST_YEAR:  # beyond, a date in a time zone west of UTC is past what datetime holds
        raise Refused(Text("date too far", got=repr(text), limit=f"{LAST_YEAR}-12-31"), _DATE_ACCEPTED)
    try:
        # Naive on purpose: the caller knows the configured time zone, this module does not.
        return datetime(year, month, day, hour, minute)
    except ValueError:
        raise Refused(Text("no such date", got=repr(text)), _DATE_ACCEPTED) from None


def _time(rest: str) -> TimeEntry:
    tokens = list(re.finditer(r"\S+", rest))
    if not tokens:
        raise Refused(Text("missing", what=Text("duration")), _TIME_ACCEPTED)
    # "1h 30m" is one duration: take the longest run of the first few words that reads as one.
    delta, used = None, 0
    for count in range(min(4, len(tokens)), 0, -1):
        try:
            delta = parse_duration(rest[tokens[0].start() : tokens[count - 1].end()])
        except ValueError:
            continue
        used = count
        break
    if delta is None:
        raise Refused(Text("not a duration", got=repr(tokens[0].group())), _TIME_ACCEPTED)
    _bounded(delta, MAX_TIME_ENTRY, "24h", _TIME_ACCEPTED)
    billable = True
    if used < len(tokens) and _fold(tokens[used].group()) in NONBILLABLE:
        billable = False
        used += 1
    note = rest[tokens[used].start() :].strip() if used < len(tokens) else ""
    seconds = int(delta.total_seconds())
    return TimeEntry(minutes=max(1, (seconds + 30) // 60), billable=billable, note=note)


def _resolve(rest: str) -> Resolve:
    words = rest.split(maxsplit=1)
    method = _choose(words[0] if words else "", RESOLUTION_VALUES, Text("resolution method"), _RESOLVE_ACCEPTED)
    return Resolve(method=method, note=words[1].strip() if len(words) > 1 else "")


def _assign(rest: str) -> Assign:
    if not rest:
        raise Refused(Text("missing", what=Text("assignee")), _ASSIGN_ACCEPTED)
    folded = _fold(rest)
    if folded in ASSIGN_ME:
        return Assign("me", "me")
    if folded in ASSIGN_NONE:
        return Assign("none", "none")
    if "@" in rest:
        try:
            return Assign("address", _mailbox(rest)[1])
        except Refused as refused:
            raise Refused(refused.reason, _ASSIGN_ACCEPTED) from None
    return Assign("name", " ".join(rest.split()))


def _priority(rest: str) -> Priority:
    return Priority(_choose(rest, PRIORITY_VALUES, Text("priority"), _PRIORITY_ACCEPTED))


def _queue(rest: str) -> SetQueue:
    return SetQueue(_name(rest, Text("queue"), _NAME_ACCEPTED))


def _category(rest: str) -> SetCategory:
    if _fold(rest) in CATEGORY_NONE:
        return SetCategory(None)
    return SetCategory(_name(rest, Text("category"), _CATEGORY_ACCEPTED))


def _tag(rest: str) -> Tags:
    add, remove = _signed(rest, Text("tag"), _TAG_ACCEPTED)
    for name in add + remove:
        if not _TAG.fullmatch(name):
            raise Refused(Text("not a tag", got=repr(name)), _TAG_ACCEPTED)
    lower = [n.lower() for n in add], [n.lower() for n in remove]
    added, removed = _add_remove(*lower, Text("tag"), _TAG_ACCEPTED)
    return Tags(add=added, remove=removed)


def _cc(rest: str) -> Cc:
    add, remove = _signed(rest, Text("address"), _CC_ACCEPTED)
    added, removed = _add_remove(
        [_address(a, _CC_ACCEPTED) for a in add],
        [_address(a, _CC_ACCEPTED) for a in remove],
        Text("address"),
        _CC_ACCEPTED,
    )
    return Cc(add=added, remove=removed)


def _postpone(rest: str) -> Postpone:
    if not rest:
        raise Refused(Text("missing", what=Text("duration")), _POSTPONE_ACCEPTED)
    try:
        delta = parse_duration(rest)
    except ValueError:
        raise Refused(Text("not a duration", got=repr(rest)), _POSTPONE_ACCEPTED) from None
    return Postpone(_bounded(delta, MAX_POSTPONE, "365d", _POSTPONE_ACCEPTED))


def _link(rest: str) -> Link:
    return Link(*_ticket_id(rest, _LINK_ACCEPTED))


def _merge(rest: str) -> Merge:
    return Merge(*_ticket_id(rest, _MERGE_ACCEPTED))


def _ticket_id(rest: str, accepted: Text) -> Reference:
    if not rest:
        raise Refused(Text("missing", what=Text("ticket id")), accepted)
    found = ticket_reference(rest)
    if found is None:
        raise Refused(Text("not a ticket id", got=repr(rest)), accepted)
    if found.id < 1:
        raise Refused(Text("ticket ids start at 1"), accepted)
    return found


def _forward(rest: str) -> Forward:
    return Forward(_mailbox(rest)[1])


def _requester(rest: str) -> Requester:
    name, address = _mailbox(rest)
    return Requester(address=address, name=name)


def _language(rest: str) -> SetLanguage:
    return SetLanguage(_choose(rest, LANGUAGE_VALUES, Text("language"), _LANGUAGE_ACCEPTED))


PARSERS: dict[str, Callable[[str], CommandArgs]] = {
    "status": _status,
    "wait": _wait,
    "time": _time,
    "resolve": _resolve,
    "assign": _assign,
    "priority": _priority,
    "queue": _queue,
    "category": _category,
    "tag": _tag,
    "cc": _cc,
    "internal": _alone(Internal),
    "postpone": _postpone,
    "link": _link,
    "forward": _forward,
    "requester": _requester,
    "close": _alone(Close),
    "merge": _merge,
    "language": _language,
    "digest": _alone(SendDigest),
    "block": _alone(Block),
    "unblock": _alone(Unblock),
}

# --- the text ------------------------------------------------------------------------------------------------

_STOP = "#thanks"
_MISSPELT = "#misspelt"
# Words this long or longer are read as misspelt keywords; a letter replaced counts only in keywords of
# `MISSPELT_REPLACED_LETTERS` or more ("#line" is no "#link", "#unix" no "#unir"), and a trailing "s" or
# "d" makes a word, not a typo ("#notes", "#links", "#closed").
MISSPELT_MIN_LETTERS = 4
MISSPELT_REPLACED_LETTERS = 5


def _classify(line: str) -> tuple[str, str] | None:
    """(canonical keyword, _STOP or _MISSPELT, rest of the line) for a command line; None for plain text.
    For _MISSPELT the rest is the word as typed and the keyword it misses, space-separated."""
    found = _CANDIDATE.match(line)
    if not found:
        return None
    word = unicodedata.normalize("NFC", found.group(1)).lower()
    keyword = KEYWORDS.get(word)
    if keyword is not None:
        return keyword, found.group(2).strip()
    if word.rstrip(".,!") in STOP_WORDS:
        return _STOP, ""
    meant = _meant(word)
    return (_MISSPELT, f"{word} {meant}") if meant else None


def _meant(word: str) -> str | None:
    """The keyword ``word`` misses by one letter (added, left out, replaced, or two swapped), if any."""
    if len(word) < MISSPELT_MIN_LETTERS:
        return None
    return next((k for k in KEYWORDS if len(k) >= MISSPELT_MIN_LETTERS and _misspelt(word, k)), None)


def _misspelt(typed: str, keyword: str) -> bool:
    if typed == keyword or abs(len(typed) - len(keyword)) > 1:
        return False
    start = next((i for i, (x, y) in enumerate(zip(typed, keyword, strict=False)) if x != y), None)
    if len(typed) == len(keyword):
        assert start is not None  # equal lengths and different
        swapped = (
            typed[start + 2 :] == keyword[start + 2 :] and typed[start : start + 2] == keyword[start : start + 2][::-1]
        )
        replaced = typed[start + 1 :] == keyword[start + 1 :] and len(keyword) >= MISSPELT_REPLACED_LETTERS
        return swapped or replaced
    if len(typed) > len(keyword):
        if start is None:  # the keyword and one letter more at the end
            return typed[-1] not in "sd"
        return typed[start + 1 :] == keyword[start:]
    start = len(typed) if start is None else start
    return keyword[start + 1 :] == typed[start:]


def parse_commands(text: str) -> ParsedCommands:
    """The commands of an agent's new text, the refused ones, and the text without any command line."""
    commands: list[Command] = []
    errors: list[CommandError] = []
    kept: list[str] = []
    seen = 0
    stopped = False
    # Set when a command line was removed since the last kept non-blank line, so that removing it does not
    # leave two blank lines where the agent wrote one.
    removed = False
    for lineno, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        found = None if stopped else _classify(line)
        if found is None:
            if line.strip():
                removed = False
            elif removed and kept and not kept[-1].strip():
                continue
            kept.append(line)
            continue
        removed = True
        keyword, rest = found
        if keyword == _STOP:
            stopped = True
            continue
        if keyword == _MISSPELT:
            typed, meant = rest.split()
            shown = f"#{meant}" if KEYWORDS[meant] == meant else f"#{meant} (#{KEYWORDS[meant]})"
            reason = Text("misspelt", got=f"#{typed}", meant=shown)
            errors.append(CommandError(line.strip(), lineno, reason, Text("accepted keyword", keyword=shown)))
            continue
        seen += 1
        if seen > MAX_COMMANDS:
            if seen == MAX_COMMANDS + 1:
                errors.append(
                    CommandError(
                        line.strip(),
                        lineno,
                        Text("too many commands"),
                        Text("accepted at most", count=MAX_COMMANDS),
                    )
                )
            continue
        try:
            commands.append(Command(keyword, line.strip(), lineno, PARSERS[keyword](rest)))
        except Refused as refused:
            errors.append(CommandError(line.strip(), lineno, refused.reason, refused.accepted, keyword))
    body = [n for n, line in enumerate(kept) if line.strip()]
    trimmed = kept[body[0] : body[-1] + 1] if body else []
    return ParsedCommands(commands=tuple(commands), errors=tuple(errors), text="\n".join(trimmed))
