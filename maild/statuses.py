"""Ticket statuses and the moves allowed between them (CONTRACT §3), as data.

Any status change anywhere in maild goes through `check_transition`, so the table below is the whole truth.
"""

from __future__ import annotations

from maild.refusals import Text

NEW, OPEN = "new", "open"
WAITING_CUSTOMER, WAITING_THIRD_PARTY, WAITING_UNTIL = (
    "waiting_customer",
    "waiting_third_party",
    "waiting_until",
)
RESOLVED, CLOSED = "resolved", "closed"

STATUSES: tuple[str, ...] = (
    NEW,
    OPEN,
    WAITING_CUSTOMER,
    WAITING_THIRD_PARTY,
    WAITING_UNTIL,
    RESOLVED,
    CLOSED,
)
RESOLUTION_METHODS: tuple[str, ...] = ("responded", "no_response", "rejected", "spam")

_WORKING = (OPEN, WAITING_CUSTOMER, WAITING_THIRD_PARTY, WAITING_UNTIL, RESOLVED, CLOSED)

# An agent may hand a ticket in work back to the to-do pile (`#status new`, as RT's open → new), and at its
# date a waiting_until ticket returns there by itself.
_ANY = frozenset({NEW, *_WORKING})

TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset(_WORKING),
    OPEN: _ANY - {OPEN},
    WAITING_CUSTOMER: _ANY - {WAITING_CUSTOMER},
    WAITING_THIRD_PARTY: _ANY - {WAITING_THIRD_PARTY},
    WAITING_UNTIL: _ANY - {WAITING_UNTIL},
    # A reply inside the feedback window reopens; the end of the window closes.
    RESOLVED: frozenset({OPEN, CLOSED}),
    # Final: a later mail spawns a new ticket linked to this one.
    CLOSED: frozenset(),
}


class TransitionRefused(ValueError):
    """A status change the table does not allow; ``reason`` says so in any template language."""

    def __init__(self, old: str, new: str, allowed: str) -> None:
        self.reason = Text("transition", old=old, new=new, allowed=allowed or Text("nowhere"))
        super().__init__(self.reason)


def allowed_from(old: str) -> list[str]:
    """The statuses ``old`` may move to, in the usual order."""
    return [s for s in STATUSES if s in TRANSITIONS.get(old, frozenset())]


def check_transition(old: str, new: str) -> None:
    """Raise TransitionRefused unless ``old`` → ``new`` is allowed (staying put is always allowed)."""
    if old == new:
        return
    if new not in TRANSITIONS.get(old, frozenset()):
        raise TransitionRefused(old, new, ", ".join(allowed_from(old)))
