"""The ticket reference token carried in subjects: ``[ACME#123]``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# A ticket as agents and operators write it: 12, #12, ACME#12 or [ACME#12] (any prefix, spaces in brackets).
_REFERENCE = re.compile(r"\[\s*([\w-]*)\s*#\s*(\d{1,18})\s*\]|(?:([\w-]*)#)?(\d{1,18})")


class Reference(NamedTuple):
    """A ticket as typed: its id (0 stays 0, for the caller to refuse) and the token's prefix, if any."""

    id: int
    prefix: str  # "ACME" of [ACME#12] or ACME#12; "" for 12 or #12

    def of_another_desk(self, desk_prefix: str) -> bool:
        """Whether the token names another desk's ticket: a bare 12 or #12 is always ours."""
        return bool(self.prefix) and self.prefix.casefold() != desk_prefix.casefold()


def ticket_reference(text: str) -> Reference | None:
    """The ticket ``text`` names (12, #12, ACME#12, [ACME#12]), or None when it names none."""
    found = _REFERENCE.fullmatch(text)
    if found is None:
        return None
    if found.group(2) is not None:
        return Reference(int(found.group(2)), found.group(1))
    return Reference(int(found.group(4)), found.group(3) or "")


def format_token(prefix: str, ticket_id: int) -> str:
    return f"[{prefix}#{ticket_id}]"


@lru_cache(maxsize=8)
def _pattern(prefix: str) -> re.Pattern[str]:
    # Mail clients and list software sometimes add spaces inside brackets; tolerate "[ ACME # 12 ]".
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*#\s*(\d{1,18})\s*\]", re.IGNORECASE)


def ticket_ids_in(subject: str, prefix: str) -> list[int]:
    """Ticket ids named by tokens in a subject, in order of appearance."""
    return [int(match) for match in _pattern(prefix).findall(subject)]


def strip_tokens(subject: str, prefix: str) -> str:
    """The subject without our tokens, for a new ticket's title."""
    return " ".join(_pattern(prefix).sub(" ", subject).split())
