"""CPU per processed mail, per pipeline step and per delivery attempt, measured in one process.

Run from the repository root:

    .venv/bin/python benchmarks/pipeline_cpu.py [--mails N] [--loop uvloop|asyncio] [--repo PATH] [--delivered]

ingest.py's rates swing with the load on a shared machine; CPU seconds per mail swing much less, and two
trees measured back to back compare fairly. This spools ingest.py's mail mix (``--mails``) into a fresh store
seeded with 200 open tickets, then runs maild's own pipeline and outbound worker over it, with no SMTP and
no other load, and prints process CPU (all threads, aiosqlite's included) per mail.

To see what a commit changed, measure both sides in turn, a few times:

    git worktree add /tmp/before <commit>~1
    .venv/bin/python benchmarks/pipeline_cpu.py --repo /tmp/before --loop asyncio
    .venv/bin/python benchmarks/pipeline_cpu.py

(``--loop asyncio`` for trees from before maild ran on uvloop.) ``--delivered`` puts in front of each mail
the trace fields it would carry coming from a large mail provider through an MX and its content filter
(``DELIVERED``: five Received, DKIM and Authentication-Results fields, ~3 KB), as mail reaches maild in
production; ingest.py's mails have none. Always exits 0: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent

# What Postfix, amavis and Gmail write above a mail sent from Gmail to support@example.com (values made up).
DELIVERED = """\
Return-Path: <jane.doe@gmail.com>
Delivered-To: support@example.com
Received: from mx.example.com
        by mail.example.com with LMTP
        id 8Bq3LZ5xxWdGYwAAd0xk8A
        (envelope-from <jane.doe@gmail.com>)
        for <support@example.com>; Mon, 03 Mar 2025 10:00:03 +0100
Received: from localhost (localhost [127.0.0.1])
        by mx.example.com (Postfix) with ESMTP id 4Zx1Yq2Kj9z9sWd
        for <support@example.com>; Mon,  3 Mar 2025 10:00:02 +0100 (CET)
X-Virus-Scanned: Debian amavis at example.com
Received: from mx.example.com ([127.0.0.1])
        by localhost (mx.example.com [127.0.0.1]) (amavis, port 10024) with ESMTP
        id 3nJx0mQkYb7S for <support@example.com>;
        Mon,  3 Mar 2025 10:00:02 +0100 (CET)
Authentication-Results: mx.example.com;
        dkim=pass (2048-bit key; unprotected) header.d=gmail.com header.i=@gmail.com
        header.a=rsa-sha256 header.s=20230601 header.b=AbCdEfGh;
        dmarc=pass (p=none dis=none) header.from=gmail.com;
        spf=pass (mailfrom) smtp.mailfrom=gmail.com (client-ip=209.85.221.41;
        helo=mail-wr1-f41.google.com; envelope-from=jane.doe@gmail.com; receiver=example.com)
Received: from mail-wr1-f41.google.com (mail-wr1-f41.google.com [209.85.221.41])
        (using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)
        key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
        (No client certificate requested)
        by mx.example.com (Postfix) with ESMTPS id 4Zx1Yq2Kj9z9sWd
        for <support@example.com>; Mon,  3 Mar 2025 10:00:01 +0100 (CET)
Received: by mail-wr1-f41.google.com with SMTP id ffacd0b85a97d-390e3b3d3f4so1234567f8f.2
        for <support@example.com>; Mon, 03 Mar 2025 01:00:00 -0800 (PST)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
        d=gmail.com; s=20230601; t=1741000000; x=1741604800; darn=example.com;
        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject
         :date:message-id:reply-to;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
        b=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01
         23456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUv
         WxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp==
X-Google-DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
        d=1e100.net; s=20230601; t=1741000000; x=1741604800;
        h=to:subject:message-id:date:from:mime-version:x-gm-message-state
         :from:to:cc:subject:date:message-id:reply-to;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
        b=ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210ZyXwVuTsRqPoNmLkJiHgFeDcBa98
         76543210ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210ZyXwVuTsRqPoNmLkJiHg==
X-Gm-Message-State: AOJu0YzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlM
        nOpQrStUvWxYz0123456789
X-Gm-Gg: ASbGnctAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUv
X-Google-Smtp-Source: AGHT+IFAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp==
X-Received: by 2002:a05:6000:1f8c:b0:390:f0ff:2c10 with SMTP id bq12-20020a0560001f8c00b00390f0ff2c10mr12345678wrb.1;
        Mon, 03 Mar 2025 01:00:00 -0800 (PST)
