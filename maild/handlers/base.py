"""What every pipeline step shares: the message context it works on, its outcome, its services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from maild.automail import Bounce
from maild.blobs import BlobStore
from maild.clock import Clock
from maild.commands import Command, CommandError
from maild.compose import Draft
from maild.config import Agent, Config
from maild.digest import AgentDigests
from maild.lifecycle import Lifecycle
from maild.mime import ParsedMail
from maild.models import Inbound, Message, Ticket
from maild.outbox import Outbox
from maild.render import Renderer, ticket_vars
from maild.scheduler import TimerActions
from maild.store import Tx


@dataclass(frozen=True)
class Services:
    """What handlers may use besides the transaction; wired once by `maild.app`."""

    config: Config
    renderer: Renderer
    outbox: Outbox
    lifecycle: Lifecycle
    blobs: BlobStore
    clock: Clock
    digests: AgentDigests  # the agents' digest, for `#digest`
    timers: TimerActions  # what a due timer does: the scheduler's, and `thread` catching up a ticket's


@dataclass
class Context:
    """Everything learned about one inbound message as it goes down the pipeline.

    Each field is filled by the step named beside it; later steps read it. Nothing else is shared.
    """

    inbound: Inbound
    mail: ParsedMail | None = None  # parse
    text: str = ""  # parse: the new text; ticket: whole body for a new ticket without any; commands: minus commands
    automatic: str | None = None  # loop_guard: why this is machine mail (never answered), else None
    bounce: Bounce | None = None  # loop_guard: the delivery report, when the mail is a bounce
    bulk: bool = False  # loop_guard: list or bulk mail: never answered, but agents hear of it (a person may
    # write through a mailing list or a Google Group)
    sender: str = ""  # identify: the From address, lower case; ticket: the Reply-To one when it answers there
    sender_name: str = ""  # identify, ticket: the display name of ``sender``
    reply_to: tuple[str, str] | None = None  # identify: a customer's one Reply-To mailbox (name, address)
    via: str = ""  # ticket: the From address when the mail is answered at its Reply-To one
    agent: Agent | None = None  # identify: the configured agent who sent it, if any
    spoofed: str | None = None  # identify: why a mail in an agent's name was not trusted
    ticket: Ticket | None = None  # thread (existing) or ticket (created)
    created: bool = False  # ticket: this message opened the ticket
    participant: bool = False  # ticket: the sender is the requester, a follower or an agent
    commands: tuple[Command, ...] = ()  # read_commands: an agent's valid command lines
    command_errors: list[CommandError] = field(default_factory=list)  # read_commands, commands: refused lines
    internal: bool = False  # read_commands: #internal, the mail is a note for agents only
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # commands: field, old, new
    resolution: str | None = None  # commands: the method of a #resolve applied by this mail
    applied: bool = False  # commands: the agent's commands were applied (the transcript step tells them)
    spawned_from: int | None = None  # ticket: the closed ticket this mail would have joined
    held: bool = False  # thread: an agent's first mail held as a loop (notify_agents tells them)
    reopened: bool = False  # lifecycle: a customer's reply reopened a resolved ticket
    relayed: bool = False  # relay: the agent's reply went out to the customers
    message: Message | None = None  # record
    notes: list[str] = field(default_factory=list)  # any step: facts worth a log line

    @property
    def parsed(self) -> ParsedMail:
        """The parsed mail; only for steps after `parse`."""
        assert self.mail is not None, "step ordered before parse"
        return self.mail

    @property
    def current_ticket(self) -> Ticket:
        """The ticket; only for steps after `ticket`."""
        assert self.ticket is not None, "step ordered before ticket"
        return self.ticket


@dataclass(frozen=True)
class Continue:
    """Go on with the next step."""


@dataclass(frozen=True)
class Stop:
    """End processing here, successfully: the message is kept and marked with the reason."""

    reason: str


Outcome = Continue | Stop
CONTINUE = Continue()


class Handler(Protocol):
    """One step of the pipeline. ``name`` is how `PIPELINE` refers to it."""

    name: str

    async def process(self, ctx: Context, tx: Tx) -> Outcome: ...


@runtime_checkable
class Prepares(Protocol):
    """A step with work that needs no store (decoding the mail): the pipeline runs ``prepare`` for every
    such step before it opens the message's transaction, so the store's one writer is not held meanwhile
    (spool commits, and with them the SMTP 250s, wait for it). ``process`` then runs in order as usual."""

    name: str

    async def prepare(self, ctx: Context) -> None: ...


async def mail_agent(services: Services, ctx: Context, tx: Tx, event: str, **extra: Any) -> None:
    """Queue ``event`` about the mail's ticket to the agent who sent it, in the desk's language."""
    assert ctx.agent is not None
    config, ticket = services.config, ctx.current_ticket
    rendered = services.renderer.render(
        event, config.language, **ticket_vars(ticket, config.ticket_prefix, config.from_name), agent=ctx.agent, **extra
    )
    draft = Draft(
        kind=event,
        to=[ctx.agent.email],
        subject=rendered.subject,
        body=rendered.body,
        references=[ctx.parsed.message_id],
    )
    await services.outbox.queue(tx, draft, ticket.id)
