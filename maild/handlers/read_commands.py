"""read_commands: take an agent's #command lines out of the new text (quotes and customers never count)."""

from __future__ import annotations

from maild.commands import Internal, parse_commands
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
        ctx.internal = any(isinstance(c.args, Internal) for c in parsed.commands)
        if parsed.commands or parsed.errors:
            ctx.notes.append(f"commands: {len(parsed.commands)} read, {len(parsed.errors)} refused")
        return CONTINUE
