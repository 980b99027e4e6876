"""Benchmark of ``fairslot investigate`` at hospital scale (or a province's, ``--province``).

Generates 1,000,000 bookings, 1,000,000 payments and 10,000,000 access rows with vectorised
numpy/polars (a genuine population plus 40 planted bot rings of 10 accounts, each ring with
its own customers' identities, devices and three wallets), writes them as Parquet to a
temporary folder (the access rows in chunks of 10,000,000, so that a province's 100,000,000
are never in memory at once), then runs the whole investigation (read, rules, graph, dense
blocks, lockstep, anomaly scores, rings, report) in a child process. The access rows are read
out of core (``read_records(access_min_clicks=...)``: split by minute into Parquet parts on
disk, only per-account minute counts kept) unless ``--in-memory``. Prints the generation
time (not part of the investigation), the investigation's wall and CPU time and peak resident
memory (the child process; Polars' threads are in it), from ``resource.getrusage``, and how
the planted rings came out: each one's best match among the rings found (Jaccard similarity
over accounts; recovered at 0.5 or more) and the sizes of the rings found.

    python bench/investigate.py [--bookings N] [--access N] [--province] [--in-memory]
                                [--keep DIR] [--records DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["generate", "main"]

_YEAR_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
_DAY = 86400.0
_ACCESS_CHUNK = 10_000_000
RINGS, RING_SIZE = 40, 10  # the planted rings: accounts a{first} .. a{first + 399}, by ring
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)


def _id_numbers(rng: np.random.Generator, n: int, invalid_share: float) -> pl.Series:
    """Resident ID numbers with correct check digits (ISO 7064 MOD 11-2), some spoiled."""
    regions = np.array([110101, 110102, 110105, 110106, 110108, 310101, 310104])
    region = regions[rng.integers(0, len(regions), n)]
    birth = (np.datetime64("1940-01-01") + rng.integers(0, 30000, n).astype("timedelta64[D]"))
    ymd = pl.Series(birth.astype("datetime64[D]")).dt.strftime("%Y%m%d").cast(pl.Int64)
    # The 17 digits as one integer (the region's leading digit is never 0), so that the check
    # digit is computed on arrays: a province has tens of millions of patients.
    number = region.astype(np.int64) * 10**11 + ymd.to_numpy() * 1000 + rng.integers(0, 1000, n)
    weighted = np.zeros(n, dtype=np.int64)
    for position, weight in enumerate(_WEIGHTS):
        weighted += (number // 10 ** (16 - position)) % 10 * weight
    body = pl.Series(number).cast(pl.String)
    check = (12 - weighted % 11) % 11
    spoil = rng.random(n) < invalid_share
    check = np.where(spoil, (check + 1) % 11, check)
    letters = np.where(check == 10, "X", check.astype(str))
    return body + pl.Series(letters)


def generate(folder: Path, *, bookings: int, access: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n_accounts = bookings // 3
    n_doctors = 600
    ring_accounts = RINGS * RING_SIZE
    account = rng.zipf(1.8, bookings) % n_accounts
    ring_rows = bookings // 100
    account[:ring_rows] = n_accounts + rng.integers(0, ring_accounts, ring_rows)
    patient_slot = account * 3 + rng.integers(0, 2, bookings)
    # Ring accounts book for many patients, each ring for its own customers (as a real
    # province's rings do: two rings do not sell to one pool of people). A ring's pool grows
    # with its bookings, twice as many people as it books for (20,000 in all at 1M).
    ring = (account[:ring_rows] - n_accounts) // RING_SIZE
    pool = max(20, 2 * ring_rows // RINGS)
    patient_slot[:ring_rows] = ((n_accounts + ring_accounts) * 3 + ring * pool
                                + rng.integers(0, pool, ring_rows))
    n_patients = int(patient_slot.max()) + 1
    ids = _id_numbers(rng, n_patients, 0.002)
    names = pl.Series(["王伟", "李娜", "张敏", "刘洋", "陈静", "杨磊", "黄丽", "赵强", "561"])
    name_index = rng.integers(0, len(names) - 1, n_patients)
    session_day = rng.integers(15, 380, bookings)
    doctor = rng.integers(0, n_doctors, bookings)
    session_start = _YEAR_START + session_day * _DAY
    released = session_start - 15 * _DAY
    hot = rng.random(bookings) < 0.3
    delay = np.where(hot, 3 + rng.lognormal(np.log(20), 0.9, bookings),
                     rng.uniform(600, 14 * _DAY, bookings))
    delay[:ring_rows] = rng.uniform(0.02, 1.5, ring_rows)
    created = released + delay
    status = np.array(["checked_in", "cancelled", "no_show", "paid", "booked"])[
        rng.choice(5, bookings, p=[0.8, 0.08, 0.04, 0.05, 0.03])]
    cancelled = np.where(status == "cancelled", created + rng.uniform(60, 5 * _DAY, bookings),
                         np.nan)
    raw_ips = pl.Series(rng.integers(0, 2**32, max(200_000, bookings // 5)))
    ip_pool = ((raw_ips // 2**24).cast(pl.String) + "." + (raw_ips // 2**16 % 256).cast(pl.String)
               + "." + (raw_ips // 256 % 256).cast(pl.String) + "."
               + (raw_ips % 256).cast(pl.String))
    ips = ip_pool.gather(np.where(rng.random(bookings) < 0.3,
                                  rng.integers(0, 20, bookings),  # carrier NATs
                                  (account * 7) % len(ip_pool)))

    def times(values: np.ndarray) -> pl.Series:
        micros = pl.Series((values * 1e6).round(), nan_to_null=True)
        return micros.cast(pl.Int64).cast(pl.Datetime("us", "UTC"))

    booking_ids = pl.Series(np.arange(bookings)).cast(pl.String)
    frame = pl.DataFrame({
        "booking_id": "b" + booking_ids,
        "created_at": times(created),
        "account_id": "a" + pl.Series(account).cast(pl.String),
        "patient_id_number": ids.gather(patient_slot),
        "patient_name": names.gather(name_index[patient_slot]),
        "patient_phone": "138" + pl.Series(patient_slot % 10**8).cast(pl.String).str.zfill(8),
        "department": "dept" + pl.Series(doctor // 30).cast(pl.String),
        "doctor_id": "d" + pl.Series(doctor).cast(pl.String),
        "session_start": times(session_start),
        "released_at": times(released),
        "channel": pl.Series(np.array(["app", "web", "wechat"])[rng.integers(0, 3, bookings)]),
        "ip": ips,
        "device_id": "dev" + pl.Series(account).cast(pl.String),
        "status": pl.Series(status),
        "cancelled_at": times(cancelled),
        "fee": pl.Series(np.full(bookings, 50.0)),
    })
    frame.write_parquet(folder / "bookings.parquet")
    payer = np.where(account >= n_accounts, (account - n_accounts) // RING_SIZE * 3
                     + rng.integers(0, 3, bookings) + 10**8, account // 2)
    pl.DataFrame({
        "payment_id": "p" + booking_ids,
        "booking_id": "b" + booking_ids,
        "paid_at": times(created + rng.uniform(20, 600, bookings)),
        "payer_account": "alipay:" + pl.Series(payer).cast(pl.String),
        "amount": pl.Series(np.full(bookings, 50.0)),
        "refunded_at": times(cancelled),
    }).write_parquet(folder / "payments.parquet")
    del frame
    chunks: list[Path] = []
    for first in range(0, access, _ACCESS_CHUNK):
        size = min(_ACCESS_CHUNK, access - first)
        who = rng.integers(0, n_accounts + ring_accounts, size)
        chunk = folder / f"access-{len(chunks)}.parquet.part"
        pl.DataFrame({
            "ts": times(_YEAR_START + rng.uniform(0, 365 * _DAY, size)),
            "ip": ip_pool.gather((who * 7) % len(ip_pool)),
            "account_id": "a" + pl.Series(who).cast(pl.String),
            "device_id": "dev" + pl.Series(who).cast(pl.String),
            "method": pl.Series(np.array(["GET", "POST"])[(rng.random(size) < 0.2)
                                                          .astype(int)]),
            "path": pl.Series(np.array(["/doctors", "/login", "/api/bookings"])[
                rng.integers(0, 3, size)]),
            "status": pl.Series(np.full(size, 200)),
            "user_agent": pl.Series(["Mozilla/5.0"]).gather(np.zeros(size, dtype=np.int64)),
        }).write_parquet(chunk)
        chunks.append(chunk)
    if len(chunks) == 1:
        chunks[0].rename(folder / "access.parquet")
    else:
        # One file, as an export is: the chunks are streamed into it, never all in memory.
        pl.scan_parquet(chunks).sink_parquet(folder / "access.parquet", engine="streaming")
        for chunk in chunks:
            chunk.unlink()


def _child(folder: Path, out: Path, in_memory: bool) -> None:
    from fairslot.config import get_settings
    from fairslot.investigation.records import read_records
    from fairslot.investigation.report import RunInfo, write_outputs
    from fairslot.investigation.rules import Thresholds
    from fairslot.investigation.scoring import investigate

    zone = get_settings().zone
    began, start = dt.datetime.now(zone), time.perf_counter()
    floor = None if in_memory else Thresholds().clicks_per_minute
    records = read_records(folder, zone=zone, access_min_clicks=floor, workdir=out.parent)
    read = time.perf_counter() - start
    read_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    result = investigate(records)
    detect = time.perf_counter() - start - read
    write_outputs(out, result, records, RunInfo(str(folder), began,
                                                time.perf_counter() - start, zone.key))
    print(f"  read {read:.1f} s (peak {read_peak:.2f} GiB so far), detect {detect:.1f} s, "
          f"total {time.perf_counter() - start:.1f} s; {result.suspects.height} suspects, "
          f"{result.rings.height} rings")
    first = records.bookings.height // 3
    _recovery(result.rings, first)


def _recovery(rings: pl.DataFrame, first: int) -> None:
    """Print how the planted rings came out: each planted ring's best match among the rings
    found (Jaccard similarity over accounts), recovered at 0.5 or more, and the sizes."""
    found = [set(str(listed).split(";")) for listed in rings.get_column("accounts_list")]
    planted = [{f"a{first + ring * RING_SIZE + k}" for k in range(RING_SIZE)}
               for ring in range(RINGS)]
    every = set().union(*planted)
    best = [max((len(p & f) / len(p | f) for f in found), default=0.0) for p in planted]
    recovered = sum(b >= 0.5 for b in best)
    holding = [f for f in found if f & every]
    mixed = sum(1 for f in holding if sum(1 for p in planted if f & p) > 1)
    sizes = sorted(len(f) for f in found)
    print(f"  rings: {len(found)} found, {RINGS} planted; {recovered} of {RINGS} recovered "
          f"(Jaccard >= 0.5 over accounts), best Jaccard min {min(best):.2f} median "
          f"{float(np.median(best)):.2f}; {len(holding)} found rings hold planted accounts, "
          f"{mixed} of them from more than one planted ring; "
          f"{len(found) - len(holding)} hold none")
    if sizes:
        print(f"  found ring sizes (accounts): min {sizes[0]}, median "
              f"{sizes[len(sizes) // 2]}, max {sizes[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1_000_000,
                        help="bookings (and payments), default 1,000,000")
    parser.add_argument("--access", type=int, default=10_000_000,
                        help="access rows, default 10,000,000")
    parser.add_argument("--province", action="store_true",
                        help="a province's year: 10,000,000 bookings and payments, "
                        "100,000,000 access rows")
    parser.add_argument("--in-memory", action="store_true",
                        help="read the access rows into memory (the pre-out-of-core path)")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here")
    parser.add_argument("--records", type=Path, default=None,
                        help="investigate this folder (from --keep) instead of generating")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.in_memory)
        return
    if args.province:
        args.bookings, args.access = 10_000_000, 100_000_000
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.records or args.keep or Path(temporary) / "records"
        if args.records is None:
            folder.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            generate(folder, bookings=args.bookings, access=args.access)
            generation = time.perf_counter() - start
            print(f"generated {args.bookings:,} bookings, {args.bookings:,} payments, "
                  f"{args.access:,} access rows in {generation:.1f} s (not counted below)")
        start = time.perf_counter()
        # The child imports Polars before fairslot's investigation package, which would set
        # the allocator's options: they are given here, as the package would set them.
        from fairslot.investigation import ALLOCATOR_CONF, ALLOCATOR_VARIABLE
        environment = {ALLOCATOR_VARIABLE: ALLOCATOR_CONF, **os.environ}
        subprocess.run([sys.executable, __file__, "--child", str(folder),
                        str(Path(temporary) / "out"),
                        *(["--in-memory"] if args.in_memory else [])], check=True,
                       env=environment)
        investigation = time.perf_counter() - start
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = usage.ru_maxrss / 1024**2
        # CPU seconds (all threads, user + system) hold better than wall time on a shared
        # machine: with other work running, wall time mostly measures the queue.
        print(f"investigation (child process, with interpreter start) {investigation:.1f} s, "
              f"CPU {usage.ru_utime + usage.ru_stime:.1f} s "
              f"(user {usage.ru_utime:.1f} + system {usage.ru_stime:.1f})")
        print(f"peak memory: generation {own:.2f} GiB, investigation {children:.2f} GiB"
              f" ({'in memory' if args.in_memory else 'access rows out of core'})")


if __name__ == "__main__":
    main()
