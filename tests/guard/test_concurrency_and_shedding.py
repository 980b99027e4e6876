"""One booking in flight per account; under overload browsing is refused before booking."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .conftest import Events, GuardFactory, build_app, client_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def _until(condition: object, what: str) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_second_concurrent_booking_of_the_same_account_is_refused(
    make_guard: GuardFactory, events: Events
) -> None:
    guard = make_guard()
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as person, \
            client_for(app, "198.51.100.99") as other:
        first = asyncio.create_task(person.post("/slow-book", headers={"x-account": "mother"}))
        await _until(lambda: guard.shedder.in_flight == 1, "the first booking to start")
        await asyncio.sleep(0.02)  # let it take its slot
        second = await person.post("/slow-book", headers={"x-account": "mother"})
        third = asyncio.create_task(other.post("/slow-book", headers={"x-account": "father"}))
        await _until(lambda: guard.shedder.in_flight == 2, "the other account's booking")
        app.state.release.set()
        assert (await first).status_code == 200
        assert (await third).status_code == 200
        again = await person.post("/slow-book", headers={"x-account": "mother"})
    assert second.status_code == 429
    assert second.json()["code"] == "booking_in_progress"
    assert second.headers["retry-after"] == "1"
    assert again.status_code == 200  # the slot was released with the first response
    assert [e.reason for e in events if e.decision == "deny"] == ["busy"]


async def test_under_overload_browsing_is_shed_but_booking_still_served(
    make_guard: GuardFactory, events: Events
) -> None:
    guard = make_guard(guard_shed_browsing_at=2, guard_shed_other_at=4,
                       guard_shed_critical_at=8)
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as person:
        held = [asyncio.create_task(person.get("/slow")) for _ in range(3)]
        await _until(lambda: guard.shedder.in_flight == 3, "three pages in flight")
        page: httpx.Response = await person.get("/slots/s1", headers={"x-account": "m"})
        booking = await person.post("/book/s1", headers={"x-account": "mother"})
        app.state.release.set()
        await asyncio.gather(*held)
        after = await person.get("/slots/s1", headers={"x-account": "m"})
    assert page.status_code == 503
    assert page.json()["code"] == "overloaded"
    assert page.headers["content-type"] == "application/problem+json"
    assert int(page.headers["retry-after"]) >= 1
    assert booking.status_code == 200
    assert after.status_code == 200
    assert [e.reason for e in events if e.decision == "deny"] == ["overloaded"]


async def test_outside_a_route_an_account_holds_one_slot_at_a_time(
    make_guard: GuardFactory, events: Events
) -> None:
    from fairslot.guard import BookingInProgress

    guard = make_guard()
    async with guard.exclusive("mother", "payment"):
        with pytest.raises(BookingInProgress):
            async with guard.exclusive("mother", "payment"):
                pass
        async with guard.exclusive("father", "payment"):
            pass
    async with guard.exclusive("mother", "payment"):
        pass
    assert [e.reason for e in events if e.decision == "deny"] == ["busy"]
