"""Measure maild.automail on real mail: recall on bounces, abuse reports and auto-replies, false positives on people.

Run from the repository root:  .venv/bin/python benchmarks/automail.py [--misses]

Every sisimai file is classified with a neutral SMTP envelope sender, so the table shows what the message
itself gives away (in production a null MAIL FROM is one more signal). sisimai's dos/ and mac/ copies are
used when present; otherwise every bsd/ file is also measured with CRLF and with bare-CR line endings.
Human mail (sisimai not/, talon's client replies, mikel-mail's plain mail) measures false positives.
Always exits 0: it measures, tests/test_automail.py judges. Corpora are read from ../shared/corpora.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the corpus loaders live in the test module

from maild.automail import classify, read_bounce  # noqa: E402
from tests.test_automail import (  # noqa: E402
    CORPORA,
    ENVELOPE_FROM,
    KNOWN_MISSES,
    LOOP_MARKER,
    NOT_HUMAN_IN_NOT,
    SISIMAI,
    Sample,
    human_samples,
    parsed_or_blank,
    sisimai_samples,
)


@dataclass
class Row:
    """Counts for one category of the corpus."""

    total: int = 0
    automatic: int = 0
    unparsed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    reports: int = 0
    with_recipients: int = 0
    with_status: int = 0
    with_message_id: int = 0
    misses: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "-")


def measure(samples: list[Sample], read_bounces: bool) -> dict[str, Row]:
    """Classify every sample; for bounces also read the report."""
    rows: dict[str, Row] = {}
    for sample in samples:
        row = rows.setdefault(sample.category, Row())
        raw = sample.raw()
        started = time.perf_counter()
        mail, parsed = parsed_or_blank(raw)
        verdict = classify(raw, mail, ENVELOPE_FROM, LOOP_MARKER)
        bounce = read_bounce(raw) if read_bounces and sample.category.startswith("bounce") else None
        elapsed = time.perf_counter() - started
        row.slowest = max(row.slowest, (elapsed, sample.name))
        row.total += 1
        row.unparsed += not parsed
        row.automatic += verdict.automatic
        row.kinds[verdict.kind] += 1
        if verdict.automatic != sample.automatic:
            row.misses.append(f"{sample.name}: {verdict.kind} ({verdict.reason})")
        if bounce is not None:
            row.reports += 1
            row.with_recipients += bool(bounce.recipients)
            row.with_status += bool(bounce.status)
            row.with_message_id += bounce.original_message_id is not None
    return rows


def print_rows(title: str, rows: dict[str, Row], human: bool, misses: bool) -> None:
    """One table: recall for machine categories, false positives for human ones."""
    score_name = "FP" if human else "recall"
    header = f"{title:<44} {'files':>5} {'auto':>5} {score_name:>7}  {'kinds':<44} {'slowest':>8}"
    print(header)
    print("-" * len(header))
    for category, row in rows.items():
        kinds = ", ".join(f"{kind} {count}" for kind, count in row.kinds.most_common())
        score = str(len(row.misses)) if human else f"{row.automatic / row.total:.1%}"
        print(
            f"{category:<44} {row.total:>5} {row.automatic:>5} {score:>7}  {kinds:<44} {row.slowest[0] * 1000:>5.1f} ms"
        )
        if row.unparsed:
            print(f"    parse_mail raised on {row.unparsed} (classified from the raw bytes with a blank ParsedMail)")
        if row.reports:
            print(
                f"    read_bounce: report {row.reports}/{row.total}, recipients {row.with_recipients}, "
                f"status {row.with_status}, original Message-ID {row.with_message_id}"
            )
        if misses:
            for miss in row.misses:
                print(f"    {'false positive' if human else 'missed'}: {miss}")
    print()


def main() -> int:
    """Print the tables."""
    parser = argparse.ArgumentParser(description="Measure maild.automail on the shared mail corpora.")
    parser.add_argument("--misses", action="store_true", help="list every missed or falsely flagged file")
    args = parser.parse_args()
    if not SISIMAI.is_dir():
        print(f"corpora not found at {CORPORA}: nothing to measure (CI provides ../shared/corpora)")
        return 0
    # mail-parser logs a warning for every MIME type it does not extract (rfc822-headers, report...).
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    started = time.perf_counter()
    for variant in ("bsd", "crlf", "cr"):
        samples = sisimai_samples(variant)
        if samples:
            title = f"sisimai {samples[0].variant}"
            print_rows(title, measure(samples, read_bounces=variant == "bsd"), human=False, misses=args.misses)
    print_rows("human mail (false positives)", measure(human_samples(), False), human=True, misses=True)
    print("Expected to stay human although sisimai labels them bounces:")
    for name, why in KNOWN_MISSES.items():
        print(f"    {name}: {why}")
    print("Expected to be automatic although they sit in sisimai's not/:")
    for name, why in NOT_HUMAN_IN_NOT.items():
        print(f"    {name}: {why}")
    print(f"total time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
