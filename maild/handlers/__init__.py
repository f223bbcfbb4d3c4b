"""The pipeline's steps. `PIPELINE` is the order a message goes through them: read it to follow a mail."""

from __future__ import annotations

from collections.abc import Callable

from maild.handlers.acknowledge import Acknowledge
from maild.handlers.base import Handler, Services
from maild.handlers.bounces import Bounces
from maild.handlers.commands import ApplyCommands, Transcript
from maild.handlers.digest_request import DigestRequest
from maild.handlers.identify import Identify
from maild.handlers.lifecycle import Lifecycle
from maild.handlers.loop_guard import LoopGuard
from maild.handlers.notify_agents import NotifyAgents
from maild.handlers.parse import Parse
from maild.handlers.read_commands import ReadCommands
from maild.handlers.record import Record
from maild.handlers.relay import Relay
from maild.handlers.thread import Thread
from maild.handlers.ticket import OpenTicket

PIPELINE: tuple[str, ...] = (
    "parse",  # raw bytes → ParsedMail (headers, new text, attachments)
    "loop_guard",  # our own mail back → stop; machine mail → marked, never answered
    "identify",  # agent or outsider
    "read_commands",  # an agent's #command lines taken out of the text
    "thread",  # token or References → existing ticket
    "digest_request",  # an agent's "#digest" alone, outside any ticket → their digest, no ticket
    "ticket",  # no ticket yet → open one; followers; is the sender a participant
    "record",  # timeline message + attachments
    "bounces",  # a bounce of our own mail → recorded on that outbound mail
    "commands",  # all of the agent's commands applied, or none and an error mail
    "lifecycle",  # status moves caused by the mail itself
    "transcript",  # commands applied → the agent told what changed, and the ticket as the mail left it
    "acknowledge",  # new ticket → customer told its token
    "relay",  # agent reply → customer and followers
    "notify_agents",  # new ticket / customer reply → assignee or queue
)

_FACTORIES: dict[str, Callable[[Services], Handler]] = {
    "parse": Parse,
    "loop_guard": LoopGuard,
    "identify": Identify,
    "read_commands": ReadCommands,
    "thread": Thread,
    "digest_request": DigestRequest,
    "ticket": OpenTicket,
    "record": Record,
    "bounces": Bounces,
    "commands": ApplyCommands,
    "lifecycle": Lifecycle,
    "transcript": Transcript,
    "acknowledge": Acknowledge,
    "relay": Relay,
    "notify_agents": NotifyAgents,
}


def build_handlers(services: Services, names: tuple[str, ...] = PIPELINE) -> list[Handler]:
    """Instantiate the steps named in ``names``, in order."""
    return [_FACTORIES[name](services) for name in names]
