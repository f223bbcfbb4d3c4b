"""maild.automail: people's mail stays human, machines' mail is recognised, bounces are read."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maild.automail import Bounce, Verdict, classify, read_bounce
from maild.compose import Composer, Draft
from maild.mime import ParsedMail, UnparseableMail, parse_mail

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
SISIMAI = CORPORA / "sisimai-set-of-emails"
SUPPORT = "support@example.com"
LOOP_MARKER = SUPPORT
# A person's envelope: the corpus tests measure what the message itself reveals, not the SMTP session.
ENVELOPE_FROM = "sender@example.org"

# sisimai files that are not machine mail for maild, whatever sisimai's label says.
KNOWN_MISSES = {
    # A person forwarded a bounce inline ("Fwd: Returned mail: ..." from their own address, Apple Mail,
    # text/plain): it is a customer writing to support, and maild must treat it as such.
    "bsd/lhost-sendmail-14.eml": "a person forwarded this bounce; it is human mail",
}
# sisimai's not/ means "sisimai extracts no bounce record", not "a person wrote it".
NOT_HUMAN_IN_NOT = {
    # Return-Path: <>, From: postmaster@, Auto-Submitted: auto-replied: a mail system's notice in prose that
    # sisimai cannot parse. Answering it would mail a postmaster robot, so maild must class it automatic.
    "not/rb-issue-368-bug.eml": "Auto-Submitted: auto-replied",
}


@dataclass(frozen=True)
class Sample:
    """One corpus file as a test case: where it is, what it is, and the line endings to give it."""

    path: Path
    name: str
    category: str
    automatic: bool  # whether maild must class it as machine mail
    variant: str = "bsd (LF)"
    newline: bytes | None = None  # rewrite line endings to this (a derived CRLF/CR copy), or keep them

    def raw(self) -> bytes:
        """The file's bytes, with the variant's line endings."""
        data = self.path.read_bytes()
        if self.newline is None:
            return data
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", self.newline)


@functools.cache
def labels() -> dict[str, str]:
    """LABELS.tsv: file (relative to the corpus) to sisimai's category."""
    rows = (SISIMAI / "LABELS.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {name: category for name, category, *_ in (row.split("\t") for row in rows if row.strip())}


def sisimai_samples(variant: str) -> list[Sample]:
    """The labelled machine mail of sisimai in one line-ending variant: "bsd", "crlf" or "cr".

    sisimai ships dos/ (CRLF) and mac/ (CR) copies of 80 messages; when this checkout's corpus lacks them,
    every bsd/ file is rewritten to those line endings instead, which tests more.
    """
    if not SISIMAI.is_dir():
        return []
    machine = {name: category for name, category in labels().items() if name.startswith("bsd/")}
    if variant == "bsd":
        return [Sample(SISIMAI / name, name, category, name not in KNOWN_MISSES) for name, category in machine.items()]
    folder, newline, title = {"crlf": ("dos", b"\r\n", "CRLF"), "cr": ("mac", b"\r", "CR")}[variant]
    if (SISIMAI / folder).is_dir():
        twins = [(path, f"bsd/{path.name}") for path in sorted((SISIMAI / folder).iterdir()) if path.is_file()]
        return [
            Sample(
                path,
                f"{folder}/{path.name}",
                machine.get(twin, "bounce/dsn"),
                twin not in KNOWN_MISSES,
                f"{folder}/ ({title})",
            )
            for path, twin in twins
        ]
    return [
        Sample(SISIMAI / name, name, category, name not in KNOWN_MISSES, f"bsd/ as {title}", newline)
        for name, category in machine.items()
    ]


def human_samples() -> list[Sample]:
    """Mail people wrote: sisimai's not/, talon's client replies and mikel-mail's plain mail."""
    samples = [
        Sample(SISIMAI / name, name, "sisimai not/", name in NOT_HUMAN_IN_NOT)
        for name, category in (labels().items() if SISIMAI.is_dir() else ())
        if category == "not-a-bounce"
    ]
    for folder, pattern in (("talon/standard_replies", "*.eml"), ("mikel-mail/plain_emails", "*.eml")):
        samples += [Sample(p, p.name, folder, False) for p in sorted((CORPORA / folder).glob(pattern))]
    return samples


def blank_mail() -> ParsedMail:
    """What the checks get when mail-parser cannot read a message: everything empty."""
    return ParsedMail("<x@y>", "", "", "", (), (), (), (), None, {}, "", "", ())


def parsed_or_blank(raw: bytes) -> tuple[ParsedMail, bool]:
    """maild.mime's parse, or a blank ParsedMail when it raises; and whether it parsed."""
    try:
        return parse_mail(raw, "<x@y>"), True
    except UnparseableMail:
        return blank_mail(), False


def judge(raw: bytes, envelope_from: str = ENVELOPE_FROM) -> Verdict:
    """classify() as the pipeline will call it."""
    return classify(raw, parsed_or_blank(raw)[0], envelope_from, LOOP_MARKER)


def message(headers: str, body: str = "Hello,\n\nmy printer is broken.\n\nAna\n") -> bytes:
    """A literal mail from a person to support, plus ``headers`` (one per line)."""
    base = (
        "From: Ana Pérez <ana@customer.example>\n"
        f"To: {SUPPORT}\n"
        "Subject: Printer broken\n"
        "Date: Mon, 02 Feb 2026 10:00:00 +0000\n"
        "Message-ID: <c1@customer.example>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
    )
    extra = "".join(f"{line.strip()}\n" for line in headers.strip().splitlines() if line.strip())
    names = {line.split(":", 1)[0].lower() for line in extra.splitlines()}
    base = "".join(line + "\n" for line in base.splitlines() if line.split(":", 1)[0].lower() not in names)
    return (base + extra + "\n" + body).encode()


def our_notification() -> tuple[str, bytes]:
    """A notification maild sent (its Message-ID and bytes), built by the real composer."""
    composer = Composer(SUPPORT, "ACME Support", lambda: datetime(2026, 2, 2, 10, 0, tzinfo=UTC))
    composed = composer.compose(Draft("customer.ack", ["ana@customer.example"], "[ACME-7] Received", "Thanks"), 7)
    return composed.message_id, composed.raw


def dsn(original: bytes, *, action: str = "failed", status: str = "5.1.1", returned: str = "message/rfc822") -> bytes:
    """An RFC 3464 delivery report about ``original``, as Postfix writes one."""
    returned_part = original if returned == "message/rfc822" else original.split(b"\r\n\r\n", 1)[0]
    return (
        b"Return-Path: <>\r\n"
        b"From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\n"
        b"To: support@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"Message-ID: <bounce1@mx.customer.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        b"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        b"Final-Recipient: rfc822; Ana@Customer.Example\r\n"
        b"Original-Recipient: rfc822;Ana@Customer.Example\r\n"
        b"Action: " + action.encode() + b"\r\n"
        b"Status: " + status.encode() + b"\r\n"
        b"Diagnostic-Code: smtp; 550 " + status.encode() + b" User unknown\r\n"
        b"\r\n--B\r\nContent-Type: " + returned.encode() + b"\r\n\r\n" + returned_part + b"\r\n--B--\r\n"
    )


# --- literal messages: one signal each ---------------------------------------------------------------


def test_plain_mail_from_a_person_is_human() -> None:
    """A person's mail with no automatic-mail signal is human."""
    verdict = judge(message(""))
    assert verdict == Verdict("human", "no sign of automatic mail")
    assert not verdict.automatic


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("auto-replied", "auto_reply"),
        ("Auto-Replied", "auto_reply"),
        ("  auto-replied (vacation)  ", "auto_reply"),
        ("auto-generated", "bulk"),
        ("auto-generated; owner-email=ops@example.net", "bulk"),
        ("auto-notified", "bulk"),
        ("yes", "bulk"),
    ],
)
def test_auto_submitted_other_than_no_is_automatic(value: str, kind: str) -> None:
    """Any Auto-Submitted value but "no", whatever its case, padding or parameters, is machine mail."""
    verdict = judge(message(f"Auto-Submitted: {value}"))
    assert verdict.kind == kind
    assert verdict.reason.startswith("Auto-Submitted: ")


