"""The ticket reference token carried in subjects: ``[ACME#123]``."""

from __future__ import annotations

import re
from functools import lru_cache

# A ticket as agents and operators write it: 12, #12, ACME#12 or [ACME#12] (any prefix, spaces in brackets).
_REFERENCE = re.compile(r"\[\s*[\w-]*\s*#\s*(\d{1,18})\s*\]|(?:[\w-]*#)?(\d{1,18})")


def ticket_reference(text: str) -> int | None:
    """The ticket id ``text`` names (0 stays 0, for the caller to refuse), or None when it names none."""
    found = _REFERENCE.fullmatch(text)
    return int(found.group(1) or found.group(2)) if found else None


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
