"""Why an agent's command line was refused, and what would have been accepted, in every template language.

The agent's error mail is a template in their language, and the reasons it lists come from here, so a
Spanish mail does not quote English ones. A `Text` is a str holding the English wording (what logs, the
CLI and tests read) that can say itself in the other languages: the templates' ``localize`` filter does.
"""

from __future__ import annotations

from typing import Any

# key → language → wording; ``{name}`` fields are filled from the Text's parameters (a parameter that is
# itself a Text is said in the same language). Values quoted from the agent's line arrive already quoted.
CATALOG: dict[str, dict[str, str]] = {
    # --- the parts of a command that can be missing or wrong (nouns for the reasons below)
    "status": {"en": "status", "es": "el estado"},
    "priority": {"en": "priority", "es": "la prioridad"},
    "resolution method": {"en": "resolution method", "es": "el método de resolución"},
    "tag": {"en": "tag", "es": "la etiqueta"},
    "address": {"en": "address", "es": "la dirección"},
    "duration": {"en": "duration", "es": "la duración"},
    "assignee": {"en": "assignee", "es": "a quién asignarlo"},
    "ticket id": {"en": "ticket id", "es": "el número de ticket"},
    "queue": {"en": "queue", "es": "cola"},
    "category": {"en": "category", "es": "categoría"},
    "nowhere": {"en": "none", "es": "ninguno"},
    # --- reasons
    "missing": {"en": "missing {what}", "es": "falta {what}"},
    "one expected": {"en": "expected one {what}, got {got}", "es": "se esperaba un solo valor para {what}: {got}"},
    "unknown": {"en": "unknown {what} {got}", "es": "valor desconocido para {what}: {got}"},
    "no arguments": {"en": "takes no arguments, got {got}", "es": "no admite nada detrás; se recibió {got}"},
    "not an address": {"en": "not an address: {got}", "es": "no es una dirección: {got}"},
    "missing name": {"en": "missing {what} name", "es": "falta el nombre de {what}"},
    "not a name": {"en": "not a {what} name: {got}", "es": "no es un nombre de {what} válido: {got}"},
    "duration zero": {"en": "the duration must be more than zero", "es": "la duración debe ser mayor que cero"},
    "duration too long": {"en": "the duration must be at most {limit}", "es": "la duración no puede pasar de {limit}"},
    "names nothing": {"en": "{got} names no {what}", "es": "a {got} le falta {what}"},
    "added and removed": {
        "en": "{what} {name} is both added and removed",
        "es": "{what} {name} se añade y se quita a la vez",
    },
    "waiting_until needs a date": {
        "en": "waiting_until needs a date: use #wait until YYYY-MM-DD [HH:MM]",
        "es": "waiting_until necesita una fecha: use #wait until AAAA-MM-DD [HH:MM]",
    },
    "missing wait": {"en": "missing what to wait for", "es": "falta indicar a qué se espera"},
    "unknown wait": {"en": "unknown wait {got}", "es": "espera desconocida: {got}"},
    "unexpected after": {"en": "unexpected {got} after {word}", "es": "sobra {got} después de {word}"},
    "missing date after": {"en": "missing date after {word}", "es": "falta la fecha después de {word}"},
    "not a date": {"en": "not a date: {got}", "es": "no es una fecha: {got}"},
    "no such date": {"en": "no such date: {got}", "es": "esa fecha no existe: {got}"},
    "not a duration": {"en": "not a duration: {got}", "es": "no es una duración: {got}"},
    "not a tag": {"en": "not a tag: {got}", "es": "no es una etiqueta: {got}"},
    "not a ticket id": {"en": "not a ticket id: {got}", "es": "no es un número de ticket: {got}"},
    "ticket ids start at 1": {"en": "ticket ids start at 1", "es": "los números de ticket empiezan en 1"},
    "too many commands": {"en": "too many commands", "es": "demasiados comandos"},
    "transition": {
        "en": "{old} → {new} is not allowed (from {old}: {allowed})",
        "es": "{old} → {new} no está permitido (desde {old}: {allowed})",
    },
    "resolving needs a method": {"en": "resolving needs a method", "es": "para resolver hace falta un método"},
    "only admins close": {
        "en": "only admins may close a ticket",
        "es": "solo los administradores pueden cerrar un ticket",
    },
    "in the past": {"en": "{when} is in the past", "es": "{when} ya ha pasado"},
    "no queue": {"en": "no queue {got}", "es": "no existe la cola {got}"},
    "no other ticket": {"en": "no other ticket {id}", "es": "no existe otro ticket {id}"},
    "not an agent": {"en": "{who} is not an agent", "es": "{who} no es un agente"},
    "no single agent": {"en": "no single agent named {got}", "es": "no hay un único agente llamado {got}"},
    "own address": {
        "en": "{address} is maild's own address or an agent's",
        "es": "{address} es la dirección de maild o la de un agente",
    },
    "resolution needs a message": {
        "en": "a resolution needs a message for the customer, or #internal with a note",
        "es": "una resolución necesita un mensaje para el cliente, o #internal con una nota",
    },
    # --- what would have been accepted (command keywords and values stay as agents type them)
    "accepted status": {
        "en": "one of {statuses}; for waiting_until: #wait until DATE",
        "es": "uno de {statuses}; para waiting_until: #wait until FECHA",
    },
    "accepted wait": {
        "en": "customer, third_party or until YYYY-MM-DD [HH:MM]",
        "es": "customer, third_party o until AAAA-MM-DD [HH:MM]",
    },
    "accepted date": {
        "en": "YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DDTHH:MM",
        "es": "AAAA-MM-DD, AAAA-MM-DD HH:MM o AAAA-MM-DDTHH:MM",
    },
    "accepted postpone": {
        "en": "a duration, e.g. 4h, 2d, 1w, 1d12h (at most 365d)",
        "es": "una duración, p. ej. 4h, 2d, 1w, 1d12h (como mucho 365d)",
    },
    "accepted time": {
        "en": "#time DURATION [nonbillable] [note], DURATION e.g. 45m, 1h30m, 1.5h, 1:30 (at most 24h)",
        "es": "#time DURACIÓN [nofacturable] [nota], DURACIÓN p. ej. 45m, 1h30m, 1.5h, 1:30 (como mucho 24h)",
    },
    "accepted resolve": {
        "en": "one of {methods}, then an optional note",
        "es": "uno de {methods}, y una nota si quiere",
    },
    "accepted assign": {
        "en": "me, none, an address or an agent's name",
        "es": "me (yo), none (nadie), una dirección o el nombre de un agente",
    },
    "accepted one of": {"en": "one of {values}", "es": "uno de {values}"},
    "accepted name": {
        "en": "one name of letters, digits, '.', '_' or '-'",
        "es": "un nombre de letras, cifras, '.', '_' o '-'",
    },
    "accepted category": {
        "en": "one name of letters, digits, '.', '_' or '-', or none",
        "es": "un nombre de letras, cifras, '.', '_' o '-', o none (ninguna)",
    },
    "accepted tag": {
        "en": "+tag to add, -tag to remove, e.g. #tag +vip -printer",
        "es": "+etiqueta para añadir, -etiqueta para quitar, p. ej. #tag +vip -impresora",
    },
    "accepted cc": {
        "en": "+address to add, -address to remove, e.g. #cc +ana@example.com",
        "es": "+dirección para añadir, -dirección para quitar, p. ej. #cc +ana@example.com",
    },
    "accepted address": {"en": "one address, e.g. ana@example.com", "es": "una dirección, p. ej. ana@example.com"},
    "accepted link": {"en": "a ticket id: 12, #12 or [ACME#12]", "es": "un número de ticket: 12, #12 o [ACME#12]"},
    "accepted nothing": {
        "en": "the keyword alone, nothing after it",
        "es": "la palabra clave sola, sin nada detrás",
    },
    "accepted at most": {"en": "at most {count} in one mail", "es": "como mucho {count} en un correo"},
    "accepted resolve command": {
        "en": "#resolve responded|no_response|rejected|spam",
        "es": "#resolve responded|no_response|rejected|spam",
    },
    "accepted resolve, not close": {"en": "#resolve METHOD", "es": "#resolve MÉTODO"},
    "accepted resolve or close": {
        "en": "#resolve METHOD (agents), #close (admins)",
        "es": "#resolve MÉTODO (agentes), #close (administradores)",
    },
    "accepted future date": {
        "en": "a future date: YYYY-MM-DD [HH:MM]",
        "es": "una fecha futura: AAAA-MM-DD [HH:MM]",
    },
    "accepted queue": {"en": "one of {queues}", "es": "una de {queues}"},
    "accepted existing ticket": {
        "en": "the number of an existing ticket",
        "es": "el número de un ticket que exista",
    },
    "accepted agent": {"en": "me, none, or an agent: {names}", "es": "me (yo), none (nadie) o un agente: {names}"},
    "accepted outside address": {
        "en": "a customer's or third party's address",
        "es": "la dirección de un cliente o de un tercero",
    },
    "accepted resolution message": {
        "en": "write the resolution message below the commands, or add #internal and a note",
        "es": "escriba el mensaje de resolución bajo los comandos, o añada #internal y una nota",
    },
}


class Text(str):
    """The English wording of a catalog entry, able to say itself in the other languages."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Text:
        text = super().__new__(cls, _say(key, params, "en"))
        text.key, text.params = key, params
        return text

    def in_language(self, language: str) -> str:
        """This text in ``language`` (English when the catalog has no such language)."""
        return _say(self.key, self.params, language)


def localize(value: Any, language: str) -> str:
    """A template value in ``language``: a Text translated, anything else as it is."""
    return value.in_language(language) if isinstance(value, Text) else str(value)


def _say(key: str, params: dict[str, Any], language: str) -> str:
    wordings = CATALOG[key]
    values = {name: localize(value, language) for name, value in params.items()}
    return wordings.get(language, wordings["en"]).format(**values)