@pytest.mark.parametrize("value", ["no", "No", "  no  ", "no (a person wrote this)", "NO; x=y"])
def test_auto_submitted_no_is_human(value: str) -> None:
    """Auto-Submitted: no says a person sent it (RFC 3834)."""
    assert judge(message(f"Auto-Submitted: {value}")).kind == "human"


@pytest.mark.parametrize("value", ["bulk", "junk", "list", " Bulk "])
def test_bulk_precedence_is_bulk(value: str) -> None:
    """Precedence bulk, junk or list marks mass mail."""
    assert judge(message(f"Precedence: {value}")).kind == "bulk"


def test_other_precedence_is_human() -> None:
    """A Precedence outside bulk, junk and list (some clients write first-class) does not count."""
    assert judge(message("Precedence: first-class")).kind == "human"


@pytest.mark.parametrize(
    "header", ["List-Id: <news.example.org>", "List-Unsubscribe: <mailto:leave@example.org>", "Mailing-List: x"]
)
def test_list_headers_are_bulk(header: str) -> None:
    """Mail carrying a mailing list's headers is bulk, never answered."""
    verdict = judge(message(header))
    assert verdict == Verdict("bulk", header.split(":")[0])


@pytest.mark.parametrize(
    "header",
    [
        "X-Mailman-Version: 2.1.39",
        "X-Campaign: spring-sale",
    ],
)
def test_list_servers_and_bulk_senders_headers_are_bulk(header: str) -> None:
    """A list server's or a campaign's header: bulk (agents see it, nothing answers it)."""
    assert judge(message(header)) == Verdict("bulk", header.split(":")[0])


