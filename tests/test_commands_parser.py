"""Tests of maild.commands: agents' #command lines parsed into typed values, and the text left without them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import maild
from maild.commands import (
    MAX_COMMANDS,
    PARSERS,
    Assign,
    Block,
    Cc,
    Close,
    CommandArgs,
    CommandError,
    Forward,
    Internal,
    Link,
    Merge,
    Postpone,
    Priority,
    Requester,
    Resolve,
    SendDigest,
    SetCategory,
    SetLanguage,
    SetQueue,
    SetStatus,
    Tags,
    TimeEntry,
    Unblock,
    Wait,
    parse_commands,
)


def only_args(line: str) -> CommandArgs:
    """The arguments of the single valid command in ``line`` (which must parse without error)."""
    parsed = parse_commands(line)
    assert parsed.errors == ()
    [command] = parsed.commands
    return command.args


def only_error(line: str) -> CommandError:
    """The single error of ``line`` (which must give no valid command)."""
    parsed = parse_commands(line)
    assert parsed.commands == ()
    [error] = parsed.errors
    return error


# --- keywords ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "keyword"),
    [
        ("#status open", "status"),
        ("#estado open", "status"),
        ("#wait customer", "wait"),
        ("#esperar customer", "wait"),
        ("#time 30m", "time"),
        ("#tiempo 30m", "time"),
        ("#resolve responded", "resolve"),
        ("#resolver responded", "resolve"),
        ("#assign me", "assign"),
        ("#asignar me", "assign"),
        ("#priority high", "priority"),
        ("#prioridad high", "priority"),
        ("#queue billing", "queue"),
        ("#cola billing", "queue"),
        ("#category hardware", "category"),
        ("#categoria hardware", "category"),
        ("#categoría hardware", "category"),
        ("#tag vip", "tag"),
        ("#tags vip", "tag"),
        ("#etiqueta vip", "tag"),
        ("#etiquetas vip", "tag"),
        ("#cc a@example.com", "cc"),
        ("#internal", "internal"),
        ("#nota", "internal"),
        ("#interna", "internal"),
        ("#interno", "internal"),
        ("#postpone 2d", "postpone"),
        ("#aplazar 2d", "postpone"),
        ("#posponer 2d", "postpone"),
        ("#link 12", "link"),
        ("#enlazar 12", "link"),
        ("#vincular 12", "link"),
        ("#forward a@example.com", "forward"),
        ("#reenviar a@example.com", "forward"),
        ("#requester a@example.com", "requester"),
        ("#solicitante a@example.com", "requester"),
        ("#close", "close"),
        ("#cerrar", "close"),
        ("#merge 12", "merge"),
        ("#fusionar 12", "merge"),
        ("#unir 12", "merge"),
        ("#language es", "language"),
        ("#idioma en", "language"),
        ("#digest", "digest"),
        ("#resumen", "digest"),
        ("#block", "block"),
        ("#bloquear", "block"),
        ("#unblock", "unblock"),
        ("#desbloquear", "unblock"),
    ],
)
def test_every_keyword_and_spanish_alias_maps_to_its_english_keyword(line: str, keyword: str) -> None:
    """Each English keyword and each Spanish alias gives a command named by the canonical English keyword."""
    parsed = parse_commands(line)
    assert parsed.errors == ()
    assert [c.keyword for c in parsed.commands] == [keyword]
    assert parsed.commands[0].line == line
    assert parsed.commands[0].lineno == 1


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#STATUS OPEN", SetStatus("open")),
        ("#Estado Abierto", SetStatus("open")),
        ("#TIEMPO 1H", TimeEntry(60, True, "")),
        ("#CATEGORÍA hardware", SetCategory("hardware")),
        ("#Close", Close()),
        ("#Priority URGENT", Priority("urgent")),
        ("   #status open   ", SetStatus("open")),
        ("\t#status open", SetStatus("open")),
        ("#status: open", SetStatus("open")),
        ("#status:open", SetStatus("open")),
    ],
)
def test_keywords_and_values_are_case_insensitive_and_may_be_indented(line: str, args: CommandArgs) -> None:
    """Keywords and fixed values ignore case; leading blanks and a colon after the keyword are allowed."""
    assert only_args(line) == args


def test_decomposed_accent_in_keyword_is_recognised() -> None:
    """ "#categoría" typed with a combining accent (NFD) is the same keyword as the composed one."""
    assert only_args("#categori\u0301a hardware") == SetCategory("hardware")


# --- plain text is not a command ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "#1 issue is the toner",
        "#12",
        "# heading",
        "## heading",
        "#hashtag",
        "#include <stdio.h>",
        "#!/bin/sh",
        "#",
        "see issue #12",
        "please #close this",
        "#statusopen",
        "#time30m",
        "#notable this",
        "#commentary",
        "#lin 5",
        "#line 42",
        "#unix",
        "#notes: later",
        "#links",
        "#closed",
        "#Hola a todos",
        "#thanksgiving",
    ],
)
def test_lines_that_are_not_commands_stay_in_the_text(line: str) -> None:
    """A "#" not followed by a letter, an unknown keyword (a short one, two letters or more away from every
    keyword, a keyword with a trailing "s" or "d", or one letter replaced in a short keyword), or a "#" inside
    a line is plain text."""
    parsed = parse_commands(line)
    assert parsed.commands == ()
    assert parsed.errors == ()
    assert parsed.text == line


@pytest.mark.parametrize(
    ("line", "meant"),
    [
        ("#stauts open", "#status"),
        ("#tiem 30m", "#time"),
        ("#reslove responded", "#resolve"),
        ("#prority high", "#priority"),
        ("#assing me", "#assign"),
        ("#esatdo abierto", "#estado (#status)"),
        ("#interanl", "#internal"),
        ("#Forwrd: x@example.org", "#forward"),
    ],
)
def test_a_keyword_misspelt_by_one_letter_is_refused_not_sent_as_text(line: str, meant: str) -> None:
    """One letter added, left out, replaced or two swapped: a refused line naming the keyword it misses, taken
    out of the text, so the typo is neither relayed to the customer nor silently ignored."""
    parsed = parse_commands(f"Hello\n{line}\nBye")
    [error] = parsed.errors
    assert parsed.commands == () and parsed.text == "Hello\nBye"
    assert (error.line, error.lineno) == (line, 2)
    assert error.reason == f"unknown command #{line[1:].split()[0].rstrip(':').lower()}: did you mean {meant}?"


def test_note_and_comment_are_internal() -> None:
    """RT's and Zammad's words for an internal note are aliases of #internal."""
    assert [c.keyword for c in parse_commands("#note\n#Comment\nFYI").commands] == ["internal", "internal"]


