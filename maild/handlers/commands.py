"""commands: apply an agent's #commands all together, or none of them, and tell the agent which.

Commands run in order inside a savepoint, each against the state the previous ones left; if any is refused
the savepoint is rolled back, the mail is kept as an internal note (nothing reaches the customer) and the
agent gets one error mail naming every bad line. Otherwise the agent gets a transcript of what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from maild.commands import (
    Assign,
    Block,
    Cc,
    Close,
    Command,
    CommandError,
    Forward,
    Internal,
    Link,
    Merge,
    Postpone,
    Priority,
    Refused,
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
)
from maild.config import DEFAULT_QUEUE
from maild.durations import format_duration
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop, mail_agent
from maild.handlers.forward import forward_thread
from maild.refusals import Text
from maild.statuses import CLOSED, RESOLVED, TransitionRefused, allowed_from, check_transition
from maild.store import Tx
from maild.tokens import Reference, format_token


class _RollBack(Exception):
    """Leaves the savepoint, undoing every command of the mail."""


class ApplyCommands:
    name = "commands"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.config

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        if ctx.agent is None or not (ctx.commands or ctx.command_errors):
            return CONTINUE
        errors = list(ctx.command_errors)
        ticket_id = ctx.current_ticket.id  # a #merge moves ctx.ticket on; a refusal is about this one
        try:
            async with tx.savepoint("commands"):
                for command in ctx.commands:
                    try:
                        await self.apply(command, ctx, tx)
                    except Refused as refused:
                        errors.append(
                            CommandError(
                                command.line, command.lineno, refused.reason, refused.accepted, command.keyword
                            )
                        )
                errors += self.check_mail(ctx)
                if errors:
                    raise _RollBack
        except _RollBack:
            return await self.refuse(ctx, tx, errors, ticket_id)
        ctx.applied = True  # the transcript step tells the agent, once the mail's own moves are done
        return CONTINUE

    def check_mail(self, ctx: Context) -> list[CommandError]:
        """Rules about the mail as a whole: every resolution has a customer message or an internal note, and a
        merge comes alone (what came before it would change one ticket, what came after the other)."""
        merges = [c for c in ctx.commands if isinstance(c.args, Merge)]
        if merges and any(not isinstance(c.args, Internal) for c in ctx.commands if c is not merges[0]):
            merge = merges[0]
            return [CommandError(merge.line, merge.lineno, Text("merge alone"), Text("accepted merge"), merge.keyword)]
        for command in ctx.commands:
            if isinstance(command.args, Resolve) and command.args.method != "spam" and not ctx.text.strip():
                return [
                    CommandError(
                        command.line,
                        command.lineno,
                        Text("resolution needs a message"),
                        Text("accepted resolution message"),
                        command.keyword,
                    )
                ]
        return []

    async def refuse(self, ctx: Context, tx: Tx, errors: list[CommandError], ticket_id: int) -> Outcome:
        ticket = await tx.get_ticket(ticket_id)
        assert ticket is not None
        ctx.ticket, ctx.changes, ctx.resolution = ticket, [], None
        # The mail stays on the ticket for agents, but a refused mail never reaches the customer.
        if ctx.message is not None and ctx.message.visibility == "public":
            await tx.set_message_visibility(ctx.message.id, "internal")
        await mail_agent(self.services, ctx, tx, "agent.command_errors", errors=errors)
        return Stop(f"commands refused: {len(errors)} error(s)")

    def shown(self, value: Any) -> str | None:
        return _shown(value, ZoneInfo(self.config.timezone))

    async def update(self, ctx: Context, tx: Tx, **changes: Any) -> None:
        assert ctx.agent is not None
        ticket = ctx.current_ticket
        for name, new in changes.items():
            old = getattr(ticket, name)
            if old != new:
                ctx.changes.append((name, self.shown(old), self.shown(new)))
        ctx.ticket = await self.services.lifecycle.update(tx, ticket, ctx.agent.email, "command", **changes)

    async def move(self, ctx: Context, tx: Tx, status: str, **changes: Any) -> None:
        assert ctx.agent is not None
        ticket = ctx.current_ticket
        try:
            check_transition(ticket.status, status)
        except TransitionRefused as exc:
            allowed = ", ".join(allowed_from(ticket.status)) or Text("nowhere")
            raise Refused(exc.reason, Text("accepted one of", values=allowed)) from None
        for name, new in {"status": status, **changes}.items():
            if getattr(ticket, name) != new:
                ctx.changes.append((name, self.shown(getattr(ticket, name)), self.shown(new)))
        ctx.ticket = await self.services.lifecycle.move(tx, ticket, status, ctx.agent.email, "command", **changes)

    async def apply(self, command: Command, ctx: Context, tx: Tx) -> None:
        args, ticket, agent = command.args, ctx.current_ticket, ctx.agent
        assert agent is not None
        match args:
            case SetStatus(status=status):
                if status == CLOSED and agent.role != "admin":
                    raise Refused(Text("only admins close"), Text("accepted resolve, not close"))
                await self.move(ctx, tx, status, wait_until=None)
            case Wait(until=until):
                zone = ZoneInfo(self.config.timezone)
                when = until.replace(tzinfo=zone) if until else None
                if until and when and when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != until:
                    got = f"{until:%Y-%m-%d %H:%M}"
                    raise Refused(Text("skipped time", got=got, zone=zone.key), Text("accepted future date"))
                if when is not None and when <= self.services.clock():
                    raise Refused(Text("in the past", when=f"{until:%Y-%m-%d %H:%M}"), Text("accepted future date"))
                await self.move(ctx, tx, args.status, wait_until=when)
            case TimeEntry(minutes=minutes, billable=billable, note=note):
                await tx.add_time_entry(
                    ticket_id=ticket.id,
                    message_id=ctx.message.id if ctx.message else None,
                    agent=agent.email,
                    minutes=minutes,
                    billable=billable,
                    note=note,
                )
                kind = "billable" if billable else "nonbillable"
                ctx.changes.append(("time", None, f"+{format_duration(timedelta(minutes=minutes))} {kind}"))
            case Resolve(method=method, note=note):
                first = {} if ticket.resolved_at else {"resolved_at": self.services.clock(), "resolved_by": agent.email}
                note_text = note or (ctx.text.strip() if ctx.internal else "") or None
                # Spam closes at once and nothing is sent to the sender.
                await self.move(
                    ctx,
                    tx,
                    CLOSED if method == "spam" else RESOLVED,
                    resolution_method=method,
                    resolution_note=note_text,
                    wait_until=None,
                    **first,
                )
                ctx.resolution = method
            case Assign(kind=kind, target=target):
                await self.update(ctx, tx, assignee=self.assignee(kind, target, agent.email))
            case Priority(value=value):
                await self.update(ctx, tx, priority=value)
            case SetQueue(name=name):
                known = [DEFAULT_QUEUE, *(q.name for q in self.config.queues)]
                if name not in known:
                    raise Refused(Text("no queue", got=repr(name)), Text("accepted queue", queues=", ".join(known)))
                await self.update(ctx, tx, queue=name)
            case SetCategory(name=name):
                await self.update(ctx, tx, category=name)
            case Tags(add=add, remove=remove):
                await tx.change_tags(ticket.id, add, remove, agent.email, "command")
                ctx.changes += [("tags", None, t) for t in add] + [("tags", t, None) for t in remove]
                ticket.tags = sorted({*ticket.tags, *add} - set(remove))
            case Cc(add=add, remove=remove):
                for address in add:
                    self.check_outsider(address)
                added = await tx.add_followers(ticket.id, add, agent.email, "command")
                removed = await tx.remove_followers(ticket.id, remove, agent.email, "command")
                ctx.changes += [("followers", None, a) for a in added] + [("followers", r, None) for r in removed]
                ticket.followers = sorted({*ticket.followers, *added} - set(removed))
            case Postpone(delta=delta):
                before = ticket.due_at
                ctx.ticket = await self.services.lifecycle.postpone(tx, ticket, agent.email, "command", delta)
                ctx.changes.append(("due_at", self.shown(before), self.shown(ctx.ticket.due_at)))
            case Link(ticket_id=other, prefix=prefix):
                self.check_desk(prefix, other, Text("accepted existing ticket"))
                if other == ticket.id or await tx.get_ticket(other) is None:
                    raise Refused(Text("no other ticket", id=other), Text("accepted existing ticket"))
                if await tx.link_tickets(ticket.id, other, agent.email, "command"):
                    ctx.changes.append(("linked", None, str(other)))
                    ticket.linked = sorted({*ticket.linked, other})
            case Forward(address=address):
                self.check_outsider(address)
                await forward_thread(self.services, ctx, tx, address)
                ctx.changes.append(("forwarded", None, address))
            case Requester(address=address):
                self.check_outsider(address)
                await self.update(ctx, tx, requester=address)
            case Close():
                if agent.role != "admin":
                    raise Refused(Text("only admins close"), Text("accepted resolve or close"))
                await self.move(ctx, tx, CLOSED, wait_until=None)
            case Merge(ticket_id=target_id, prefix=prefix):
                self.check_desk(prefix, target_id, Text("accepted merge"))
                await self.merge(ctx, tx, target_id)
            case SetLanguage(language=language):
                await self.update(ctx, tx, language=language)
            case SendDigest():
                await self.services.digests.queue_asked(tx, agent)
                ctx.changes.append(("digest", None, "sent"))
            case Block():
                self.check_outsider(ticket.requester)
                if await tx.block_sender(ticket.requester, agent.email, ticket.id):
                    await tx.add_history(ticket.id, agent.email, "blocked", None, ticket.requester, "command")
                    ctx.changes.append(("blocked", None, ticket.requester))
            case Unblock():
                if not await tx.unblock_sender(ticket.requester):
                    raise Refused(Text("not blocked", address=ticket.requester), Text("accepted unblock"))
                await tx.add_history(ticket.id, agent.email, "blocked", ticket.requester, None, "command")
                ctx.changes.append(("blocked", ticket.requester, None))

    async def merge(self, ctx: Context, tx: Tx, target_id: int) -> None:
        """This ticket's thread, people, tags and links join the target, which the rest of the mail is about
        (its text goes to the target's customers); this one closes, its token leading to the target."""
        source, agent, accepted = ctx.current_ticket, ctx.agent, Text("accepted merge")
        assert agent is not None
        target = await tx.get_ticket(target_id) if target_id != source.id else None
        if target is None:
            raise Refused(Text("no other ticket", id=target_id), accepted)
        if target.merged_into is not None:
            raise Refused(Text("merged already", id=target_id, into=target.merged_into), accepted)
        if target.status == CLOSED:
            raise Refused(Text("closed ticket", id=target_id), accepted)
        cause = f"merged {source.id} into {target.id}"
        await tx.move_thread(source.id, target.id)
        # Whoever took part in this ticket takes part in the target: its customers hear the replies from now on.
        joining = [a for a in (source.requester, *source.followers) if a != target.requester]
        await tx.add_followers(target.id, joining, agent.email, cause)
        await tx.change_tags(target.id, source.tags, (), agent.email, cause)
        for other in (*source.linked, source.id):
            if other != target.id:
                await tx.link_tickets(target.id, other, agent.email, cause)
        await self.services.lifecycle.move(tx, source, CLOSED, agent.email, cause, merged_into=target.id)
        prefix = self.config.ticket_prefix
        ctx.changes.append(("merged", format_token(prefix, source.id), format_token(prefix, target.id)))
        ctx.ticket = await tx.get_ticket(target.id)

    def assignee(self, kind: str, target: str, sender: str) -> str | None:
        if kind == "me":
            return sender
        if kind == "none":
            return None
        names = ", ".join(a.name for a in self.config.agents)
        if kind == "address":
            if self.config.agent(target) is None:
                raise Refused(Text("not an agent", who=target), Text("accepted agent", names=names))
            return target
        matches = self.config.agents_named(target)
        if len(matches) != 1:
            raise Refused(Text("no single agent", got=repr(target)), Text("accepted agent", names=names))
        return matches[0].email

    def check_desk(self, prefix: str, ticket_id: int, accepted: Text) -> None:
        """[OTHER#5] names another desk's ticket 5, never ours: linking or merging ours would be the wrong one."""
        if Reference(ticket_id, prefix).of_another_desk(self.config.ticket_prefix):
            ours = format_token(self.config.ticket_prefix, ticket_id)
            raise Refused(Text("another desk", token=format_token(prefix, ticket_id), ours=ours), accepted)

    def check_outsider(self, address: str) -> None:
        if self.config.is_desk(address):
            raise Refused(Text("own address", address=address), Text("accepted outside address"))


class Transcript:
    """transcript: the agent whose commands applied is told what changed, and the ticket as the mail left it
    (after the lifecycle step, which may have taken or opened it: the "Now:" line must say so)."""

    name = "transcript"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        if ctx.applied:
            await mail_agent(self.services, ctx, tx, "agent.transcript", changes=ctx.changes)
        return CONTINUE


def _shown(value: Any, zone: ZoneInfo) -> str | None:
    """A field's value in the transcript; an instant in the desk's zone, with its offset, as agents write it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat(timespec="minutes")
    return str(value)