@pytest.mark.parametrize(
    "header", ["X-Loop: helpdesk@vendor.example", "X-MS-Exchange-Inbox-Rules-Loop: jane@x.example"]
)
def test_another_systems_loop_guard_is_bulk(header: str) -> None:
    """A loop-guard header another ticket system or a forwarding rule wrote: bulk."""
    assert judge(message(header)) == Verdict("bulk", header)


def test_a_loop_guard_naming_our_address_is_our_set_up() -> None:
    """An Exchange rule or a procmail recipe that feeds maild marks every mail with our own address: no sign."""
    for header in (f"X-MS-Exchange-Inbox-Rules-Loop: {SUPPORT}", f"X-Loop: {SUPPORT.upper()}"):
        assert judge(message(header)).kind == "human"


def test_an_exchange_out_of_office_stays_an_auto_reply() -> None:
    """Exchange's automatic replies carry X-MS-Exchange-Inbox-Rules-Loop as well: an auto-reply, as before."""
    raw = message("X-MS-Exchange-Inbox-Rules-Loop: jane@x.example\nSubject: Automatic reply: Printer broken")
    assert judge(raw, "").kind == "auto_reply"


@pytest.mark.parametrize(
    ("header", "envelope_from"),
    [
        ("From: ppp-request@zzz.example", "ppp-bounces@zzz.example"),  # a Mailman digest
        ("Sender: RRGA-L list <owner-rrga-l@lists.example>", "jane@example.org"),  # a LISTSERV post
        ("", "news-bounces@lists.example"),  # Mailman's envelope
        ("", "bounces+8321-ab12-jane=example.org@em.sendgrid.example"),  # an ESP's VERP
        ("", "ezmlm-list-return-12-jane=example.org@lists.example"),
    ],
)
def test_list_server_and_bulk_sender_addresses_are_bulk(header: str, envelope_from: str) -> None:
    """The envelope, Sender or From address of a list server or a bulk sender makes bulk mail."""
    verdict = judge(message(header), envelope_from)
    assert verdict.kind == "bulk" and verdict.reason.startswith("sent by ")


@pytest.mark.parametrize(
    "address",
    [
        "jane.request@example.org",
        "bounce@example.org",
        "owner@example.org",
        "product-owner@customer.example",
        "change-request@customer.example",
        "access-request@customer.example",
    ],
)
def test_people_whose_address_resembles_a_list_servers_are_human(address: str) -> None:
    """Only the list servers' own shapes count, and never in From: role mailboxes are people."""
    assert judge(message(f"From: {address}"), address).kind == "human"


def test_x_failed_recipients_is_a_bounce() -> None:
    """Exim's bounces carry X-Failed-Recipients, and nothing else does."""
    assert judge(message("X-Failed-Recipients: gone@example.org")) == Verdict("bounce", "X-Failed-Recipients")


def test_an_outlook_rules_reply_is_an_auto_reply() -> None:
    """A reply an Outlook rule sent ("reply using a template") is marked by Exchange."""
    assert judge(message("X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent")).kind == "auto_reply"


