"""Time the consortium's shared list at a million entries: the look-up a booking makes,
applying a 10,000-entry increment, and the memory the list takes; and compare the keyed
pseudonym (HMAC) with an oblivious PRF (when the ``voprf`` package is importable).

Run: ``python bench/consortium.py [--entries N] [--lookups N]``. Everything printed is
measured in this run, with the load average before and after (the machine is shared).

- Load: N entries from other members are written to a SQLite database, then a
  ``Consortium`` builds its index from the database (what a server does at start).
- Look-up: ``Consortium.check(identity, phone, payer, device)``, as a booking would call it,
  for patients mostly not listed (1 in 10 listed); wall clock and CPU time per call.
- Increment: a second member publishes 10,000 entries; the subscriber verifies the pages
  (signature, hash chain), stores them and applies them to its in-memory index.
- Memory: the index's arrays, and the process's resident size before and after loading."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import pathlib
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from fairslot.clock import FixedClock
from fairslot.consortium import Action, Consortium, EntryKind, NewEntry, SubjectType
from fairslot.consortium.feed import Page, genesis, verify_page
from fairslot.consortium.pseudonyms import EpochKey, pseudonym
from fairslot.consortium.signing import MemberKey
from fairslot.crypto import Keyring
from fairslot.storage import tables as t
from fairslot.storage.database import make_engine
from fairslot.storage.keys import bind_keyring
from fairslot.storage.migrate import upgrade

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SUBJECTS = list(SubjectType)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fake_id(rng: random.Random) -> str:
    return (f"{rng.randint(110000, 659999)}{rng.randint(19400101, 20101228)}"
            f"{rng.randint(0, 9999):04d}")


def fill(engine: sa.Engine, entries: int, epoch: EpochKey, rng: random.Random) -> list[str]:
    """Write ``entries`` subscribed entries from 30 members; return some listed IDs."""
    listed: list[str] = []
    members = [f"hosp-{n:02d}" for n in range(30)]
    with engine.begin() as conn:
        conn.execute(t.consortium_self.insert().values(
            id=1, member="bench", name="bench", signing_key=MemberKey.generate("bench").secret(),
            public_key=MemberKey.generate("bench").public_text, created_at=NOW))
        conn.execute(t.consortium_epochs.insert().values(epoch=1, key=epoch.text(),
                                                         added_at=NOW))
        for m in members:
            conn.execute(t.consortium_members.insert().values(
                code=m, name=m, url="http://x", public_key=MemberKey.generate(m).public_text,
                hub=False, added_at=NOW, version=0, chain=genesis(m)))
        conn.execute(t.consortium_policies.insert().values(key="ring_member", action="refuse",
                                                           updated_at=NOW))
        batch: list[dict[str, Any]] = []
        for n in range(entries):
            subject = SUBJECTS[n % 4]
            value = fake_id(rng) if subject is SubjectType.IDENTITY else f"{subject}-{n}"
            if subject is SubjectType.IDENTITY and len(listed) < 10_000:
                listed.append(value)
            batch.append({"member": members[n % 30], "entry_no": n + 1, "entry_version": 1,
                          "withdrawn": False, "kind": "ring_member", "role": "member",
                          "severity": 2, "starts_at": NOW - dt.timedelta(days=1),
                          "expires_at": NOW + dt.timedelta(days=365),
                          "subject": subject.value,
                          "pseudonym": pseudonym(epoch, subject, value), "epoch": 1,
                          "updated_at": NOW})
            if len(batch) == 50_000:
                conn.execute(t.consortium_entries.insert(), batch)
                batch = []
        if batch:
            conn.execute(t.consortium_entries.insert(), batch)
    return listed


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bench_lookups(c: Consortium, listed: list[str], lookups: int,
                  rng: random.Random) -> None:
    people = []
    for n in range(lookups):
        identity = rng.choice(listed) if n % 10 == 0 else fake_id(rng)
        people.append((identity, f"139{rng.randint(0, 99_999_999):08d}",
                       f"alipay:{rng.randint(0, 10**9)}", secrets.token_hex(8)))
    hits = sum(bool(c.check(identity=p[0])) for p in people[:1000:10])
    assert hits == 100, "every listed identity must be found"
    walls, cpus = [], []
    for _ in range(5):
        gc.collect()
        gc.disable()
        wall, cpu = time.perf_counter(), time.process_time()
        for identity, phone, payer, device in people:
            c.check(identity=identity, phone=phone, payer=payer, device=device)
        walls.append((time.perf_counter() - wall) / lookups * 1e6)
        cpus.append((time.process_time() - cpu) / lookups * 1e6)
        gc.enable()
    print(f"look-up per booking (identity, phone, payer, device; 1 in 10 listed), {lookups} "
          f"calls x5: wall best {min(walls):.1f} us, median {statistics.median(walls):.1f} us; "
          f"CPU best {min(cpus):.1f} us (target < 100 us)")


def bench_increment(c: Consortium, tmp: pathlib.Path, epoch: EpochKey, size: int,
                    rng: random.Random) -> None:
    publisher_engine = make_engine(f"sqlite:///{tmp / 'publisher.db'}")
    bind_keyring(publisher_engine, Keyring(secrets.token_bytes(32)))
    upgrade(publisher_engine)
    clock = FixedClock(NOW)
    publisher = Consortium(publisher_engine, clock)
    key = publisher.create_key("hosp-new", "new", actor="bench")
    publisher.store.add_epoch(epoch, NOW, "bench")
    publisher.refresh()
    items = [NewEntry(EntryKind.RING_MEMBER, None, 2, NOW, NOW + dt.timedelta(days=90),
                      SubjectType.IDENTITY, fake_id(rng), "bench") for _ in range(size)]
    wall, _, _ = timed(lambda: publisher.publish(items, actor="bench"))
    print(f"publishing {size} entries at the issuer (one transaction, SQLite): {wall:.2f} s")
    c.add_member("hosp-new", "http://x", key.public_text, actor="bench")
    pages = []
    since = 0
    while True:
        page = publisher.store.feed_page("hosp-new", since, NOW)
        assert page is not None
        pages.append(json.dumps(page.as_json()).encode())
        since = page.head.version
        if since >= page.head.latest:
            break
    feed_bytes = sum(len(p) for p in pages)

    def verify_and_store() -> int:
        applied = 0
        for raw in pages:
            member = c.store.member("hosp-new")
            assert member is not None
            verified = verify_page("hosp-new", key.private.public_key(), member.version,
                                   member.chain, Page.from_json(json.loads(raw)))
            applied += len(c.store.apply("hosp-new", verified, NOW, "bench"))
        return applied

    wall_v, cpu_v, applied = timed(verify_and_store)
    before = len(c._state.index)
    wall_i, cpu_i, _ = timed(c.refresh)
    assert applied == size and len(c._state.index) == before + size
    assert c.check(identity=items[0].identifier)
    print(f"increment of {size} entries ({len(pages)} pages, {feed_bytes / 1e6:.1f} MB of "
          f"JSON): parse + verify + store {wall_v:.2f} s (CPU {cpu_v:.2f} s); applying to the "
          f"in-memory index of {before:,} {wall_i:.3f} s (CPU {cpu_i:.3f} s); total "
          f"{wall_v + wall_i:.2f} s")
    publisher_engine.dispose()


def bench_pseudonyms(rng: random.Random) -> None:
    epoch = EpochKey.new(1)
    values = [fake_id(rng) for _ in range(20_000)]
    wall, cpu, _ = timed(lambda: [pseudonym(epoch, SubjectType.IDENTITY, v) for v in values])
    hmac_us = cpu / len(values) * 1e6  # core-hours below are CPU time, whatever the load
    print(f"HMAC pseudonym: {hmac_us:.2f} us CPU per identifier "
          f"({wall / len(values) * 1e6:.2f} us wall)")
    # A keyed pseudonym over a small space can be reversed by whoever holds the key.
    regions = sum(1 for line in (pathlib.Path(__import__("stdnum").__file__).parent / "cn" /
                                 "loc.dat").read_text().splitlines() if line.startswith(" "))
    id_space = regions * 36_525 * 1000
    phone_space = 7 * 10 * 10**8
    print(f"  with a leaked key, trying every ID number ({regions} county codes x 100 years "
          f"x 1000 = {id_space:.1e}) takes {id_space * hmac_us / 1e6 / 3600:,.0f} core-hours "
          f"at this rate; every mobile number ({phone_space:.0e}) "
          f"{phone_space * hmac_us / 1e6 / 3600:,.1f} core-hours; one person of known birth "
          f"date and county (1000 candidates) {1000 * hmac_us / 1e3:.1f} ms")
    try:
        from voprf import ristretto  # type: ignore[import-not-found]
    except ImportError:
        print("OPRF: the voprf package is not installed here; no comparison this run")
        return
    server = ristretto.Evaluator(secrets.token_bytes(32))
    public = server.public_key
    sample = values[:2000]

    def rounds() -> None:
        for v in sample:
            client, blinded = ristretto.Client.blind(v.encode())
            client.finalize(server.evaluate(blinded), public)

    wall, _, _ = timed(rounds)
    oprf_us = wall / len(sample) * 1e6
    wall_e, _, _ = timed(lambda: [server.evaluate(ristretto.Client.blind(v.encode())[1])
                                  for v in sample])
    print(f"OPRF (voprf, ristretto255, RFC 9497 verifiable mode): {oprf_us:.0f} us per "
          f"identifier for blind + evaluate + finalize in one process ({oprf_us / hmac_us:.0f}x "
          f"HMAC), of which the key holder's part {wall_e / len(sample) * 1e6:.0f} us, before "
          "any network round trip to the key holder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--increment", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(17)
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as folder:
        tmp = pathlib.Path(folder)
        engine = make_engine(f"sqlite:///{tmp / 'member.db'}")
        bind_keyring(engine, Keyring(secrets.token_bytes(32)))
        upgrade(engine)
        epoch = EpochKey.new(1)
        wall, _, listed = timed(lambda: fill(engine, args.entries, epoch, rng))
        print(f"writing {args.entries:,} entries to SQLite (setup): {wall:.1f} s")
        rss0 = rss_mb()
        c = Consortium(engine, FixedClock(NOW))  # builds its index on first use: timed here
        wall, cpu, size = timed(lambda: c.index_size)
        gc.collect()
        rss1 = rss_mb()
        assert size == args.entries
        assert c._state.policy.actions["ring_member"] is Action.REFUSE
        print(f"loading {args.entries:,} entries from the database into the index: "
              f"{wall:.1f} s (CPU {cpu:.1f} s)")
        print(f"memory: the index's arrays {c._state.index.nbytes / 1e6:.1f} MB "
              f"({c._state.index.nbytes / args.entries:.0f} bytes an entry); process resident "
              f"size {rss0:.0f} MB before loading, {rss1:.0f} MB after")
        bench_lookups(c, listed, args.lookups, rng)
        bench_increment(c, tmp, epoch, args.increment, rng)
        engine.dispose()
    bench_pseudonyms(rng)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
