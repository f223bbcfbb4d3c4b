"""Why an agent's command line was refused, and what would have been accepted, in every template language.

The agent's error mail is a template in their language, and the reasons it lists are worded beside it, in
``templates/<language>/refusals.toml`` (``key = "wording"``), so a Spanish mail does not quote English
ones and a ``templates_dir`` override can reword them like any other text. A `Text` is a str holding the
shipped English wording (what logs, the CLI and tests read) that can say itself in other languages, from
the catalog in use: the templates' ``localize`` filter does.
"""

from __future__ import annotations

import string
import tomllib
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).parent / "templates"
CATALOG_FILE = "refusals.toml"

# language → key → wording; ``{name}`` fields are filled from the Text's parameters (a parameter that is
# itself a Text is said in the same language). Values quoted from the agent's line arrive already quoted.
Catalog = dict[str, dict[str, str]]


class CatalogError(Exception):
    """A refusals.toml that cannot be used; ``problems`` holds one line per file or entry at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def fields(wording: str) -> set[str]:
    """The ``{fields}`` a wording uses; ValueError when its braces do not parse."""
    return {name for _, name, _, _ in string.Formatter().parse(wording) if name is not None}


def read_catalog(folder: Path, reference: Catalog | None = None) -> tuple[Catalog, list[str]]:
    """The refusals.toml of each language folder under ``folder``, and one problem per bad file or entry.

    Checked against ``reference`` (the shipped catalog) when given: an entry must be one maild knows and use
    no field its English wording lacks, or rendering it would fail in front of an agent.
    """
    catalog: Catalog = {}
    problems: list[str] = []
    for path in sorted(folder.glob(f"*/{CATALOG_FILE}")):
        where = f"{path.parent.name}/{CATALOG_FILE}"
        try:
            entries = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{where}: cannot read: {exc}")
            continue
        language: dict[str, str] = {}
        for key, wording in entries.items():
            problem = _entry_problem(key, wording, reference)
            if problem:
                problems.append(f"{where}: {key!r}: {problem}")
            else:
                language[key] = wording
        catalog[path.parent.name] = language
    return catalog, problems


def _entry_problem(key: str, wording: Any, reference: Catalog | None) -> str | None:
    if not isinstance(wording, str):
        return "expected a string"
    try:
        used = fields(wording)
    except ValueError as exc:
        return f"bad braces: {exc}"
    if reference is None:
        return None
    if key not in reference["en"]:
        return "not an entry maild uses"
    unknown = used - fields(reference["en"][key])
    return f"unknown field {{{sorted(unknown)[0]}}}" if unknown else None


def load_catalog(overrides: Path | None = None) -> Catalog:
    """The shipped catalog, with the entries of ``overrides`` (a templates_dir) over it."""
    if overrides is None:
        return SHIPPED
    extra, problems = read_catalog(overrides, SHIPPED)
    if problems:
        raise CatalogError(problems)
    return {lang: {**SHIPPED.get(lang, {}), **extra.get(lang, {})} for lang in SHIPPED.keys() | extra.keys()}


def _shipped() -> Catalog:
    catalog, problems = read_catalog(TEMPLATE_DIR)
    if problems or "en" not in catalog:
        raise CatalogError(problems or [f"en/{CATALOG_FILE}: missing"])  # a broken install: fail at import
    return catalog


SHIPPED: Catalog = _shipped()


class Text(str):
    """The English wording of a catalog entry, able to say itself in the other languages."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Text:
        text = super().__new__(cls, _say(key, params, "en", SHIPPED))
        text.key, text.params = key, params
        return text

    def in_language(self, language: str, catalog: Catalog = SHIPPED) -> str:
        """This text in ``language`` (in English where the catalog has no wording for it)."""
        return _say(self.key, self.params, language, catalog)


def localize(value: Any, language: str, catalog: Catalog = SHIPPED) -> str:
    """A template value in ``language``: a Text translated, anything else as it is."""
    return value.in_language(language, catalog) if isinstance(value, Text) else str(value)


def _say(key: str, params: dict[str, Any], language: str, catalog: Catalog) -> str:
    wording = catalog.get(language, {}).get(key)
    if wording is None:
        wording = catalog["en"][key]
    values = {name: localize(value, language, catalog) for name, value in params.items()}
    return wording.format(**values)
