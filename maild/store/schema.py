"""Numbered schema migrations; `user_version` records how far a database has come.

A migration is appended, never edited, once it has shipped: existing stores upgrade in place at start.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: spool, tickets, timeline, threading index, history and outbox.
    """
    CREATE TABLE inbound (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        source TEXT NOT NULL,
        peer TEXT NOT NULL DEFAULT '',
        mail_from TEXT NOT NULL,
        rcpt_to TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        raw BLOB NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        step TEXT,
        error TEXT,
        ticket_id INTEGER,
        processed_at TEXT
    );
    CREATE INDEX inbound_by_state ON inbound (state, id);

    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        priority TEXT NOT NULL,
        queue TEXT NOT NULL,
        category TEXT,
        requester TEXT NOT NULL,
        assignee TEXT,
        language TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        resolved_at TEXT,
        resolved_by TEXT,
        resolution_method TEXT,
        resolution_note TEXT,
        due_at TEXT,
        first_response_due_at TEXT,
        sla_breached INTEGER NOT NULL DEFAULT 0,
        agent_seconds INTEGER NOT NULL DEFAULT 0,
        customer_seconds INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tickets_by_status ON tickets (status, id);
    CREATE INDEX tickets_by_queue ON tickets (queue, id);

    CREATE TABLE ticket_tags (
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        tag TEXT NOT NULL,
        PRIMARY KEY (ticket_id, tag)
    ) WITHOUT ROWID;

    CREATE TABLE followers (
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        address TEXT NOT NULL,
        PRIMARY KEY (ticket_id, address)
    ) WITHOUT ROWID;

    CREATE TABLE links (
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        other_id INTEGER NOT NULL REFERENCES tickets (id),
        PRIMARY KEY (ticket_id, other_id)
    ) WITHOUT ROWID;

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        inbound_id INTEGER REFERENCES inbound (id),
        direction TEXT NOT NULL,
        visibility TEXT NOT NULL,
        author TEXT NOT NULL,
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_by_ticket ON messages (ticket_id, id);

    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id),
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE INDEX attachments_by_message ON attachments (message_id);

    -- Every Message-ID we received or sent, so In-Reply-To/References find the ticket in one lookup.
    CREATE TABLE thread_ids (
        message_id TEXT PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        direction TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT,
        new TEXT,
        cause TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX history_by_ticket ON history (ticket_id, id);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER REFERENCES tickets (id),
        kind TEXT NOT NULL,
        message_id TEXT NOT NULL,
        mail_from TEXT NOT NULL,
        rcpt_to TEXT NOT NULL,
        raw BLOB NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        lease_until TEXT,
        last_error TEXT,
        failures TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    """,
    # 2: agents' time entries (#time), for invoicing reports; the date a waiting_until ticket waits for.
    """
    ALTER TABLE tickets ADD COLUMN wait_until TEXT;
    CREATE TABLE time_entries (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        message_id INTEGER REFERENCES messages (id),
        agent TEXT NOT NULL,
        minutes INTEGER NOT NULL CHECK (minutes > 0),
        billable INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL
    );
    CREATE INDEX time_entries_by_ticket ON time_entries (ticket_id, id);
    CREATE INDEX time_entries_by_time ON time_entries (at);
    """,
    # 3: lifecycle: when the current side of the clock started, the first agent reply, and timers.
    """
    ALTER TABLE tickets ADD COLUMN clock_since TEXT;
    ALTER TABLE tickets ADD COLUMN first_responded_at TEXT;
    CREATE TABLE timers (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        kind TEXT NOT NULL,
        due_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX timers_due ON timers (state, due_at);
    CREATE INDEX timers_by_ticket ON timers (ticket_id, state);
    CREATE INDEX outbox_by_kind ON outbox (kind, created_at);
    CREATE INDEX outbox_by_message_id ON outbox (message_id);
    CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        outbox_id INTEGER NOT NULL REFERENCES outbox (id),
        inbound_id INTEGER NOT NULL REFERENCES inbound (id),
        recipients TEXT NOT NULL,
        status TEXT NOT NULL,
        permanent INTEGER NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX bounces_by_outbox ON bounces (outbox_id);
    """,
    # 4: IMAP intake: per mailbox, the UIDVALIDITY seen and the highest UID handled.
    """
    CREATE TABLE imap_state (
        mailbox TEXT PRIMARY KEY,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: indexes the ingest benchmark showed missing on a large store: a ticket's outgoing thread (for the
    # References of every reply), the per-sender acknowledgement limit, and expired delivery leases.
    """
    CREATE INDEX outbox_by_ticket ON outbox (ticket_id, kind);
    CREATE INDEX outbox_by_rcpt ON outbox (kind, rcpt_to, created_at);
    CREATE INDEX outbox_leases ON outbox (state, lease_until);
    """,
    # 6: `#merge`: a merged ticket names the ticket its mail, history of record and token now lead to.
    """
    ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets (id);
    """,
    # 7: `ticket list --requester/--assignee`, a help desk's everyday question ("what else has this customer
    # asked?", "what is on my plate?"), scanned the whole tickets table: 0.5 s on 1,000,000 tickets.
    """
    CREATE INDEX tickets_by_requester ON tickets (requester, id);
    CREATE INDEX tickets_by_assignee ON tickets (assignee, id);
    """,
    # 8: `[business_hours]`: how much open time the SLA clock has paused waiting for the customer, so a new
    # priority's due dates keep the pauses. Until now every hour counted, so the pauses so far are the
    # customer's side of the clock.
    """
    ALTER TABLE tickets ADD COLUMN sla_paused_seconds INTEGER NOT NULL DEFAULT 0;
    UPDATE tickets SET sla_paused_seconds = customer_seconds;
    """,
    # 9: the References of every notice and relay read the newest outbox rows of one audience of a ticket;
    # by (ticket_id, kind) that meant sorting all of the ticket's rows: 2.6 ms a mail on a ticket of 2,000.
    # Indexed by the audience, the prefix of kind up to its dot (store.outbox.AUDIENCE, spelled the same),
    # it is a walk of a few entries. It serves every lookup by ticket that the old index did.
    """
    CREATE INDEX outbox_by_audience ON outbox (ticket_id, substr(kind, 1, instr(kind, '.')));
    DROP INDEX outbox_by_ticket;
    """,
    # 10: open tickets follow a change of `[sla.*]` or `[business_hours]` (maild.sla_settings): the store keeps
    # the settings its due dates were computed with, and how far `#postpone` moved each ticket's, which a
    # recomputation keeps. Those made before are inferred at the first start (Lifecycle.adopt_postponement).
    """
    ALTER TABLE tickets ADD COLUMN sla_postponed_seconds INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 11: `[sla.*] warn_before`: the due date the agents were last warned of, so each is warned of once.
    """
    ALTER TABLE tickets ADD COLUMN sla_warned_for TEXT;
    """,
    # 12: the agents' digest lists each agent's open tickets and the unassigned ones of their queues; by
    # tickets_by_assignee that read all of an agent's tickets of all time (0.6 s on 1,000,000), inside the
    # transaction that holds the store. Open tickets are few: a partial index of them alone. Its condition is
    # store.tickets.OPEN, spelled the same.
    """
    CREATE INDEX tickets_open ON tickets (assignee, queue) WHERE status NOT IN ('resolved', 'closed');
    """,
    # 13: `maild erase` finds everything a ticket holds by keys: the received mails that went to it (dropped
    # ones included, which left no message), the tickets merged into it, and whether an attachment's file is
    # still named by another message once a ticket's are gone. `[retention]` finds the tickets closed long
    # ago among the closed ones (most of a store) by when they last changed.
    """
    CREATE INDEX inbound_by_ticket ON inbound (ticket_id) WHERE ticket_id IS NOT NULL;
    CREATE INDEX tickets_merged ON tickets (merged_into) WHERE merged_into IS NOT NULL;
    CREATE INDEX attachments_by_sha256 ON attachments (sha256);
    CREATE INDEX tickets_closed ON tickets (updated_at) WHERE status = 'closed';
    """,
    # 14: `#block`: senders whose mail is refused (stored, dropped, never answered), and who blocked them where.
    """
    CREATE TABLE blocked_senders (
        address TEXT PRIMARY KEY,
        blocked_by TEXT NOT NULL,
        blocked_at TEXT NOT NULL,
        ticket_id INTEGER
    ) WITHOUT ROWID;
    """,
)
