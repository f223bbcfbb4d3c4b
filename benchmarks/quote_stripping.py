"""Score maild.mailtext.new_text on the public reply-parser corpora and time it.

Run from the repository root:  .venv/bin/python benchmarks/quote_stripping.py [--no-baseline]

For each fixture set it prints how many fixtures give exactly the expected new text (the expectations are
the ones tests/test_mailtext.py asserts), the slowest file and its time, and, for comparison, the score of
mail-parser-reply used alone (``EmailReplyParser(...).parse_reply`` on the same text). Always exits 0:
it measures, the tests judge. The corpora are read from ../shared/corpora beside the checkout.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the expectations live in the test module

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped, unused-ignore]  # noqa: E402

from maild.mailtext import LANGUAGES, html_to_text, new_text  # noqa: E402
from tests import test_mailtext as expectations  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora"

Bodies = tuple[str | None, str | None]


@dataclass(frozen=True)
class Case:
    """One fixture: its file, how to read its bodies and how to judge a result."""

    path: Path
    load: Callable[[Path], Bodies]
    check: Callable[[str], bool]

    @property
    def label(self) -> str:
        """The fixture's file name."""
        return self.path.name


@dataclass
class Score:
    """Pass count and timings of one extractor over one fixture set."""

    passed: int = 0
    total: int = 0
    slowest: tuple[float, str] = (0.0, "-")
    failures: list[str] = field(default_factory=list)

    def add(self, label: str, ok: bool, seconds: float) -> None:
        """Record one fixture."""
        self.total += 1
        self.passed += ok
        if not ok:
            self.failures.append(label)
        self.slowest = max(self.slowest, (seconds, label))


def plain_file(path: Path) -> Bodies:
    """Bodies of a plain-text fixture."""
    return expectations.read_text(path), None


def html_file(path: Path) -> Bodies:
    """Bodies of an HTML fixture."""
    return None, path.read_text(encoding="utf-8", errors="replace")


def eml_file(path: Path) -> Bodies:
    """Bodies of an .eml fixture (text/plain and text/html, as maild's intake reads them)."""
    return expectations.eml_bodies(path)


def equals(expected: str) -> Callable[[str], bool]:
    """Exact comparison."""
    return lambda result: result == expected


def fixture_sets() -> dict[str, list[Case]]:
    """All fixture sets with their cases, in table order."""
    sets: dict[str, list[Case]] = {}
    talon = CORPORA / "talon"
    standard = talon / "standard_replies"
    sets["talon standard replies (.eml)"] = [
        Case(standard / f"{name}.eml", eml_file, equals(expectations.talon_expected(standard, name)))
        for name in expectations.TALON_STANDARD
    ]
    sets["talon HTML replies"] = [
        Case(
            talon / "html_replies" / f"{name}.html",
            html_file,
            lambda result: re.sub(r"\s", "", result) == expectations.TALON_HTML_EXPECTED,
        )
        for name in expectations.TALON_HTML
    ]
    sets["talon HTML/.eml extras"] = [
        Case(talon / "OLK_SRC_BODY_SECTION.html", html_file, equals("Reply")),
        Case(talon / "reply-separated-by-hr.html", html_file, equals("Hi\nthere\nBob")),
        Case(
            talon / "reply-quotations-share-block.eml",
            eml_file,
            lambda result: result.startswith("Hi Katharine.") and "From" not in result and "wrote" not in result,
        ),
    ]
    for corpus, table in expectations.PLAIN_CORPORA.items():
        cases = []
        for name, expected in sorted(table.items()):
            path = CORPORA / corpus / name
            fixture = expectations.read_text(path) if path.exists() else ""
            cases.append(Case(path, plain_file, equals(expectations.resolve(expected, fixture))))
        sets[corpus] = cases
    signature = talon / "signature" / "emails"
    bodies = [*sorted((signature / "stripped").glob("*_body")), signature / "P" / "johndoeexamplecom_body"]
    sets["talon signature bodies (untouched)"] = [
        Case(path, plain_file, equals(untouched(path))) for path in [*bodies, signature / "P" / "unicode_msg"]
    ]
    return sets


def untouched(path: Path) -> str:
    """A body without quotes, as new_text should return it (lines right-stripped)."""
    if not path.exists():
        return ""
    text = expectations.read_text(path).replace("\r\n", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


_LIBRARY = EmailReplyParser(languages=list(LANGUAGES))


def library_alone(plain: str | None, html: str | None) -> str:
    """mail-parser-reply's latest reply of the same body, lines right-stripped (no quote filtering)."""
    text = plain if plain and plain.strip() else html_to_text(html or "")
    reply = _LIBRARY.parse_reply(text) or ""
    return "\n".join(line.rstrip() for line in str(reply).split("\n")).strip()


def run(extractor: Callable[[str | None, str | None], str], cases: list[Case]) -> Score:
    """Score one extractor over one fixture set."""
    score = Score()
    for case in cases:
        plain, html = case.load(case.path)
        started = time.perf_counter()
        result = extractor(plain, html)
        elapsed = time.perf_counter() - started
        score.add(case.label, case.check(result), elapsed)
    return score


def main() -> int:
    """Print the score table."""
    parser = argparse.ArgumentParser(description="Score maild.mailtext.new_text on the reply-parser corpora.")
    parser.add_argument("--no-baseline", action="store_true", help="skip the mail-parser-reply-alone column")
    parser.add_argument("--failures", action="store_true", help="list the fixtures that fail")
    args = parser.parse_args()
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}: nothing to measure (CI provides ../shared/corpora)")
        return 0

    header = f"{'fixture set':<36} {'new_text':<9}  {'slowest file':<36} {'time':>9}"
    if not args.no_baseline:
        header += f"  {'library alone':<13} {'its slowest':>11}"
    print(header)
    print("-" * len(header))
    totals = [0, 0, 0, 0]
    for name, cases in fixture_sets().items():
        cases = [case for case in cases if case.path.is_file()]
        if not cases:
            print(f"{name:<36} {'missing':>9}")
            continue
        ours = run(new_text, cases)
        seconds, slowest = ours.slowest
        line = f"{name:<36} {f'{ours.passed}/{ours.total}':<9}  {slowest:<36} {seconds * 1000:>6.1f} ms"
        totals[0] += ours.passed
        totals[1] += ours.total
        if not args.no_baseline:
            base = run(library_alone, cases)
            line += f"  {f'{base.passed}/{base.total}':<13} {base.slowest[0] * 1000:>8.1f} ms"
            totals[2] += base.passed
            totals[3] += base.total
        print(line)
        if args.failures and ours.failures:
            print(f"    failing: {', '.join(ours.failures)}")
    print("-" * len(header))
    summary = f"{'all sets':<36} {f'{totals[0]}/{totals[1]}':<9}"
    if not args.no_baseline:
        summary += " " * 49 + f"  {totals[2]}/{totals[3]}"
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