@pytest.mark.parametrize(
    "header",
    ["X-Autoreply: yes", "X-Autorespond: Out of office", "X-Apple-Action: VACATION", "Precedence: auto_reply"],
)
def test_responder_headers_are_auto_replies(header: str) -> None:
    """A responder's own marker header makes an auto-reply."""
    assert judge(message(header)).kind == "auto_reply"


def test_x_autoreply_no_is_human() -> None:
    """X-Autoreply: no is no marker."""
    assert judge(message("X-Autoreply: no")).kind == "human"


@pytest.mark.parametrize("value", ["All", "OOF, AutoReply", "DR, RN, NRN, OOF, AutoReply"])
def test_x_auto_response_suppress_alone_is_human(value: str) -> None:
    """X-Auto-Response-Suppress asks us not to auto-reply; Exchange sets it on people's list mail, so it is no sign."""
    assert judge(message(f"X-Auto-Response-Suppress: {value}")).kind == "human"


def test_our_loop_header_is_a_loop() -> None:
    """Our own X-Maild-Loop marker coming back is a loop, whatever the case."""
    assert judge(message("X-Maild-Loop: Support@Example.com")) == Verdict("loop", f"X-Maild-Loop: {SUPPORT}")


def test_our_own_notification_coming_back_is_a_loop() -> None:
    """A mail our composer built, delivered back to us, is a loop before it is an Auto-Submitted mail."""
    _, raw = our_notification()
    assert judge(raw).kind == "loop"


def test_another_loop_marker_is_not_ours() -> None:
    """Another installation's loop marker is not our loop."""
    assert judge(message("X-Maild-Loop: help@other.example")).kind == "human"


@pytest.mark.parametrize("envelope_from", ["", "<>", " <> "])
def test_null_envelope_sender_is_automatic(envelope_from: str) -> None:
    """A null SMTP sender is only used by reports and auto-replies."""
    assert judge(message(""), envelope_from) == Verdict("auto_reply", "null envelope sender")


def test_null_sender_with_a_bounce_subject_is_a_bounce() -> None:
    """A null sender with a bounce's subject is a bounce."""
    raw = message("Subject: failure notice\nReturn-Path: <>")
    assert judge(raw) == Verdict("bounce", "Return-Path: <>")


@pytest.mark.parametrize(
    ("header", "envelope_from"),
    [
        ("From: MAILER-DAEMON@mx.example.net", ENVELOPE_FROM),
        ("From: Mail Delivery Subsystem <MAILER-DAEMON>", ENVELOPE_FROM),
        ("From: Mail Delivery System <>", ENVELOPE_FROM),
        ("From: postmaster@example.net", ENVELOPE_FROM),
        ("", "MAILER-DAEMON@mx.example.net"),
        ("Return-Path: <MAILER-DAEMON@mx.example.net>", ENVELOPE_FROM),
    ],
)
def test_mail_system_senders_are_bounces(header: str, envelope_from: str) -> None:
    """MAILER-DAEMON and postmaster send bounces and notices, not questions."""
    verdict = judge(message(header), envelope_from)
    assert verdict.kind == "bounce"
    assert verdict.reason.startswith("sent by ")


def test_contact_form_from_a_noreply_address_is_human() -> None:
    """A web form relaying a customer's words from noreply@, Reply-To the customer, is a person's mail."""
    raw = message("From: Shop website <noreply@shop.example>\nReply-To: Ana <ana@customer.example>")
    assert judge(raw).kind == "human"


def test_delivery_status_notification_is_a_bounce() -> None:
    """A multipart/report delivery-status message is a bounce."""
    _, original = our_notification()
    verdict = judge(dsn(original))
    assert verdict == Verdict("bounce", "multipart/report; report-type=delivery-status")


def test_delivery_status_part_without_report_type_is_a_bounce() -> None:
    """A message/delivery-status part marks a bounce even when report-type is missing."""
    _, original = our_notification()
    raw = dsn(original).replace(b"report-type=delivery-status; ", b"")
    raw = raw.replace(b"Return-Path: <>\r\n", b"").replace(b"MAILER-DAEMON", b"relay")
    assert judge(raw) == Verdict("bounce", "message/delivery-status part")


