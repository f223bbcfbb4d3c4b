"""The throwaway Dovecot fixture: a real IMAP server that the stdlib and aioimaplib clients can use."""
# ruff: noqa: F811  (pytest fixtures imported from tests.dovecot are redefined as test arguments)

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aioimaplib import aioimaplib

from tests.dovecot import Dovecot, dovecot, start_dovecot  # noqa: F401
from tests.helpers import make_mail, message_id_of

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def aio_client(server: Dovecot) -> AsyncIterator[aioimaplib.IMAP4]:
    """A logged-in aioimaplib client, logged out and closed at the end (no unclosed transport left)."""
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=10)
    await client.wait_hello_from_server()
    try:
        response = await client.login(server.user, server.password)
        assert response.result == "OK", response.lines
        yield client
    finally:
        if client.get_state() != aioimaplib.LOGOUT and not client.protocol.transport.is_closing():
            with contextlib.suppress(asyncio.TimeoutError, aioimaplib.Abort):
                await client.logout()
        client.protocol.transport.close()


def test_append_count_and_message_ids(dovecot: Dovecot) -> None:
    """Mails appended through IMAP are counted and listed by Message-ID in arrival order."""
    raws = [make_mail(subject=f"Mail {n}") for n in range(3)]
    dovecot.append_many(raws)
    assert dovecot.count() == 3
    assert dovecot.message_ids() == [message_id_of(raw) for raw in raws]
    assert dovecot.count("maild/processed") == 0
    assert dovecot.message_ids("maild/processed") == []


def test_seen_append(dovecot: Dovecot) -> None:
    """A mail appended with seen=True carries \\Seen, the others do not."""
    dovecot.append(make_mail(subject="unread"))
    dovecot.append(make_mail(subject="read"), seen=True)
    assert ["\\Seen" in flags.split() for flags in dovecot.flags()] == [False, True]
    with dovecot.connect() as client:
        client.select("INBOX", readonly=True)
        assert client.uid("SEARCH", "UNSEEN") == ("OK", [b"1"])


def test_slash_separated_folder(dovecot: Dovecot) -> None:
    """The hierarchy separator is "/", so maild/processed can be created, filled and counted."""
    with dovecot.connect() as client:
        assert client.create("maild/processed")[0] == "OK"
        typ, listing = client.list('""', "*")
    assert typ == "OK"
    assert b'(\\HasNoChildren) "/" maild/processed' in listing
    dovecot.append(make_mail(), mailbox="maild/processed")
    dovecot.append(make_mail(), mailbox="Archive/2024")  # a missing folder is created by append
    assert (dovecot.count("maild/processed"), dovecot.count("Archive/2024"), dovecot.count()) == (1, 1, 0)


def test_restart_keeps_port_and_mail(dovecot: Dovecot) -> None:
    """After a restart the server listens on the same port and still holds the mail; stop is idempotent."""
    raw = make_mail()
    dovecot.append(raw)
    port = dovecot.port
    client = dovecot.connect()
    try:
        client.select("INBOX")
        dovecot.stop()
        dovecot.stop()
        with pytest.raises(imaplib.IMAP4.abort, match="shutting down"):
            client.noop()  # a connected client is cut off, as by a real outage
    finally:
        client.shutdown()  # imaplib's `with` would not close the socket after an abort
    with pytest.raises(ConnectionRefusedError):
        imaplib.IMAP4(dovecot.host, port, timeout=5)
    dovecot.start()
    assert dovecot.port == port
    assert dovecot.message_ids() == [message_id_of(raw)]


def test_imaplib_login_with_password_file_and_capabilities(dovecot: Dovecot) -> None:
    """The password file logs in with imaplib, and the server offers IDLE and MOVE; a wrong password fails."""
    password = dovecot.password_file().read_text().strip()
    with imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10) as client:
        assert client.login(dovecot.user, password)[0] == "OK"
        typ, data = client.capability()
    assert typ == "OK"
    assert {"IDLE", "MOVE", "UIDPLUS"} <= set(data[0].decode().split())
    with imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10) as client, pytest.raises(imaplib.IMAP4.error):
        client.login(dovecot.user, "wrong")


def test_two_servers_at_once(start_dovecot: Callable[[], Dovecot]) -> None:
    """Two Dovecots run side by side on distinct ports with distinct mail."""
    first, second = start_dovecot(), start_dovecot()
    assert first.port != second.port
    first.append(make_mail())
    assert (first.count(), second.count()) == (1, 0)


def test_aioimaplib_select_search_fetch_move(dovecot: Dovecot) -> None:
    """aioimaplib logs in, selects, searches and fetches full bodies by UID, and moves them to a subfolder."""
    raws = [make_mail(subject=f"Mail {n}", body="(unbalanced ( paren") for n in range(3)]
    dovecot.append_many(raws)

    async def scenario() -> None:
        async with aio_client(dovecot) as client:
            assert client.has_capability("IDLE") and client.has_capability("MOVE")
            selected = await client.select("INBOX")
            assert selected.result == "OK"
            assert b"3 EXISTS" in selected.lines
            assert any(re.fullmatch(rb"OK \[UIDVALIDITY \d+\] UIDs valid", line) for line in selected.lines)

            found = await client.uid_search("ALL")
            assert (found.result, found.lines[0]) == ("OK", b"1 2 3")

            fetched = await client.uid("fetch", "1:*", "(BODY.PEEK[])")
            assert fetched.result == "OK"
            bodies = [bytes(line) for line in fetched.lines if isinstance(line, bytearray)]
            assert bodies == raws
            assert fetched.lines[0].startswith(b"1 FETCH (UID 1 BODY[] {")

            created = await client.create("maild/processed")
            assert created.result == "OK"
            moved = await client.uid("move", "1:2", "maild/processed")
            assert moved.result == "OK"
            assert re.fullmatch(rb"OK \[COPYUID \d+ 1:2 1:2\] Moved UIDs\.", moved.lines[0])

    asyncio.run(scenario())
    assert dovecot.message_ids() == [message_id_of(raws[2])]
    assert dovecot.message_ids("maild/processed") == [message_id_of(raw) for raw in raws[:2]]


def test_aioimaplib_idle_push(dovecot: Dovecot) -> None:
    """An IDLEing aioimaplib client is pushed "N EXISTS" when a mail arrives, and IDLE ends cleanly on DONE."""

    async def scenario() -> None:
        async with aio_client(dovecot) as client:
            await client.select("INBOX")
            idle = await client.idle_start(timeout=30)
            assert client.has_pending_idle()
            await asyncio.to_thread(dovecot.append, make_mail())
            push = await client.wait_server_push(timeout=10)
            assert b"1 EXISTS" in push
            client.idle_done()
            done = await asyncio.wait_for(idle, 10)
            assert done.result == "OK"
            assert not client.has_pending_idle()
            found = await client.uid_search("ALL")
            assert found.lines[0] == b"1"

    asyncio.run(scenario())