# --- #status -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("new", "new"),
        ("open", "open"),
        ("waiting_customer", "waiting_customer"),
        ("waiting-customer", "waiting_customer"),
        ("waiting_third_party", "waiting_third_party"),
        ("waiting-third-party", "waiting_third_party"),
        ("closed", "closed"),
        ("nuevo", "new"),
        ("abierto", "open"),
        ("esperando_cliente", "waiting_customer"),
        ("esperando-cliente", "waiting_customer"),
        ("esperando_tercero", "waiting_third_party"),
        ("cerrado", "closed"),
    ],
)
def test_status_accepts_every_status_and_spanish_value(value: str, status: str) -> None:
    """#status takes any status of CONTRACT §3 (hyphens allowed) or its Spanish name."""
    assert only_args(f"#status {value}") == SetStatus(status)


@pytest.mark.parametrize("line", ["#status resolved", "#estado resuelto", "#status Resolved"])
def test_status_resolved_is_resolve_responded(line: str) -> None:
    """CONTRACT §4 sets any status: resolved is what "#resolve responded" does (with its resolution message)."""
    assert only_args(line) == Resolve("responded", "")


@pytest.mark.parametrize("line", ["#status waiting_until 2026-12-24 09:30", "#estado waiting-until 2026-12-24T09:30"])
def test_status_waiting_until_with_a_date_is_wait_until(line: str) -> None:
    """The line "#status waiting_until DATE" is "#wait until DATE"; without a date it is refused (below)."""
    assert only_args(line) == Wait("until", datetime(2026, 12, 24, 9, 30))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#status", "missing status"),
        ("#status pending", "unknown status 'pending'"),
        ("#status open now", "expected one status, got 'open now'"),
        ("#status waiting_until", "waiting_until needs a date: use #wait until YYYY-MM-DD [HH:MM]"),
        ("#estado waiting-until", "waiting_until needs a date: use #wait until YYYY-MM-DD [HH:MM]"),
    ],
)
def test_status_refuses_bad_values_and_lists_the_accepted_ones(line: str, reason: str) -> None:
    """A bad #status is an error naming the problem and the statuses that would work."""
    error = only_error(line)
    assert error.reason == reason
    assert error.keyword == "status"
    assert error.accepted.startswith("one of new, open, waiting_customer, waiting_third_party, resolved, closed")


