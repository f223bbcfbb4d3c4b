"""notify_agents: tell the assignee (or the queue's agents) about a new ticket, a customer's reply or a note;
tell an agent that another agent's mail made them the assignee, or answered their customer."""

from __future__ import annotations

from maild.compose import Draft
from maild.config import Agent
from maild.durations import format_duration
from maild.handlers.base import CONTINUE, Context, Outcome, Services, mail_agent
from maild.render import ticket_vars
from maild.store import Tx


class NotifyAgents:
    name = "notify_agents"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Machine mail is kept on the ticket but mails nobody: a bounce of a notice must not breed notices.
        # An agent whose own mail was held as a loop is told, once (a person's mail must not vanish unsaid).
        # List and bulk mail is told to agents as RT does (a person may write through a mailing list), but
        # nothing answers it.
        if ctx.automatic and not (ctx.bulk and ctx.agent is None):
            if ctx.held:
                await self.tell_held(ctx, tx)
            return CONTINUE
        ticket, config = ctx.current_ticket, self.services.config
        if ctx.spoofed:
            await self.warn_admins(ctx, tx)
            return CONTINUE
        had_it = self.assignee_before(ctx)
        reassigned = had_it != ticket.assignee
        handed_to = self.handed_to(ctx) if reassigned else None
        if ctx.agent is not None and not ctx.created and not ctx.internal:
            # An agent's reply to the customer: another agent hears of it when it gives them the ticket, and
            # whoever had the ticket when a colleague answered their customer (and where the ticket went).
            if handed_to is not None:
                await self.tell_new_assignee(ctx, tx, handed_to)
            colleague = self.agent_named(had_it)
            if not ctx.relayed or colleague is None or colleague.email == ctx.sender:
                return CONTINUE
            event, recipients = "agent.colleague_reply", [colleague]
        else:
            event, recipients = self.event(ctx), self.recipients(ctx)
        # A notice answers the mail it reports: the chain's order alone would put an earlier notice last
        # when both were written in the same second.
        reported = ctx.message.message_id if ctx.message else ctx.parsed.message_id
        references = await tx.thread_chain(ticket.id, "agent")
        for agent in recipients:
            rendered = self.services.renderer.render(
                event,
                config.language,
                **ticket_vars(ticket, config.ticket_prefix, config.from_name),
                agent=agent,
                sender=ctx.sender,
                sender_name=ctx.sender_name,
                via=ctx.via,
                text=ctx.text,
                participant=ctx.participant,
                attachments=ctx.message.attachments if ctx.message else (),
                assigned_by=ctx.agent if agent == handed_to else None,
                reassigned=reassigned,
                new_assignee=self.agent_named(ticket.assignee),
                bulk=ctx.automatic if ctx.bulk else None,
            )
            draft = Draft(
                kind=event,
                to=[agent.email],
                subject=rendered.subject,
                body=rendered.body,
                references=references,
                in_reply_to=reported,
                attachments=ctx.parsed.attachments,
            )
            await self.services.outbox.queue(tx, draft, ticket.id)
        return CONTINUE

    def event(self, ctx: Context) -> str:
        """The notice for a new ticket, a customer's reply (one that reopened) or an agent's note."""
        if ctx.created:
            return "agent.new_ticket"
        if ctx.agent is not None:
            return "agent.internal_note"
        return "agent.reopened" if ctx.reopened else "agent.customer_reply"

    def handed_to(self, ctx: Context) -> Agent | None:
        """The agent an agent's commands in this mail made the assignee, unless that is the sender."""
        assignee = ctx.current_ticket.assignee
        if ctx.agent is None or assignee is None or assignee == ctx.sender:
            return None
        return self.agent_named(assignee)

    @staticmethod
    def assignee_before(ctx: Context) -> str | None:
        """The ticket's assignee before this mail's commands (its assignee now if they did not change it)."""
        before = [old for field, old, _ in ctx.changes if field == "assignee"]
        return before[0] if before else ctx.current_ticket.assignee

    def agent_named(self, address: str | None) -> Agent | None:
        return self.services.config.agent(address) if address else None

    async def tell_new_assignee(self, ctx: Context, tx: Tx, agent: Agent) -> None:
        """The ticket is now theirs: what it is about, the customer's latest words, and the mail that did it."""
        ticket, config = ctx.current_ticket, self.services.config
        rendered = self.services.renderer.render(
            "agent.assigned",
            config.language,
            **ticket_vars(ticket, config.ticket_prefix, config.from_name),
            agent=agent,
            assigned_by=ctx.agent,
            latest=await tx.latest_message(ticket.id, "in", "public"),
            text=ctx.text,
        )
        draft = Draft(
            kind="agent.assigned",
            to=[agent.email],
            subject=rendered.subject,
            body=rendered.body,
            references=await tx.thread_chain(ticket.id, "agent"),
        )
        await self.services.outbox.queue(tx, draft, ticket.id)

    def recipients(self, ctx: Context) -> list[Agent]:
        ticket = ctx.current_ticket
        agents = self.services.config.ticket_agents(ticket.assignee, ticket.queue)
        return [a for a in agents if a.email != ctx.sender]

    async def tell_held(self, ctx: Context, tx: Tx) -> None:
        security = self.services.config.security
        window = format_duration(security.loop_window)
        await mail_agent(self.services, ctx, tx, "agent.held", text=ctx.text, limit=security.loop_mails, window=window)

    async def warn_admins(self, ctx: Context, tx: Tx) -> None:
        """A mail in an agent's name failed authentication: the admins hear of it, nobody else does."""
        ticket, config = ctx.current_ticket, self.services.config
        for admin in (a for a in config.agents if a.role == "admin"):
            rendered = self.services.renderer.render(
                "agent.untrusted",
                config.language,
                **ticket_vars(ticket, config.ticket_prefix, config.from_name),
                agent=admin,
                sender=ctx.sender,
                reason=ctx.spoofed,
                text=ctx.text,
            )
            draft = Draft(kind="agent.untrusted", to=[admin.email], subject=rendered.subject, body=rendered.body)
            await self.services.outbox.queue(tx, draft, ticket.id)