def test_abuse_report_is_a_feedback_report() -> None:
    """An RFC 5965 abuse report is a feedback report, not a person complaining."""
    raw = message(
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"',
        "--F\nContent-Type: text/plain\n\nThis is an abuse report.\n"
        "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
        "--F\nContent-Type: text/rfc822-headers\n\nMessage-ID: <n1@example.com>\n--F--\n",
    )
    assert judge(raw).kind == "feedback_report"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Printer broken",
        "Out of office",
        "Automatic reply: Printer broken",
        "Auto Reply: Nyaan",
        "Respuesta automática: Impresora rota",
        "Abwesenheitsnotiz: Drucker",
        "Réponse automatique : Imprimante",
        "AUTO: Jane Doe is out of the office (returning 02/03/2026)",
        "Автоматический ответ: Принтер",
        "Automatická odpověď: Tiskárna",
        "Odpowiedź automatyczna: Drukarka",
        "Otomatik yanıt: Yazıcı",
        "Automaattinen vastaus: Tulostin",
        "Automatikus válasz: Nyomtató",
        "Respuesta automática de fuera de la oficina: Impresora rota",
        "Fuera de la oficina: Impresora rota",
        "Fuera de oficina",
    ],
)
def test_auto_reply_subjects_are_auto_replies(subject: str) -> None:
    """Responders that mark nothing are recognised by their subject, as a last resort."""
    verdict = judge(message(f"Subject: {subject}\nIn-Reply-To: <n1@example.com>"))
    assert verdict.kind == "auto_reply"
    assert verdict.reason.startswith("Subject: ")


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Printer broken",
        "Auto: Unfall am Montag",
        "Fwd: Undeliverable: Invoice 42",
        "Out of office hours support?",
        "My manager is out of office, who else can approve the refund?",
        "Re: [ACME#1] Jane is out of the office, call me instead",
        "Undeliverable mail to your billing address",
        "Fuera de la oficina no funciona la VPN",
        "Respuesta automática no funciona en mi cuenta",
    ],
)
def test_people_writing_about_auto_replies_stay_human(subject: str) -> None:
    """A person answering or forwarding automatic mail, or writing "Auto" (a car), stays human."""
    assert judge(message(f"Subject: {subject}")).kind == "human"


def test_person_forwarding_a_bounce_as_attachment_is_human() -> None:
    """A delivery report attached to a person's mail is not read as the mail itself."""
    _, original = our_notification()
    raw = message(
        'Content-Type: multipart/mixed; boundary="M"',
        "--M\nContent-Type: text/plain\n\nYour mail to me bounced, see attached.\n"
        "--M\nContent-Type: message/rfc822\n\n" + dsn(original).decode() + "\n--M--\n",
    )
    assert judge(raw).kind == "human"


def test_bounce_of_our_notification_is_a_bounce_not_a_loop() -> None:
    """Our loop header inside a returned message does not make the report a loop."""
    _, original = our_notification()
    assert judge(dsn(original)).kind == "bounce"


def test_classify_never_raises() -> None:
    """Garbage, empty and binary input yield a verdict, not an exception."""
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/report; boundary=\n\n--", b"From: <\n\n"):
        assert judge(raw).kind in ("human", "auto_reply", "bulk", "bounce", "feedback_report", "loop")


# --- read_bounce -------------------------------------------------------------------------------------


def test_dsn_of_our_notification_is_read() -> None:
    """A DSN of one of our notifications gives the recipient, status and our Message-ID."""
    message_id, original = our_notification()
    assert read_bounce(dsn(original)) == Bounce(("ana@customer.example",), "5.1.1", True, message_id)


def test_dsn_returning_only_headers_is_read() -> None:
    """A DSN returning text/rfc822-headers still gives our Message-ID."""
    message_id, original = our_notification()
    bounce = read_bounce(dsn(original, returned="text/rfc822-headers"))
    assert bounce is not None
    assert bounce.original_message_id == message_id


def test_delayed_dsn_is_temporary() -> None:
    """A delayed DSN (4.x.x) is a temporary failure."""
    _, original = our_notification()
    bounce = read_bounce(dsn(original, action="delayed", status="4.4.7"))
    assert bounce is not None
    assert (bounce.status, bounce.permanent) == ("4.4.7", False)


def test_plain_text_bounce_is_read_by_flufl_bounce() -> None:
    """A qmail-style bounce without a DSN part still gives its recipient and quoted Message-ID."""
    raw = (
        b"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net\nTo: support@example.com\n"
        b"Subject: failure notice\n\n"
        b"Hi. This is the qmail-send program at mx.example.net.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<Gone@Example.net>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 No such user\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"Message-ID: <t7.1@example.com>\nSubject: [ACME-7] Received\n\nThanks\n"
    )
    assert read_bounce(raw) == Bounce(("gone@example.net",), "5.1.1", True, "<t7.1@example.com>")