# --- #wait -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#wait customer", Wait("customer", None)),
        ("#wait third_party", Wait("third_party", None)),
        ("#wait third-party", Wait("third_party", None)),
        ("#esperar cliente", Wait("customer", None)),
        ("#esperar tercero", Wait("third_party", None)),
        ("#wait until 2026-12-01", Wait("until", datetime(2026, 12, 1, 0, 0))),
        ("#wait until 2026-12-01 09:00", Wait("until", datetime(2026, 12, 1, 9, 0))),
        ("#wait until 2026-12-01T09:30", Wait("until", datetime(2026, 12, 1, 9, 30))),
        ("#wait until 2026-12-01   9:05", Wait("until", datetime(2026, 12, 1, 9, 5))),
        ("#wait UNTIL 2026-1-2", Wait("until", datetime(2026, 1, 2, 0, 0))),
        ("#esperar hasta 2026-12-24 18:00", Wait("until", datetime(2026, 12, 24, 18, 0))),
    ],
)
def test_wait_reads_kinds_and_naive_dates(line: str, args: Wait) -> None:
    """#wait takes customer, third_party or until DATE (date alone is midnight), also in Spanish."""
    assert only_args(line) == args


def test_wait_names_the_status_it_sets() -> None:
    """Each wait kind maps to its waiting status."""
    assert [Wait(k, None).status for k in ("customer", "third_party", "until")] == [
        "waiting_customer",
        "waiting_third_party",
        "waiting_until",
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#wait", "missing what to wait for"),
        ("#wait forever", "unknown wait 'forever'"),
        ("#wait customer please", "unexpected 'please' after customer"),
        ("#wait until", "missing date after until"),
        ("#esperar hasta", "missing date after hasta"),
        ("#wait until tomorrow", "not a date: 'tomorrow'"),
        ("#wait until 01/12/2026", "not a date: '01/12/2026'"),
        ("#wait until 2026-12-01 9am", "not a date: '2026-12-01 9am'"),
        ("#wait until 2026-02-30", "no such date: '2026-02-30'"),
        ("#wait until 2026-12-01 25:00", "no such date: '2026-12-01 25:00'"),
        ("#wait until 9000-01-01", "'9000-01-01' is too far ahead (at most 8999-12-31)"),
    ],
)
def test_wait_refuses_bad_kinds_and_dates(line: str, reason: str) -> None:
    """A bad #wait is an error with the reason and what would have been accepted."""
    error = only_error(line)
    assert error.reason == reason
    assert "until" in error.accepted or "YYYY-MM-DD" in error.accepted


