"""All user-facing text comes from Jinja templates in ``maild/templates/<language>/<audience>.<event>.txt``.

A template is a mail: a ``Subject:`` line, a blank line, then the body. Undefined variables are errors
(StrictUndefined), so a template typo fails a test instead of mailing a customer a blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from maild.models import Ticket
from maild.refusals import CatalogError, load_catalog, localize
from maild.tokens import format_token

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def ticket_vars(ticket: Ticket, prefix: str, from_name: str) -> dict[str, Any]:
    """What every ticket template may use: the ticket, its token and our name."""
    return {"ticket": ticket, "token": format_token(prefix, ticket.id), "from_name": from_name}


# The first line of every mail to agents, from ``<language>/reply_marker.line`` of the shipped templates only
# (an override cannot drop or reword it): where an agent's reply to it ends, however their client quotes it
# (`maild.mailtext.REPLY_MARKER` finds it). Without it, a reply from an Outlook whose quote header we do not
# know would carry the whole notice as the agent's new text: the customer's words read as commands, an
# internal note relayed to the customer.
REPLY_MARKERS = {
    folder.name: (folder / "reply_marker.line").read_text(encoding="utf-8").strip()
    for folder in sorted(TEMPLATE_DIR.iterdir())
    if (folder / "reply_marker.line").is_file()
}


class TemplateError(Exception):
    """A template is missing or malformed."""


class Renderer:
    def __init__(self, default_language: str, overrides: Path | None = None, timezone: str = "UTC") -> None:
        """``overrides``: a folder laid out like maild/templates whose files replace the shipped ones
        (and whose refusals.toml entries replace the shipped wording of those refusals); ``timezone``: the
        desk's, in which the ``when`` filter writes instants."""
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        try:
            self.refusals = load_catalog(overrides)
        except CatalogError as exc:
            raise TemplateError(str(exc)) from exc
        folders = [str(overrides)] if overrides else []
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*folders, str(TEMPLATE_DIR)]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text mail, never HTML
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["localize"] = self._localize
        self._env.filters["when"] = self.when

    @jinja2.pass_context
    def _localize(self, context: jinja2.runtime.Context, value: Any) -> str:
        """``{{ error.reason | localize }}``: a refusal's reason in the language of the mail being rendered."""
        return localize(value, context["language"], self.refusals)

    def when(self, instant: datetime) -> str:
        """``{{ ticket.due_at | when }}``: an instant as the desk reads it, in its time zone, named
        ("2026-12-03 10:00 CET")."""
        local = instant.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    def render(self, name: str, language: str | None = None, **context: Any) -> Rendered:
        """Render ``<language>/<name>.txt`` (falling back to the default language) into subject and body."""
        chosen = language or self.default_language
        try:
            template = self._env.get_or_select_template([f"{chosen}/{name}.txt", f"{self.default_language}/{name}.txt"])
            text = template.render(**{"language": chosen, **context})
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"no template {name!r} for language {chosen!r}") from exc
        head, sep, body = text.partition("\n\n")
        if not sep or not head.startswith("Subject:"):
            raise TemplateError(f"template {name!r} must start with a 'Subject:' line and a blank line")
        if name.startswith("agent."):  # here, not in the templates: an override cannot leave it out
            body = f"{REPLY_MARKERS.get(chosen, REPLY_MARKERS['en'])}\n\n{body}"
        return Rendered(subject=" ".join(head[len("Subject:") :].split()), body=body.rstrip() + "\n")

    def names(self, language: str) -> list[str]:
        """The templates shipped for a language (for check-config and tests)."""
        return sorted(
            n[len(language) + 1 : -4]
            for n in self._env.list_templates(extensions=["txt"])
            if n.startswith(language + "/")
        )