@pytest.mark.parametrize(
    "raw",
    [message(""), message("Auto-Submitted: auto-replied\nSubject: Out of office"), b"", b"\x00\xff garbage"],
)
def test_read_bounce_is_none_for_other_mail(raw: bytes) -> None:
    """A person's mail, an auto-reply or garbage is not a delivery report."""
    assert read_bounce(raw) is None


# --- corpora -----------------------------------------------------------------------------------------


def require(folder: Path) -> None:
    """Skip when a shared corpus is missing, saying where it was looked for."""
    if not folder.is_dir():
        pytest.skip(f"corpus not found at {folder}: CI provides ../shared/corpora beside the checkout")


def machine_params(variant: str) -> list[object]:
    """sisimai machine-mail samples as pytest params, the known misses as strict xfails."""
    return [
        pytest.param(
            sample,
            id=f"{variant}:{sample.name}",
            marks=[pytest.mark.xfail(reason=KNOWN_MISSES[sample.name], strict=True)]
            if sample.name in KNOWN_MISSES
            else [],
        )
        for sample in sisimai_samples(variant)
    ] or [pytest.param(None, id=f"{variant}:corpus-missing")]


@pytest.mark.parametrize("sample", [*machine_params("bsd"), *machine_params("crlf"), *machine_params("cr")])
def test_sisimai_machine_mail_is_automatic(sample: Sample | None) -> None:
    """Every sisimai bounce, abuse report and auto-reply, in every line ending, is classed automatic."""
    require(SISIMAI)
    assert sample is not None
    verdict = judge(sample.raw())
    assert verdict.automatic, verdict


def test_sisimai_recall_is_complete() -> None:
    """Recall on sisimai's 629 labelled files is 628: all but the one bounce a person forwarded."""
    require(SISIMAI)
    samples = sisimai_samples("bsd")
    caught = [s.name for s in samples if judge(s.raw()).automatic]
    assert len(samples) == 629
    assert sorted(set(s.name for s in samples) - set(caught)) == sorted(KNOWN_MISSES)


def test_sisimai_abuse_reports_are_feedback_reports() -> None:
    """sisimai's ARF and Microsoft JMRP reports are feedback reports; Apple's plain "unsubscribe" is an auto-reply."""
    require(SISIMAI)
    kinds = {s.name: judge(s.raw()).kind for s in sisimai_samples("bsd") if s.category.startswith("feedback")}
    assert len(kinds) == 17
    # arf-26 is a text/plain "unsubscribe" from iCloud with Auto-Submitted: auto-replied and no report part.
    assert kinds.pop("bsd/arf-26.eml") == "auto_reply"
    assert set(kinds.values()) == {"feedback_report"}, kinds


def test_sisimai_bounces_are_read() -> None:
    """read_bounce reads 603 of sisimai's 605 bounces; the measured yields are floors, not goals."""
    require(SISIMAI)
    bounces = [s for s in sisimai_samples("bsd") if s.category.startswith("bounce") and s.automatic]
    read = {s.name: b for s in bounces if (b := read_bounce(s.raw())) is not None}
    assert len(bounces) == 605
    # fml's list notices ("you are not a member", "loop alert") are list mail naming no failed delivery.
    assert {s.name for s in bounces} - set(read) == {"bsd/lhost-fml-02.eml", "bsd/lhost-fml-03.eml"}
    assert sum(bool(b.recipients) for b in read.values()) >= 514
    assert sum(bool(b.status) for b in read.values()) >= 448
    assert sum(b.original_message_id is not None for b in read.values()) >= 530
    assert all(r == r.lower() and "@" in r for b in read.values() for r in b.recipients)


def test_only_bounces_are_read_as_reports() -> None:
    """No abuse report, auto-reply or person's mail in the corpora reads as a bounce."""
    # talon's Comcast reply quotes a "To:" list that flufl.bounce's heuristics alone take for failed recipients.
    require(SISIMAI)
    others = [s for s in [*sisimai_samples("bsd"), *human_samples()] if not s.category.startswith("bounce")]
    reports = {s.name for s in others if read_bounce(s.raw()) is not None}
    assert reports == set(NOT_HUMAN_IN_NOT)