# --- #time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#time 45m", TimeEntry(45, True, "")),
        ("#time 1h30m", TimeEntry(90, True, "")),
        ("#time 1h 30m", TimeEntry(90, True, "")),
        ("#time 1.5h", TimeEntry(90, True, "")),
        ("#time 1:30", TimeEntry(90, True, "")),
        ("#time 2h", TimeEntry(120, True, "")),
        ("#time 24h", TimeEntry(1440, True, "")),
        ("#time 20s", TimeEntry(1, True, "")),
        ("#time 90s", TimeEntry(2, True, "")),
        ("#time 89s", TimeEntry(1, True, "")),
        ("#time 30m nonbillable", TimeEntry(30, False, "")),
        ("#time 30m non-billable", TimeEntry(30, False, "")),
        ("#time 30m NonBillable", TimeEntry(30, False, "")),
        ("#tiempo 30m nofacturable", TimeEntry(30, False, "")),
        ("#tiempo 30m no-facturable", TimeEntry(30, False, "")),
        ("#time 30m replaced the toner", TimeEntry(30, True, "replaced the toner")),
        ("#time 1h 30m nonbillable call with  the vendor", TimeEntry(90, False, "call with  the vendor")),
        ("#time 30m the nonbillable part", TimeEntry(30, True, "the nonbillable part")),
        ("#time 1h 3 printers", TimeEntry(60, True, "3 printers")),
    ],
)
def test_time_reads_duration_flag_and_note(line: str, args: TimeEntry) -> None:
    """#time takes a duration in any form of parse_duration, then an optional nonbillable flag, then a note."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#time", "missing duration"),
        ("#time soon", "not a duration: 'soon'"),
        ("#time nonbillable 30m", "not a duration: 'nonbillable'"),
        ("#time 0m", "the duration must be more than zero"),
        ("#time 0:00", "the duration must be more than zero"),
        ("#time 25h", "the duration must be at most 24h"),
        ("#time 2d", "the duration must be at most 24h"),
    ],
)
def test_time_refuses_missing_zero_or_too_long_durations(line: str, reason: str) -> None:
    """A bad #time is an error whose accepted text shows duration examples."""
    error = only_error(line)
    assert error.reason == reason
    assert "45m, 1h30m, 1.5h, 1:30" in error.accepted


# --- #resolve ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#resolve responded", Resolve("responded", "")),
        ("#resolve no_response", Resolve("no_response", "")),
        ("#resolve no-response", Resolve("no_response", "")),
        ("#resolve rejected duplicate of #12", Resolve("rejected", "duplicate of #12")),
        ("#resolve spam", Resolve("spam", "")),
        ("#resolver respondido", Resolve("responded", "")),
        ("#resolver sin_respuesta", Resolve("no_response", "")),
        ("#resolver sin-respuesta", Resolve("no_response", "")),
        ("#resolver rechazado", Resolve("rejected", "")),
        ("#resolver SPAM", Resolve("spam", "")),
    ],
)
def test_resolve_reads_method_and_optional_note(line: str, args: Resolve) -> None:
    """#resolve takes a resolution method (or its Spanish name), then an optional note."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [("#resolve", "missing resolution method"), ("#resolve fixed", "unknown resolution method 'fixed'")],
)
def test_resolve_refuses_missing_or_unknown_method(line: str, reason: str) -> None:
    """#resolve without a known method is an error listing the methods."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted.startswith("one of responded, no_response, rejected, spam")


# --- #assign -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#assign me", Assign("me", "me")),
        ("#asignar yo", Assign("me", "me")),
        ("#assign ME", Assign("me", "me")),
        ("#assign none", Assign("none", "none")),
        ("#asignar nadie", Assign("none", "none")),
        ("#assign Ana@Example.com", Assign("address", "ana@example.com")),
        ("#assign Ana Pérez <Ana@Example.com>", Assign("address", "ana@example.com")),
        ("#assign Ana", Assign("name", "Ana")),
        ("#assign  Ana   María ", Assign("name", "Ana María")),
    ],
)
def test_assign_reads_me_none_address_or_name(line: str, args: Assign) -> None:
    """#assign takes me/yo, none/nadie, an address (lower-cased) or a name of several words."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#assign", "missing assignee"),
        ("#assign ana@", "not an address: 'ana@'"),
        ("#assign a@example.com b@example.com", "expected one address, got 'a@example.com b@example.com'"),
    ],
)
def test_assign_refuses_missing_or_bad_address(line: str, reason: str) -> None:
    """#assign needs an assignee, and a target with "@" must be one valid address."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted == "me, none, an address or an agent's name"


