"""`maild erase`: remove tickets, or a customer and their tickets, for a data-protection request (the right
to erasure of GDPR art. 17), as RT's shredder and Zammad's data privacy tasks do.

One transaction removes everything the store holds of them, or nothing; a dry run is the same transaction
rolled back, so it reports exactly what `--yes` would remove. Attachment files that no message names any
more are deleted inside it, while the store's write lock keeps the daemon from recording a mail that names
one (a mail arriving later writes its file again). Once committed, the copies IMAP intake moved to its
processed mailbox go too, found by Message-ID. Copies elsewhere (backups, logs, the MTA's queues, agents'
mailboxes) are not maild's to reach; the report says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aioimaplib
import structlog

from maild.blobs import BlobStore
from maild.clock import to_iso
from maild.config import Config, ImapIntake
from maild.handlers.thread import MAX_MERGE_STEPS
from maild.intake.imap import ImapError, delete_processed
from maild.store import Store, Tx
from maild.store.erase import Erased
from maild.worker import Worker

log = structlog.get_logger("maild.erase")

OUTSIDE = (
    "copies outside maild's store are not erased: backups, logs, the MTA's queues, agents' mailboxes,"
    " a file transport's folder"
)


@dataclass(frozen=True)
class Holdings:
    """What an erasure reaches: the store, the attachment files and, with IMAP intake on, the processed
    mailbox where the intake moved each mail it took."""

    store: Store
    blobs: BlobStore
    imap: ImapIntake | None = None

    @classmethod
    def of(cls, store: Store, config: Config) -> Holdings:
        return cls(store, BlobStore(config.blob_dir), config.imap if config.imap.enabled else None)


class EraseRefused(Exception):
    """The request cannot be carried out as asked; the message says why, in one line."""


@dataclass
class Report:
    applied: bool
    erased: Erased
    notes: list[str] = field(default_factory=list)  # what else to know: what stays, and why; what goes too
    wal_emptied: bool | None = None  # after applying: False when a reader kept old pages in the WAL a while
    imap_deleted: int | None = None  # copies deleted from the IMAP processed mailbox, once applied

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            **asdict(self.erased),
            "files": len(self.erased.unreferenced_files),
            "notes": self.notes,
            "wal_emptied": self.wal_emptied,
            "imap_deleted": self.imap_deleted,
        }

    def as_text(self) -> str:
        erased, verb = self.erased, "erased" if self.applied else "would erase"
        lines = [
            f"{verb} tickets: {_listed(erased.tickets)}; {erased.messages} messages,"
            f" {erased.attachments} attachments ({len(erased.unreferenced_files)} file(s) no other ticket shares),"
            f" {erased.received} received and {erased.sent} sent mails, {erased.history} history entries,"
            f" {erased.time_minutes} minutes of recorded time"
        ]
        if erased.followed or erased.history_mentions:
            lines.append(
                f"{verb} the address among the followers of {erased.followed} other tickets and from"
                f" {erased.history_mentions} entries of their history"
            )
        if erased.imap_message_ids and not self.applied:
            lines.append(f"would delete their copies ({len(erased.imap_message_ids)}) from the IMAP processed mailbox")
        if self.imap_deleted is not None:
            lines.append(f"deleted {self.imap_deleted} copies of them from the IMAP processed mailbox")
        lines += [f"note: {note}" for note in self.notes]
        if not self.applied:
            lines.append("nothing changed: run again with --yes to erase")
            return "\n".join(lines)
        if self.wal_emptied is False:
            lines.append(
                "note: a reader held the database's WAL; the daemon's next checkpoint overwrites the old pages"
            )
        lines.append(f"note: {OUTSIDE}")
        return "\n".join(lines)


async def _final_target(tx: Tx, ticket_id: int) -> int:
    """Where a chain of merges from ``ticket_id`` ends (merges go into unmerged tickets, which may be merged on
    later; bounded as threading bounds it)."""
    for _ in range(MAX_MERGE_STEPS):
        ticket = await tx.get_ticket(ticket_id)
        if ticket is None or ticket.merged_into is None:
            break
        ticket_id = ticket.merged_into
    return ticket_id


def _listed(ticket_ids: list[int], most: int = 20) -> str:
    """The ids, or the first ``most`` of them and how many more (a retention backlog may hold thousands)."""
    shown = ", ".join(map(str, ticket_ids[:most])) or "none"
    return shown if len(ticket_ids) <= most else f"{shown} and {len(ticket_ids) - most} more"


@dataclass
class _Page:
    """Where `erase_closed` is: the last (updated_at, id) taken, how many the last batch took and all did."""

    after: tuple[str, int] = ("", 0)
    taken: int = 0
    total: int = 0


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


async def erase_tickets(where: Holdings, ticket_ids: list[int], *, apply: bool) -> Report:
    """Erase the tickets and those merged into them; a merged ticket alone is refused, its mail lives on."""

    async def erase(tx: Tx, report: Report) -> None:
        for ticket_id in ticket_ids:
            ticket = await tx.get_ticket(ticket_id)
            if ticket is None:
                raise EraseRefused(f"no ticket {ticket_id}")
            if ticket.merged_into is not None:
                raise EraseRefused(
                    f"ticket {ticket_id} was merged into {ticket.merged_into}, which holds its mail:"
                    f" erase {ticket.merged_into} (it takes {ticket_id} with it)"
                )
        await tx.erase_tickets(await tx.merged_into_these(ticket_ids), report.erased)

    return await _run(where, erase, apply=apply)


async def erase_customer(where: Holdings, config: Config, address: str, *, apply: bool) -> Report:
    """Erase the tickets ``address`` opened (with those merged into them) and its traces elsewhere."""
    address = address.strip().lower()
    if "@" not in address:
        raise EraseRefused(f"not an address: {address!r}")
    if config.is_desk(address):
        raise EraseRefused(f"{address} is one of this desk's own addresses (an agent, the support or a queue)")

    async def erase(tx: Tx, report: Report) -> None:
        own = await tx.tickets_of_requester(address)
        closure = await tx.merged_into_these([ticket_id for ticket_id, merged_into in own if merged_into is None])
        for ticket_id, merged_into in own:
            if ticket_id not in closure and merged_into is not None:
                holder = await _final_target(tx, merged_into)
                report.notes.append(
                    f"ticket {ticket_id} was merged into {holder}, another customer's ticket that holds its"
                    f" mail: erase {holder} too if it must go"
                )
        for ticket_id in closure:
            ticket = await tx.get_ticket(ticket_id)
            if ticket is not None and ticket.requester != address:
                report.notes.append(
                    f"ticket {ticket_id}, opened by {ticket.requester}, goes too: it was merged into one of these"
                )
        await tx.erase_tickets(closure, report.erased)
        await tx.erase_customer_traces(address, report.erased)
        elsewhere = await tx.messages_by_author(address)
        if elsewhere:
            report.notes.append(
                f"{elsewhere} message(s) {address} wrote on other customers' tickets (part of their record;"
                " erase those tickets to remove them)"
            )
        if await tx.is_blocked(address):
            report.notes.append(
                f"{address} stays blocked, so that its mail is still refused: `maild blocked remove {address}` lifts it"
            )
        if pending := await tx.pending_from(address):
            report.notes.append(
                f"{pending} mail(s) from {address} still wait in the spool: run this again once processed"
            )

    return await _run(where, erase, apply=apply)


async def erase_closed(
    where: Holdings,
    before: datetime,
    *,
    apply: bool,
    batch: int = 100,
    most: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Report:
    """Erase the tickets closed and unchanged since before ``before`` (`[retention]`, `maild erase closed`),
    with those merged into them: a batch per transaction, so mail arriving meanwhile waits for one batch;
    with ``most``, the batches stop once they took that many, and whenever ``stopping()`` says so."""
    report, page = Report(applied=apply, erased=Erased()), _Page()

    async def erase(tx: Tx, report: Report) -> None:
        picked = await tx.closed_before(to_iso(before), page.after, batch)
        page.after, page.taken, page.total = (
            (picked[-1] if picked else page.after),
            len(picked),
            page.total + len(picked),
        )
        await tx.erase_tickets(await tx.merged_into_these([ticket_id for _, ticket_id in picked]), report.erased)

    while True:
        await _transact(where, erase, report)
        if page.taken < batch or (most is not None and page.total >= most) or stopping():
            break
    if apply and report.erased.tickets:
        await _finish(where, report)
    return report


IMAP_TIMEOUT = 120.0  # seconds for deleting an erasure's copies from IMAP intake's processed mailbox
SWEEP_SHARE = 10_000  # tickets per pass of the daemon's retention sweep


class RetentionWorker(Worker):
    """`[retention] erase_closed_after`: every hour, erase the tickets closed and unchanged for that long."""

    name = "retention"

    def __init__(self, where: Holdings, keep: timedelta | None, wakeup: asyncio.Event) -> None:
        super().__init__(wakeup, poll_seconds=3600.0)
        self.where = where  # replaced on reload, as is keep
        self.keep = keep

    async def work(self) -> float | None:
        if self.keep is None:
            return None
        # A first sweep may find years of tickets: a share at a time keeps the report (the ids erased) small,
        # and the rest follows at once.
        # A shutdown waits for one batch at most.
        now = self.where.store.clock()
        report = await sweep(self.where, self.keep, now, most=SWEEP_SHARE, stopping=lambda: self.stopping)
        return 0.0 if len(report.erased.tickets) >= SWEEP_SHARE else None


async def sweep(
    where: Holdings,
    keep: timedelta,
    now: datetime,
    most: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Report:
    """One pass of the retention rule at ``now`` (the daemon hourly, `maild tick`); logged when it erased."""
    report = await erase_closed(where, now - keep, apply=True, most=most, stopping=stopping)
    if report.erased.tickets:
        log.info("retention_erased", tickets=len(report.erased.tickets), closed_before=to_iso(now - keep))
    return report


async def _run(where: Holdings, erase: Callable[[Tx, Report], Awaitable[None]], *, apply: bool) -> Report:
    report = Report(applied=apply, erased=Erased())
    await _transact(where, erase, report)
    if apply:
        await _finish(where, report)
    return report


async def _finish(where: Holdings, report: Report) -> None:
    """After an erasure committed: the WAL emptied of the old pages, and IMAP intake's copies deleted."""
    report.wal_emptied = await where.store.checkpoint()
    erased, imap = report.erased, where.imap
    ids = erased.imap_message_ids
    if ids and imap is None:
        report.notes.append(
            f"{len(ids)} of the erased mails came by IMAP, which is off now: their copies may remain in the"
            " processed mailbox it used (their Message-IDs are in --json)"
        )
    elif ids and imap is not None:
        try:
            # Bounded: aioimaplib leaves a command waiting for ever on a connection that died under it.
            report.imap_deleted = await asyncio.wait_for(delete_processed(imap, ids), IMAP_TIMEOUT)
        except (OSError, TimeoutError, aioimaplib.AioImapException, ImapError) as exc:
            report.notes.append(
                f"the IMAP server did not let maild delete the {len(ids)} copies in {imap.processed_mailbox}"
                f" ({type(exc).__name__}: {exc}): delete them there (their Message-IDs are in --json)"
            )
        else:
            if report.imap_deleted < len(ids):
                report.notes.append(
                    f"{len(ids) - report.imap_deleted} of the copies were not in {imap.processed_mailbox}"
                    " (moved or deleted there already)"
                )
    if erased.imap_without_message_id:
        report.notes.append(
            f"{erased.imap_without_message_id} of the erased mails came by IMAP without a Message-ID to find"
            " their copies by: look for them in the processed mailbox"
        )


async def _transact(where: Holdings, erase: Callable[[Tx, Report], Awaitable[None]], report: Report) -> None:
    """One erasure transaction: committed when the report applies, else rolled back."""
    files_before = len(report.erased.unreferenced_files)
    try:
        async with where.store.transaction(check_references=False) as tx:
            await tx.overwrite_deleted()
            await erase(tx, report)
            if not report.applied:
                raise _DryRun
            # Inside the transaction: the daemon records a mail (and writes its file) only holding the write
            # lock, so no mail can come to name a file between the check that none does and its removal. If
            # the commit failed after this, the rows would stay without their files: erasing again ends it.
            # Only this transaction's: a file an earlier batch removed may have been written again since.
            for digest in report.erased.unreferenced_files[files_before:]:
                where.blobs.remove(digest)
    except _DryRun:
        pass
