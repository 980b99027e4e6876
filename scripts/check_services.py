"""Before the suite: PostgreSQL and Redis must answer. A missing service is a failure with a
clear message (never a quiet skip), so a green run always means both were tested."""

from __future__ import annotations

import os
import sys

import psycopg
import redis

PG = os.environ.get("FAIRSLOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def main() -> int:
    problems = []
    try:
        with psycopg.connect(PG, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL at {PG} is unreachable: {str(exc).strip()}")
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        problems.append(f"Redis at {REDIS} is unreachable: {exc}")
    finally:
        client.close()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("the test suite needs both services (see README: Testing)", file=sys.stderr)
        return 1
    print("PostgreSQL and Redis answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