# --- #priority, #queue, #category --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "priority"),
    [
        ("low", "low"),
        ("normal", "normal"),
        ("high", "high"),
        ("urgent", "urgent"),
        ("baja", "low"),
        ("alta", "high"),
        ("urgente", "urgent"),
        ("Normal", "normal"),
    ],
)
def test_priority_accepts_english_and_spanish_values(value: str, priority: str) -> None:
    """#priority takes low, normal, high, urgent or baja, normal, alta, urgente."""
    assert only_args(f"#prioridad {value}") == Priority(priority)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#priority", "missing priority"),
        ("#priority critical", "unknown priority 'critical'"),
        ("#priority high now", "expected one priority, got 'high now'"),
    ],
)
def test_priority_refuses_bad_values(line: str, reason: str) -> None:
    """A bad #priority lists the four priorities."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted == "one of low, normal, high, urgent"


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#queue billing", SetQueue("billing")),
        ("#cola Sales-EU.2", SetQueue("Sales-EU.2")),
        ("#queue facturación", SetQueue("facturación")),
        ("#category hardware", SetCategory("hardware")),
        ("#category none", SetCategory(None)),
        ("#categoria ninguna", SetCategory(None)),
        ("#category NONE", SetCategory(None)),
    ],
)
def test_queue_and_category_read_one_name(line: str, args: CommandArgs) -> None:
    """#queue and #category take one name; #category none clears the category."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#queue", "missing queue name"),
        ("#queue two words", "not a queue name: 'two words'"),
        ("#queue bill/ing", "not a queue name: 'bill/ing'"),
        ("#category", "missing category name"),
        ("#category a+b", "not a category name: 'a+b'"),
    ],
)
def test_queue_and_category_refuse_missing_or_bad_names(line: str, reason: str) -> None:
    """A missing name or one with spaces or symbols is an error."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted.startswith("one name of letters, digits")


# --- #tag and #cc ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#tag vip", Tags(("vip",), ())),
        ("#tag +vip -printer", Tags(("vip",), ("printer",))),
        ("#tags +VIP, -Printer, new", Tags(("vip", "new"), ("printer",))),
        ("#etiqueta -old", Tags((), ("old",))),
        ("#tag +a +a b", Tags(("a", "b"), ())),
        ("#tag facturación v1.2 hard-ware", Tags(("facturación", "v1.2", "hard-ware"), ())),
    ],
)
def test_tag_reads_additions_and_removals(line: str, args: Tags) -> None:
    """#tag takes +name / -name tokens (bare is +), lower-cased and without duplicates."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#tag", "missing tag"),
        ("#tag + -", "'+' names no tag"),
        ("#tag +a/b", "not a tag: 'a/b'"),
        ("#tag +vip -VIP", "tag vip is both added and removed"),
    ],
)
def test_tag_refuses_empty_bad_or_contradictory_tags(line: str, reason: str) -> None:
    """An empty #tag, a bad name, or a tag both added and removed is an error."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted.startswith("+tag to add")


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#cc boss@example.com", Cc(("boss@example.com",), ())),
        ("#cc +Boss@Example.COM -old@example.org", Cc(("boss@example.com",), ("old@example.org",))),
        ("#cc +a@example.com, +b@example.com", Cc(("a@example.com", "b@example.com"), ())),
        ("#cc -a@example.com", Cc((), ("a@example.com",))),
        ("#cc first.last+tag@sub.example.co.uk", Cc(("first.last+tag@sub.example.co.uk",), ())),
    ],
)
def test_cc_reads_added_and_removed_addresses(line: str, args: Cc) -> None:
    """#cc takes +addr / -addr tokens (bare is +), lower-cased."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#cc", "missing address"),
        ("#cc +", "'+' names no address"),
        ("#cc +boss", "not an address: 'boss'"),
        ("#cc +a@b@example.com", "not an address: 'a@b@example.com'"),
        ("#cc +@example.com", "not an address: '@example.com'"),
        ("#cc +a@example.com -A@example.com", "address a@example.com is both added and removed"),
    ],
)
def test_cc_refuses_empty_or_bad_addresses(line: str, reason: str) -> None:
    """An empty #cc, a token that is not one address with one "@", or a contradiction is an error."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted.startswith("+address to add")


# --- #internal, #close -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#internal", Internal()),
        ("#nota", Internal()),
        ("#close", Close()),
        ("#cerrar", Close()),
        ("#digest", SendDigest()),
        ("#resumen", SendDigest()),
        ("#block", Block()),
        ("#desbloquear", Unblock()),
    ],
)
def test_internal_close_and_digest_take_no_arguments(line: str, args: CommandArgs) -> None:
    """#internal, #close, #digest, #block and #unblock alone are valid commands."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    "line", ["#internal the customer is angry", "#close now", "#cerrar ya", "#digest please", "#block them all"]
)
def test_internal_close_and_digest_refuse_trailing_text(line: str) -> None:
    """Text after #internal, #close or #digest is an error, not silently dropped."""
    error = only_error(line)
    assert error.reason.startswith("takes no arguments")
    assert error.accepted == "the keyword alone, nothing after it"


