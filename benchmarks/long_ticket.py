"""What a long ticket costs each later mail: `thread_chain` (the References of every notice and relay) on
tickets of a few to thousands of mails, in a fresh store.

Run from the repository root:

    .venv/bin/python benchmarks/long_ticket.py [--mails 3,20,200,2000] [--repo PATH]

Each ticket gets N public customer mails, and for each a reply to the customer and a notice to the agent
with a 6 KB raw mail, as the daemon queues them. It prints the median time of one call, warm cache, on the
event loop's thread where the daemon runs it. With ``--repo`` it measures another tree (a `git worktree` of
an older commit), to compare. Always exits 0: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = b"x" * 6000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", default="3,20,200,2000", help="ticket lengths, comma-separated")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per ticket (default 50)")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the tree whose maild is measured")
    return parser.parse_args()


async def measure(lengths: list[int], calls: int, workdir: Path) -> dict[int, float]:
    from maild.store import Store

    store = await Store.open(workdir / "maild.sqlite3")
    medians: dict[int, float] = {}
    try:
        for length in lengths:
            async with store.transaction() as tx:
                ticket = await tx.create_ticket(
                    subject="s", requester="c@x", queue="default", priority="normal", language="en", status="open"
                )
                for n in range(length):
                    await tx.add_message(
                        ticket_id=ticket.id,
                        inbound_id=None,
                        direction="in",
                        visibility="public",
                        author="c@x",
                        message_id=f"<in.{ticket.id}.{n}@x>",
                        subject="s",
                        text="hello",
                    )
                    for kind in ("customer.reply", "agent.customer_reply"):
                        await tx.enqueue_mail(
                            ticket_id=ticket.id,
                            kind=kind,
                            message_id=f"<{kind}.{ticket.id}.{n}@x>",
                            mail_from="support@x",
                            rcpt_to=["c@x"],
                            raw=RAW,
                        )
            async with store.snapshot() as tx:
                await tx.thread_chain(ticket.id, "customer")  # warm the cache
                times = []
                for _ in range(calls):
                    began = time.perf_counter()
                    await tx.thread_chain(ticket.id, "customer")
                    times.append(time.perf_counter() - began)
            medians[length] = statistics.median(times)
    finally:
        await store.close()
    return medians


def main() -> int:
    args = parse_args()
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))
    lengths = [int(n) for n in args.mails.replace(",", " ").split()]
    workdir = Path(tempfile.mkdtemp(prefix="maild-long-ticket-"))
    try:
        medians = asyncio.run(measure(lengths, args.calls, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import maild

    print(f"{Path(maild.__file__).parent}: thread_chain on a ticket of N customer mails (+2 queued mails each)")
    for length, seconds in medians.items():
        print(f"  N = {length:>6,}   {seconds * 1e6:10,.0f} us per call (median of {args.calls})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
