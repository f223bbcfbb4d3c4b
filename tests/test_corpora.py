"""Real-world and hostile mail through the whole pipeline: nothing escapes, everything is kept or marked."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from pathlib import Path

import pytest
import test.test_email

from maild import mime
from maild.app import build_pipeline, build_services
from maild.config import parse_config
from maild.models import Envelope
from maild.spool import Spooler
from maild.store import Store
from maild.store.inbound import DONE, DROPPED, SHUNTED
from tests.helpers import CORPORA

CPYTHON_EMAIL_DATA = Path(os.path.dirname(test.test_email.__file__)) / "data"


def corpus_files(*folders: Path) -> list[Path]:
    files = []
    for folder in folders:
        if not folder.is_dir():
            pytest.skip(f"corpus not found at {folder}: CI provides ../shared/corpora beside the checkout")
        files += sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "ORIGIN.txt")
    return files


def run_corpus(tmp_path: Path, files: list[Path]) -> Counter[str]:
    """Spool and process every file as a mail to support@; the count of each final state."""
    config = parse_config(
        {
            "maild": {"data_dir": str(tmp_path / "data")},
            "mail": {"support_address": "support@example.com", "ticket_prefix": "ACME"},
            "agents": [{"email": "ana@example.com"}],
        },
        tmp_path,
    )

    async def scenario() -> Counter[str]:
        store = await Store.open(config.db_path)
        try:
            pipeline, spooler, states = (
                build_pipeline(build_services(config, store.clock), store),
                Spooler(store),
                Counter[str](),
            )
            for path in files:
                spooled = await spooler.put(
                    Envelope("test", "sender@example.org", ("support@example.com",)), path.read_bytes()
                )
                if spooled.inbound_id is None:
                    states["duplicate"] += 1
                    continue
                if spooled.set_aside:
                    # Another file's Message-ID over another body is kept shunted at the spool; replayed, as an
                    # operator would, so that every file is still decoded and processed.
                    async with store.transaction() as tx:
                        assert await tx.requeue_inbound(spooled.inbound_id), path
                result = await pipeline.process(spooled.inbound_id)
                assert result is not None, path
                assert result.state in (DONE, DROPPED, SHUNTED), path
                if result.state == SHUNTED:
                    assert result.reason, f"{path}: shunted without a reason"
                states[result.state] += 1
            return states
        finally:
            await store.close()

    return asyncio.run(scenario())


def test_cpython_email_test_data_goes_through(tmp_path: Path) -> None:
    """Every message of CPython's email test data becomes a ticket or a marked, kept failure."""
    files = sorted(p for p in CPYTHON_EMAIL_DATA.glob("msg_*.txt"))
    assert len(files) > 40
    states = run_corpus(tmp_path, files)
    assert states[DONE] + states[DROPPED] + states[SHUNTED] + states["duplicate"] == len(files)
    assert states[SHUNTED] == 0, states


def test_mikel_mail_fixtures_go_through(tmp_path: Path) -> None:
    """The mikel/mail fixtures (bad dates, encodings, boundaries, charsets) all become tickets."""
    files = corpus_files(CORPORA / "mikel-mail")
    states = run_corpus(tmp_path, files)
    assert states[SHUNTED] == 0, states
    assert sum(states.values()) == len(files)


def test_fuzzer_seeds_go_through(tmp_path: Path) -> None:
    """The email-parser fuzzer seeds (NULs, junk, memory blow-ups) never raise out of the pipeline."""
    files = corpus_files(CORPORA / "python-library-fuzzers-corp-email")
    states = run_corpus(tmp_path, files)
    assert sum(states.values()) == len(files)
    assert states[SHUNTED] == 0, states


def _decoded(raw: bytes) -> dict[str, object] | str:
    """What parse_mail makes of ``raw``, field by field, or why it refused it."""
    try:
        mail = mime.parse_mail(raw, "<fallback@x>")
    except mime.UnparseableMail as refused:
        return f"refused: {refused}"
    decoded = {f.name: getattr(mail, f.name) for f in dataclasses.fields(mail) if f.compare}
    # mail-parser names a nameless attachment at random.
    decoded["attachments"] = [(part.content_type, part.data) for part in mail.attachments]
    return decoded


def test_leaving_out_received_fields_changes_nothing_else_maild_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_mail hands mail-parser the message without its Received fields (they cost ~0.1 ms each and
    nothing reads them): over CPython's email data and every corpus file, what it decodes is what it decoded
    from the whole message, but for the Received header itself."""
    files = [p for p in corpus_files(CORPORA) if p.suffix not in (".md", ".tsv")]
    files += sorted(CPYTHON_EMAIL_DATA.glob("msg_*.txt"))
    with_received = 0
    for path in files:
        raw = path.read_bytes()
        trimmed = _decoded(raw)
        with monkeypatch.context() as patch:
            patch.setattr(mime, "without_received", lambda raw: raw)
            whole = _decoded(raw)
        if isinstance(whole, dict) and isinstance(headers := whole["headers"], dict) and "received" in headers:
            with_received += 1
            whole["headers"] = {k: v for k, v in headers.items() if k != "received"}
        assert trimmed == whole, path
    assert with_received > 300


def test_every_shared_corpus_file_goes_through(tmp_path: Path) -> None:
    """Every file of ../shared/corpora (bounces, replies, fixtures) becomes a ticket, a kept automatic mail or
    a marked failure; nothing raises."""
    files = corpus_files(CORPORA)
    files = [p for p in files if p.suffix not in (".md", ".tsv")]
    assert len(files) > 1000
    states = run_corpus(tmp_path, files)
    assert sum(states.values()) == len(files)
    assert states[SHUNTED] == 0, states