# --- #postpone ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "delta"),
    [
        ("#postpone 2d", timedelta(days=2)),
        ("#aplazar 4h", timedelta(hours=4)),
        ("#posponer 1d 12h", timedelta(days=1, hours=12)),
        ("#postpone 1w", timedelta(weeks=1)),
        ("#postpone 365d", timedelta(days=365)),
    ],
)
def test_postpone_reads_a_duration(line: str, delta: timedelta) -> None:
    """#postpone takes one duration as parse_duration reads it."""
    assert only_args(line) == Postpone(delta)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#postpone", "missing duration"),
        ("#postpone later", "not a duration: 'later'"),
        ("#postpone -2d", "not a duration: '-2d'"),
        ("#postpone 0d", "the duration must be more than zero"),
        ("#postpone 400d", "the duration must be at most 365d"),
        ("#postpone 99999999999w", "not a duration: '99999999999w'"),
    ],
)
def test_postpone_refuses_missing_zero_or_huge_durations(line: str, reason: str) -> None:
    """A bad #postpone is an error with duration examples."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted.startswith("a duration, e.g.")


# --- #link -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#link 12", Link(12)),
        ("#link #12", Link(12)),
        ("#link ACME#12", Link(12, "ACME")),
        ("#link [ACME#12]", Link(12, "ACME")),
        ("#link [acme#12]", Link(12, "acme")),
        ("#link [ OTHER-2 # 7 ]", Link(7, "OTHER-2")),
        ("#enlazar 3", Link(3)),
        ("#vincular [ACME#3]", Link(3, "ACME")),
    ],
)
def test_link_reads_id_hash_id_or_token(line: str, args: Link) -> None:
    """#link takes 12, #12 or a [PREFIX#12] token, keeping the prefix for the step to check it is ours."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#link", "missing ticket id"),
        ("#link twelve", "not a ticket id: 'twelve'"),
        ("#link 12 13", "not a ticket id: '12 13'"),
        ("#link ACME12", "not a ticket id: 'ACME12'"),
        ("#link #0", "ticket ids start at 1"),
    ],
)
def test_link_refuses_anything_but_one_ticket_id(line: str, reason: str) -> None:
    """A bad #link is an error showing the accepted id forms."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted == "a ticket id: 12, #12 or [ACME#12]"


@pytest.mark.parametrize(
    ("line", "args"),
    [("#merge 12", Merge(12)), ("#merge [ACME#12]", Merge(12, "ACME")), ("#fusionar #7", Merge(7))],
)
def test_merge_reads_a_ticket_id_as_link_does(line: str, args: Merge) -> None:
    """#merge takes the ticket to merge into in the forms #link accepts."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"), [("#merge", "missing ticket id"), ("#merge 12 13", "not a ticket id: '12 13'")]
)
def test_merge_refuses_anything_but_one_ticket_id(line: str, reason: str) -> None:
    """A bad #merge is an error saying which ticket ids it accepts."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted == "the number of another ticket, not closed, to merge this one into: 12, #12 or [ACME#12]"


@pytest.mark.parametrize(
    ("line", "language"),
    [("#language es", "es"), ("#language English", "en"), ("#idioma inglés", "en"), ("#idioma Español", "es")],
)
def test_language_reads_a_code_or_a_name(line: str, language: str) -> None:
    assert only_args(line) == SetLanguage(language)


@pytest.mark.parametrize(
    ("line", "reason"), [("#language", "missing language"), ("#language fr", "unknown language 'fr'")]
)
def test_language_refuses_what_maild_does_not_speak(line: str, reason: str) -> None:
    error = only_error(line)
    assert error.reason == reason and error.accepted == "one of es, en"


# --- #forward, #requester ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("#forward Vendor@Example.com", Forward("vendor@example.com")),
        ("#reenviar <vendor@example.com>", Forward("vendor@example.com")),
        ("#requester juan@example.org", Requester("juan@example.org", "")),
        ("#solicitante Juan Pérez <Juan@Example.org>", Requester("juan@example.org", "Juan Pérez")),
        ('#requester "Pérez, Juan" <juan@example.org>', Requester("juan@example.org", "Pérez, Juan")),
    ],
)
def test_forward_and_requester_read_one_address(line: str, args: CommandArgs) -> None:
    """#forward and #requester take one address, bare or as "Name <addr>", lower-cased."""
    assert only_args(line) == args


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#forward", "missing address"),
        ("#forward vendor", "not an address: 'vendor'"),
        ("#forward a@example.com b@example.com", "expected one address, got 'a@example.com b@example.com'"),
        ("#requester", "missing address"),
        ("#requester Juan <juan>", "not an address: 'juan'"),
    ],
)
def test_forward_and_requester_refuse_missing_or_bad_address(line: str, reason: str) -> None:
    """#forward and #requester without exactly one valid address are errors."""
    error = only_error(line)
    assert error.reason == reason
    assert error.accepted == "one address, e.g. ana@example.com"


