"""read_commands: take an agent's #command lines out of the new text (quotes and customers never count)."""

from __future__ import annotations

from maild.commands import Forward, Internal, parse_commands
from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.store import Tx


class ReadCommands:
    name = "read_commands"

    def __init__(self, services: Services) -> None:
        pass

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Only configured agents command; a customer's "#status closed" is just text. Machines never command.
        if ctx.agent is None or ctx.automatic:
            return CONTINUE
        parsed = parse_commands(ctx.text)
        ctx.text = parsed.text
        ctx.commands = parsed.commands
        ctx.command_errors = list(parsed.errors)
        # A forward's text is its note to the third party, not an answer to the customer (as RT's and
        # Zammad's forwards are separate from replies): kept among agents, never relayed.
        ctx.internal = any(isinstance(c.args, Internal | Forward) for c in parsed.commands)
        if parsed.commands or parsed.errors:
            ctx.notes.append(f"commands: {len(parsed.commands)} read, {len(parsed.errors)} refused")
        return CONTINUE