@pytest.mark.parametrize("name", ["is-not-bounce-01.eml", "is-not-bounce-02.eml"])
def test_sisimai_not_bounces_are_human(name: str) -> None:
    """sisimai's look-alikes written by people (one attaches a whole message) stay human."""
    require(SISIMAI)
    path = SISIMAI / "not" / name
    for newline in (None, b"\r\n", b"\r"):
        assert judge(Sample(path, name, "not-a-bounce", False, newline=newline).raw()).kind == "human"


def test_sisimai_unparseable_bounce_notice_is_automatic() -> None:
    """not/rb-issue-368 is a postmaster's prose notice with Auto-Submitted, so maild never answers it."""
    require(SISIMAI)
    verdict = judge((SISIMAI / "not" / "rb-issue-368-bug.eml").read_bytes())
    assert verdict.automatic, verdict


@pytest.mark.parametrize("folder", ["talon/standard_replies", "mikel-mail/plain_emails"])
def test_people_replying_from_mail_clients_are_human(folder: str) -> None:
    """Replies from 11 mail clients and mikel-mail's plain (often malformed) mail are all human."""
    require(CORPORA / folder)
    files = sorted((CORPORA / folder).glob("*.eml"))
    assert files
    flagged = {path.name: judge(path.read_bytes()) for path in files}
    assert {name: v for name, v in flagged.items() if v.automatic} == {}


def test_mikel_mail_reports_are_read() -> None:
    """mikel-mail's multi-recipient, multi-status and delayed reports give the right recipients and status."""
    folder = CORPORA / "mikel-mail" / "multipart_report_emails"
    require(folder)

    def read(name: str) -> Bounce:
        bounce = read_bounce((folder / name).read_bytes())
        assert bounce is not None, name
        return bounce

    multi = read("multi_address_bounce1.eml")
    assert len(multi.recipients) == 5
    assert (multi.status, multi.permanent) == ("5.1.1", True)
    assert multi.original_message_id == "<118707422.15521266992174819.JavaMail.root@lvmail01>"
    delayed = read("report_422.eml")
    assert (delayed.recipients, delayed.status, delayed.permanent) == (("fraser@oooooooo.com.au",), "4.2.2", False)
    assert read("report_530.eml").recipients == ("edwin@zzzzzzz.com",)


def test_cpython_email_test_bounces_are_read() -> None:
    """CPython's four test bounces are bounces, including one whose multipart boundary was cut off."""
    spec = importlib.util.find_spec("test.test_email")
    if spec is None or spec.origin is None:
        pytest.skip("CPython's test.test_email package is not installed with this Python")
    data = Path(spec.origin).parent / "data"
    for name in ("msg_05.txt", "msg_16.txt", "msg_25.txt", "msg_43.txt"):
        assert judge((data / name).read_bytes()).kind == "bounce", name
    broken = read_bounce((data / "msg_25.txt").read_bytes())
    assert broken is not None
    assert (broken.recipients, broken.status, broken.permanent) == (("scoffman@wellpartner.com",), "5.4.6", True)
    many = read_bounce((data / "msg_43.txt").read_bytes())
    assert many is not None
    assert (len(many.recipients), many.status, many.original_message_id) == (
        11,
        "5.7.1",
        "<edab.7804f5cb8070@python.org>",
    )


def test_fuzzer_seeds_never_raise() -> None:
    """Hostile fuzzer inputs give a verdict and a report or None, never an exception."""
    folder = CORPORA / "python-library-fuzzers-corp-email"
    require(folder)
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "ORIGIN.txt"]
    assert files
    for path in files:
        raw = path.read_bytes()
        judge(raw)
        read_bounce(raw)


@pytest.mark.parametrize(
    ("address", "no_reply"),
    [
        ("noreply@shop.example", True),
        ("no-reply+orders@shop.example", True),
        ("No.Reply@shop.example", True),
        ("do-not-reply@bank.example", True),
        ("donotreply@bank.example", True),
        ("abuse@isp.example", True),
        ("root@host.example", True),
        ("noreplyjane@example.org", False),
        ("rooted@example.org", False),
        ("jane@noreply.example", False),
    ],
)
def test_no_reply_addresses(address: str, no_reply: bool) -> None:
    """Local parts that say nobody reads the answer (Zammad's list), whole or with a tag; not as a prefix of
    another word, nor in the domain."""
    from maild.automail import is_no_reply

    assert is_no_reply(address) is no_reply