# --- #thanks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["#thanks", "#gracias", "#Thanks!", "#GRACIAS.", "  #thanks everyone"])
def test_thanks_ends_commands_and_keeps_later_lines_as_text(stop: str) -> None:
    """After #thanks / #gracias no line is a command; the stop line itself is removed."""
    parsed = parse_commands(f"#status open\n{stop}\n#close\n#time 1h\nRegards")
    assert [c.keyword for c in parsed.commands] == ["status"]
    assert parsed.errors == ()
    assert parsed.text == "#close\n#time 1h\nRegards"


def test_thanks_also_stops_bad_commands_below_it() -> None:
    """A would-be error line below #thanks is plain text, not an error."""
    parsed = parse_commands("Fixed.\n#gracias\n#status whatever")
    assert parsed.commands == ()
    assert parsed.errors == ()
    assert parsed.text == "Fixed.\n#status whatever"


# --- whole mails -------------------------------------------------------------------------------------------


def test_several_commands_in_one_mail_in_order_with_line_numbers() -> None:
    """Every command of a mail is returned in order with its 1-based line number and stripped line."""
    text = "Hi Juan,\n\nthe printer works again.\n\n  #time 45m\n#status waiting_customer\n#tag +printer\n"
    parsed = parse_commands(text)
    assert [(c.keyword, c.lineno, c.line) for c in parsed.commands] == [
        ("time", 5, "#time 45m"),
        ("status", 6, "#status waiting_customer"),
        ("tag", 7, "#tag +printer"),
    ]
    assert parsed.ok
    assert parsed.text == "Hi Juan,\n\nthe printer works again."


def test_valid_and_invalid_commands_are_both_removed_from_the_text() -> None:
    """Errors are reported with their line, and the bad command line never reaches the text."""
    text = "#status open\nHello\n#priority sky-high\nBye"
    parsed = parse_commands(text)
    assert [c.keyword for c in parsed.commands] == ["status"]
    assert [(e.lineno, e.line, e.keyword) for e in parsed.errors] == [(3, "#priority sky-high", "priority")]
    assert not parsed.ok
    assert parsed.text == "Hello\nBye"


def test_text_keeps_the_agents_layout_without_double_blank_lines() -> None:
    """Removing a command between paragraphs leaves one blank line; blank lines the agent wrote stay."""
    text = "\n\nHello,\n\n#time 30m\n\nsee issue #12.\n\n\n#1 issue is the toner.\n\n#close\n\n"
    parsed = parse_commands(text)
    assert parsed.text == "Hello,\n\nsee issue #12.\n\n\n#1 issue is the toner."


def test_crlf_line_endings_are_read_as_lines() -> None:
    """CRLF and lone CR endings split lines like LF, and the text comes back with LF."""
    parsed = parse_commands("Hello\r\n#status open\r\nBye\rnow")
    assert [(c.keyword, c.lineno) for c in parsed.commands] == [("status", 2)]
    assert parsed.text == "Hello\nBye\nnow"


def test_mail_of_only_commands_leaves_empty_text() -> None:
    """A mail made only of command lines has no text left."""
    parsed = parse_commands("#internal\n\n#assign me\n")
    assert parsed.text == ""
    assert [c.args for c in parsed.commands] == [Internal(), Assign("me", "me")]