""".replace("\n", "\r\n").encode("ascii")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000, help="mails of ingest.py's mix (default 1,000)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (maild: uvloop)")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the tree whose maild is measured")
    parser.add_argument("--delivered", action="store_true", help="each mail with an MTA's trace fields in front")
    return parser.parse_args()


async def measure(mails: int, workdir: Path, delivered: bool) -> dict[str, Any]:
    import ingest  # from --repo, like maild

    from maild.app import build_pipeline, build_services
    from maild.config import load_config
    from maild.logs import configure_logging
    from maild.models import Envelope
    from maild.outbound import OutboundWorker, make_transport
    from maild.pipeline import Runner
    from maild.spool import dedupe_key
    from maild.store import Store

    data_dir = workdir / "data"
    data_dir.mkdir()
    config_path = workdir / "maild.toml"
    outbound = ingest.OUTBOUND_REFUSED.format(port=ingest.free_port()).strip()
    config_path.write_text(ingest.CONFIG.format(data_dir=data_dir, log_level="info", port=2525, outbound=outbound))
    config = load_config(config_path)
    with (workdir / "maild.log").open("w") as log:
        configure_logging("info", log)  # JSON lines to a file, as the daemon writes them
        store = await Store.open(config.db_path)  # creates and migrates
        await store.close()
        targets, _ = ingest.prefill(config.db_path, 200, 1, 200)
        store = await Store.open(config.db_path)
        try:
            pipeline = build_pipeline(build_services(config, store.clock), store)
            steps: dict[str, float] = defaultdict(float)
            for handler in pipeline.handlers:
                handler.process = _timed(handler.process, handler.name, steps)  # type: ignore[method-assign, assignment]
            # A step's work before the transaction counts as the step's (trees before 7daad9f have none).
            for preparer in getattr(pipeline, "preparers", ()):
                preparer.prepare = _timed(preparer.prepare, preparer.name, steps)  # type: ignore[method-assign, assignment]
            ids: list[int] = []
            spool_cpu: dict[int, float] = {}
            built = ingest.build_mails(mails, "cpu", targets)
            if delivered:
                built = [dataclasses.replace(mail, raw=DELIVERED + mail.raw) for mail in built]
            half = len(built) // 2
            # The first half one transaction per mail, as the spool commits a lone session; the second in
            # transactions of 8: the difference is what a transaction boundary (BEGIN, COMMIT, fsync) costs.
            for per_commit, chunk in ((1, built[:half]), (8, built[half:])):
                started = time.process_time()
                for start in range(0, len(chunk), per_commit):
                    async with store.transaction() as tx:
                        for mail in chunk[start : start + per_commit]:
                            envelope = Envelope(source="smtp", mail_from=mail.mail_from, rcpt_to=(ingest.SUPPORT,))
                            inbound_id = await tx.insert_inbound(envelope, dedupe_key(mail.raw), mail.raw)
                            assert inbound_id is not None, "every mail of the mix has its own Message-ID"
                            ids.append(inbound_id)
                spool_cpu[per_commit] = (time.process_time() - started) / len(chunk)
            # Drained as the daemon's runner drains its spool (which may commit waiting messages together).
            cpu, wall = time.process_time(), time.perf_counter()
            assert await Runner(store, pipeline, asyncio.Event(), ()).drain() == len(ids)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            worker = OutboundWorker(
                store, config.outbound, make_transport(config.outbound), asyncio.Event(), store.clock
            )
            out_cpu = time.process_time()
            await worker.work()  # one attempt per queued mail: a refused connect, a retry in an hour
            out_cpu = time.process_time() - out_cpu
            async with store.snapshot() as tx:
                outgoing = len(await tx.all("SELECT id FROM outbox"))
        finally:
            await store.close()
    return {
        "mails": mails,
        "spool_ms": 1e3 * spool_cpu[1],
        "spool_batched_ms": 1e3 * spool_cpu[8],
        "process_ms": 1e3 * cpu / mails,
        "process_wall_ms": 1e3 * wall / mails,
        "steps_ms": {name: 1e3 * seconds / mails for name, seconds in steps.items()},
        "outgoing": outgoing,
        "outbound_ms": 1e3 * out_cpu / mails,
    }


Step = Callable[..., Awaitable[Any]]


def _timed(process: Step, name: str, totals: dict[str, float]) -> Step:
    async def timed(*args: Any) -> Any:
        started = time.process_time()
        try:
            return await process(*args)
        finally:
            totals[name] += time.process_time() - started

    return timed


def main() -> int:
    args = parse_args()
    repo = args.repo.resolve()
    sys.path[:0] = [str(repo), str(repo / "benchmarks")]
    workdir = Path(tempfile.mkdtemp(prefix="maild-cpu-"))
    try:
        run = uvloop.run if args.loop == "uvloop" else asyncio.run
        result = run(measure(args.mails, workdir, args.delivered))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import maild

    tree = Path(maild.__file__).parent
    mix = "ingest.py's mix, delivered by an MTA" if args.delivered else "ingest.py's mix"
    print(f"{tree} on {args.loop}, {result['mails']:,} mails of {mix}; CPU of all threads per mail:")
    print(f"  spool, one transaction each   {result['spool_ms']:6.2f} ms")
    print(f"  spool, 8 per transaction      {result['spool_batched_ms']:6.2f} ms")
    print(f"  pipeline                      {result['process_ms']:6.2f} ms ({result['process_wall_ms']:.2f} ms wall)")
    for name, ms in sorted(result["steps_ms"].items(), key=lambda item: -item[1]):
        print(f"    {name:<27} {ms:6.3f} ms")
    print(f"  delivery attempts             {result['outbound_ms']:6.2f} ms ({result['outgoing']:,} outgoing mails)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
