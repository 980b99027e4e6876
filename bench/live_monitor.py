"""The monitor on a running server: the live tactic agents (T1 to T9) against
``fairslot serve --workers N`` on PostgreSQL and Redis with one ``fairslot monitor run``,
and per tactic the seconds from its first event to the first alert naming it (read by an
operator through the API). docs/monitoring.md, "Live run".

    python bench/live_monitor.py --workers 4 --redis redis://127.0.0.1:6379/13

Makes a throw-away PostgreSQL database (dropped at the end)."""

from __future__ import annotations

import argparse
import os
import secrets

import sqlalchemy as sa

from fairslot.simulation.live_tactics import TACTICS, run_tactics, serve_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--db-name", default="monlive_bench")
    args = parser.parse_args()
    admin = sa.create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{args.db_name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{args.db_name}"
    try:
        with serve_stack(url, args.redis, workers=args.workers,
                         secret="live-bench-" + secrets.token_hex(24)) as (base, op, pw):
            load_before = os.getloadavg()[0]
            report = run_tactics(base, operator=op, password=pw)
            load_after = os.getloadavg()[0]
        print(report.render())
        print(f"{args.workers} workers, PostgreSQL, Redis, one `fairslot monitor run`; "
              f"load average {load_before:.1f} -> {load_after:.1f}")
        worst = max((d for t in TACTICS if (d := report.delay(t)) is not None), default=None)
        print(f"tactics alerted: {sum(t in report.first_alert for t in TACTICS)} of "
              f"{len(TACTICS)}; slowest event -> alert: "
              f"{'-' if worst is None else f'{worst:.2f} s'}")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