def test_empty_text_has_nothing() -> None:
    """An empty text gives no commands, no errors and an empty text."""
    assert parse_commands("") == parse_commands("\n\n")
    assert parse_commands("").text == ""
    assert parse_commands("").commands == ()


def test_too_many_commands_give_one_error_and_are_all_removed() -> None:
    """Beyond MAX_COMMANDS command lines, one "too many commands" error is given and the rest go unread."""
    lines = [f"#tag t{n}" for n in range(MAX_COMMANDS + 10)]
    parsed = parse_commands("Hello\n" + "\n".join(lines) + "\n#status nonsense\nBye")
    assert len(parsed.commands) == MAX_COMMANDS
    [error] = parsed.errors
    assert error.reason == "too many commands"
    assert error.lineno == MAX_COMMANDS + 2
    assert error.accepted == f"at most {MAX_COMMANDS} in one mail"
    assert parsed.text == "Hello\nBye"


def test_large_text_is_parsed_in_one_pass() -> None:
    """A long mail with many plain lines and long lines is parsed without trouble."""
    text = ("plain line #12 and #hashtag\n" * 20000) + "#time 1h " + "x" * 100000
    parsed = parse_commands(text)
    assert [c.args for c in parsed.commands] == [TimeEntry(60, True, "x" * 100000)]
    assert parsed.text.count("\n") == 19999


@pytest.mark.parametrize("keyword", sorted(PARSERS))
@pytest.mark.parametrize("junk", ["", "+", "-", "#", "<>", "@", "a@", '"', "[ACME#]", "1:99", "\u00a0", "ñ" * 50])
def test_no_argument_makes_the_parser_raise(keyword: str, junk: str) -> None:
    """Whatever follows a keyword, the result is a command or an error, never an exception."""
    parsed = parse_commands(f"#{keyword} {junk}")
    assert len(parsed.commands) + len(parsed.errors) == 1
    for error in parsed.errors:
        assert error.reason
        assert error.accepted
        assert error.keyword == keyword


def test_every_refusal_is_worded_in_every_template_language_with_the_same_fields() -> None:
    """Each shipped refusals.toml has every entry, using the same {fields} as the English one, so an error
    mail in either language can always be rendered; the entries are exactly those maild's code uses."""
    from maild.config import LANGUAGES
    from maild.refusals import SHIPPED, fields

    assert set(SHIPPED) == set(LANGUAGES)
    for language in LANGUAGES:
        assert SHIPPED[language].keys() == SHIPPED["en"].keys(), language
        for key, wording in SHIPPED["en"].items():
            assert fields(SHIPPED[language][key]) == fields(wording), (language, key)
    sources = Path(maild.__file__).parent.rglob("*.py")
    used = {key for path in sources for key in re.findall(r'\bText\(\s*"([^"]+)"', path.read_text())}
    assert used == SHIPPED["en"].keys(), used ^ SHIPPED["en"].keys()  # no typo, no entry left unused


@pytest.mark.parametrize(
    "line,english,spanish",
    [
        ("#priority", "missing priority", "falta la prioridad"),
        (
            "#priority low high",
            "expected one priority, got 'low high'",
            "se esperaba un solo valor para la prioridad: 'low high'",
        ),
        ("#queue", "missing queue name", "falta el nombre de cola"),
        ("#tag +vip -vip", "tag vip is both added and removed", "la etiqueta vip se añade y se quita a la vez"),
        ("#cc +", "'+' names no address", "a '+' le falta la dirección"),
        ("#wait until 2026-02-30", "no such date: '2026-02-30'", "esa fecha no existe: '2026-02-30'"),
        ("#internal now", "takes no arguments, got 'now'", "no admite nada detrás; se recibió 'now'"),
    ],
)
def test_refusals_read_in_english_and_spanish(line: str, english: str, spanish: str) -> None:
    """The reason is English as a string (logs, tests) and Spanish in a Spanish mail."""
    from maild.refusals import localize

    [error] = parse_commands(line).errors
    assert error.reason == english
    assert localize(error.reason, "es") == spanish
    assert localize(error.accepted, "es") != error.accepted  # what is accepted is worded in Spanish too
