"""A second, independent generator of booking records, for testing only.

fairslot's own generator (``fairslot.investigation.synth``) and its detectors were written
together, so perfect figures on it mostly say they agree. This one is written separately
and differently, so that the investigation is also measured on records whose quirks nobody
tuned for:

- Python's ``random`` instead of numpy; half a year instead of a year; two hospitals, one
  releasing 7 days ahead at 15:00, the other 14 days ahead at 07:00; sessions on chosen
  weekdays only; department codes as well as names.
- Identifiers in other formats the contract allows: ``wechat:`` openid-like strings,
  ``card:`` numbers, ``alipay:2088...`` ids, mixed-case hex device ids, account ids of two
  styles, phones with and without ``+86``, a few IPv6 addresses.
- Files written another way: columns in a shuffled order, unknown extra columns, booking
  times without an offset (local time), payment times with ``+08:00``, access times in UTC
  with ``Z``; dirty rows (duplicates, lost fields, garbled times, ragged rows, upper-case
  statuses, ID numbers with spaces).
- Other hard cases: a registration window clerk booking walk-in patients all day, a nursing
  home's carer with eight residents on one payer, a big company's NAT, a university
  clinic's shared terminal, spouses sharing a payer, carers of elderly parents, honest ID
  typos, quick hands at release.
- Ring kinds from ``problem.md`` in this file's own reading: T1 API bots (0.02 s), T3
  virtual-number farms (invalid ID numbers, names like "561"), T4 hold-and-launder, T5 one
  identity across departments, T6 a payment hub, T7 IP fan-out (an office IP and a rotating
  proxy pool), T8 a family crowd grabbing by hand, T9 an accompanying-service broker with an
  auto-clicker and a credential broker using customers' own logins.

``labels.csv`` has the same format as fairslot's: ring members with ring id and role, and
hard-case genuine accounts with an empty ring id and role ``hard_case:<kind>``.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["OPTIONAL_BOOKING_COLUMNS", "write_other_year"]

OPTIONAL_BOOKING_COLUMNS = ("patient_name", "patient_phone", "hospital_id", "released_at",
                            "channel", "ip", "device_id", "cancelled_at", "fee")
_BOOKING = ("booking_id", "created_at", "account_id", "patient_id_number", "patient_name",
            "patient_phone", "hospital_id", "department", "doctor_id", "session_start",
            "released_at", "channel", "ip", "device_id", "status", "cancelled_at", "fee")
_PAYMENT = ("payment_id", "booking_id", "paid_at", "payer_account", "amount", "refunded_at")
_ACCESS = ("ts", "ip", "account_id", "device_id", "method", "path", "status", "user_agent")

# Regions of the seed cases' cities (Nanjing, Shenyang, Chengdu) and a few others.
_REGIONS = ("320102", "320104", "320105", "320106", "320111", "210102", "210103", "210104",
            "510104", "510105", "510107", "440103", "440104", "330102")
_SURNAMES = ("李", "王", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱",
             "高", "林", "何", "郭", "马", "罗", "欧阳", "司马", "诸葛")
_GIVEN = "子轩浩宇梓涵一诺欣妍雨萱俊熙思琪明哲家豪晓峰春梅国华淑珍桂芳秀云德明志强建军丽娟"
_LATIN = ("Anna Schmidt", "John O'Neil", "Maria Garcia", "Olga Ivanova")
_DEPARTMENTS = ("心血管内科", "0302", "神经外科", "0405", "儿童保健科", "内分泌代谢科",
                "风湿免疫科", "0611", "生殖医学中心", "甲乳外科", "口腔颌面外科", "老年医学科")
_CARRIER_PREFIX = ("139", "138", "158", "159", "182", "189", "133", "177", "199")
_VIRTUAL_PREFIX = ("170", "171", "162", "165", "167")
_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) MicroMessenger/8.0.47",
       "Mozilla/5.0 (Linux; Android 13) Chrome/120.0 Mobile", "okhttp/4.9.3")


def _check_digit(body: str) -> str:
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


class _Gen:
    def __init__(self, seed: int, scale: float) -> None:
        self.r = random.Random(seed * 7919 + 13)
        self.scale = scale
        self.start = dt.datetime(2025, 3, 3)  # a Monday, local time
        self.days = 182
        self.end = self.start + dt.timedelta(days=self.days)
        self.bookings: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.access: list[dict[str, Any]] = []
        self.labels: list[tuple[str, str, str, str]] = []
        self.serial = 0
        self.doctors: list[tuple[str, str, str, bool]] = []  # id, department, hospital, hot
        self.sessions: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        self._schedule()

    # --- identifiers -----------------------------------------------------------------
    def uid(self) -> str:
        self.serial += 1
        return str(self.serial)

    def account_id(self) -> str:
        if self.r.random() < 0.5:
            return f"U{self.r.randrange(10**9, 10**10)}"
        return "".join(self.r.choices("0123456789abcdef", k=12)) + "-" + self.uid()

    def id_number(self, oldest: int = 90, youngest: int = 0) -> str:
        birth = dt.date(2025 - self.r.randint(youngest, oldest), 1, 1) + dt.timedelta(
            days=self.r.randrange(365))
        body = f"{self.r.choice(_REGIONS)}{birth:%Y%m%d}{self.r.randrange(1000):03d}"
        return body + _check_digit(body)

    def bad_id_number(self) -> str:
        good = self.id_number(60, 18)
        kind = self.r.randrange(4)
        if kind == 0:
            return good[:17] + ("1" if good[17] != "1" else "2")
        if kind == 1:
            return good[:10] + "1332" + good[14:]  # month 13
        if kind == 2:
            return good[:6] + good[8:17]  # old 15-digit style, wrong now
        return "".join(self.r.choices(string.digits, k=18))

    def name(self) -> str:
        if self.r.random() < 0.01:
            return self.r.choice(_LATIN)
        given = "".join(self.r.choices(_GIVEN, k=self.r.choice((1, 2, 2))))
        return self.r.choice(_SURNAMES) + given

    def phone(self, virtual: bool = False) -> str:
        prefix = self.r.choice(_VIRTUAL_PREFIX if virtual else _CARRIER_PREFIX)
        number = prefix + f"{self.r.randrange(10**8):08d}"
        return "+86 " + number if not virtual and self.r.random() < 0.3 else number

    def payer(self) -> str:
        kind = self.r.random()
        if kind < 0.45:
            chars = string.ascii_letters + string.digits + "-_"
            return "wechat:o" + "".join(self.r.choices(chars, k=27))
        if kind < 0.8:
            return f"alipay:2088{self.r.randrange(10**12):012d}"
        return f"card:62{self.r.randrange(10**16):016d}"

    def device(self) -> str:
        return "".join(self.r.choices("0123456789abcdefABCDEF", k=32))

    def home_ip(self) -> str:
        if self.r.random() < 0.03:
            return f"240e:{self.r.randrange(65536):x}:{self.r.randrange(65536):x}::" \
                   f"{self.r.randrange(65536):x}"
        return (f"{self.r.choice((58, 61, 114, 117, 180, 218, 221))}.{self.r.randrange(256)}."
                f"{self.r.randrange(256)}.{self.r.randrange(1, 255)}")

    def label(self, kind: str, entity: str, ring: str, role: str) -> None:
        self.labels.append((kind, entity, ring, role))

    # --- schedule ------------------------------------------------------------------------
    def _schedule(self) -> None:
        n_doctors = max(12, round(36 * min(self.scale, 2.0)))
        for i in range(n_doctors):
            hospital = "H-GL" if i % 3 else "H-ER"
            doctor = f"{hospital[-2:]}{i:03d}"
            hot = i % 4 == 0
            self.doctors.append((doctor, _DEPARTMENTS[i % len(_DEPARTMENTS)], hospital, hot))
            weekdays = self.r.sample(range(6), k=self.r.choice((2, 3)))
            lead, hour = (7, 15) if hospital == "H-GL" else (14, 7)
            slots = []
            day = self.start - dt.timedelta(days=lead)
            while day < self.end + dt.timedelta(days=lead):
                if day.weekday() in weekdays:
                    start = day.replace(hour=8 if self.r.random() < 0.6 else 13, minute=30)
                    release = (day - dt.timedelta(days=lead)).replace(hour=hour)
                    slots.append((start, release))
                day += dt.timedelta(days=1)
            self.sessions[doctor] = slots

    def doctor(self, hot: bool | None = None) -> tuple[str, str, str, bool]:
        pool = [d for d in self.doctors if hot is None or d[3] == hot]
        return self.r.choice(pool)

    def session(self, doctor: str) -> tuple[dt.datetime, dt.datetime]:
        """A session whose release falls inside the period."""
        slots = [s for s in self.sessions[doctor] if self.start <= s[1] < self.end
                 - dt.timedelta(days=1)]
        return self.r.choice(slots)

    # --- one booking -------------------------------------------------------------------
    def book(self, account: str, patient: tuple[str, str, str], doctor: tuple[str, str, str,
             bool], when: dt.datetime, session: tuple[dt.datetime, dt.datetime], *,
             ip: str | None, device: str | None, payer: str | None, status: str = "auto",
             channel: str = "app", cancel_after: float | None = None, ua: str | None = None,
             clicks: int = 8) -> tuple[str, dt.datetime | None]:
        start, release = session
        if when >= start:
            when = start - dt.timedelta(minutes=self.r.randint(5, 60))
        if status == "auto":
            roll = self.r.random()
            status = "checked_in" if roll < 0.86 else "cancelled" if roll < 0.94 else "no_show"
            if status == "cancelled":
                cancel_after = self.r.uniform(3600, max(3601.0, (start - when).total_seconds()))
        booking_id = f"BK{self.uid():0>9}"
        cancelled = when + dt.timedelta(seconds=cancel_after) if cancel_after is not None \
            else None
        if cancelled is not None and cancelled >= start:
            cancelled = start - dt.timedelta(minutes=1)
        fee = 300 if doctor[3] else self.r.choice((25, 38, 50))
        self.bookings.append({
            "booking_id": booking_id, "created_at": when, "account_id": account,
            "patient_id_number": patient[0], "patient_name": patient[1],
            "patient_phone": patient[2], "hospital_id": doctor[2], "department": doctor[1],
            "doctor_id": doctor[0], "session_start": start, "released_at": release,
            "channel": channel, "ip": ip, "device_id": device,
            "status": "cancelled" if cancelled is not None else status,
            "cancelled_at": cancelled, "fee": fee,
        })
        if payer is not None:
            paid = when + dt.timedelta(seconds=self.r.uniform(20, 240))
            self.payments.append({
                "payment_id": f"PY{self.uid()}", "booking_id": booking_id, "paid_at": paid,
                "payer_account": payer, "amount": f"{fee:.2f}",
                "refunded_at": cancelled + dt.timedelta(minutes=2) if cancelled else None,
            })
        if ip is not None and clicks:
            t = when - dt.timedelta(seconds=self.r.uniform(30, 180) if clicks > 1 else 0)
            step = (when - t).total_seconds() / max(clicks - 1, 1)
            for k in range(clicks):
                self.access.append({
                    "ts": t + dt.timedelta(seconds=step * k), "ip": ip, "account_id": account,
                    "device_id": device, "method": "POST" if k == clicks - 1 else "GET",
                    "path": "/api/v2/register/submit" if k == clicks - 1
                    else f"/api/v2/doctor/{doctor[0]}/schedule",
                    "status": 200, "user_agent": ua or _UA[k % 2],
                })
        return booking_id, cancelled

    def human_delay(self) -> float:
        """Seconds from release to a person's booking of a hot slot."""
        if self.r.random() < 0.02:
            return self.r.uniform(1.2, 3.0)  # a quick hand with everything preloaded
        return 4.0 + self.r.lognormvariate(3.3, 0.8)

    def ordinary_time(self, session: tuple[dt.datetime, dt.datetime]) -> dt.datetime:
        start, release = session
        span = max(60.0, (start - release).total_seconds() - 7200)
        when = release + dt.timedelta(seconds=self.r.uniform(600, span))
        return when.replace(hour=self.r.choice((8, 9, 10, 11, 12, 13, 19, 20, 21, 22)))


def _person(g: _Gen, oldest: int = 90, youngest: int = 0) -> tuple[str, str, str]:
    return g.id_number(oldest, youngest), g.name(), g.phone()


def _genuine(g: _Gen) -> None:
    r = g.r
    carrier_nat = [g.home_ip() for _ in range(12)]
    households = max(60, round(2200 * g.scale))

    def visits(account: str, patients: list[tuple[str, str, str]], payers: list[str],
               ips: list[str], devices: list[str | None], n: int, hot_share: float = 0.3,
               channel: str = "app") -> None:
        for _ in range(n):
            doctor = g.doctor(hot=r.random() < hot_share)
            session = g.session(doctor[0])
            when = session[1] + dt.timedelta(seconds=g.human_delay()) if doctor[3] \
                and r.random() < 0.7 else g.ordinary_time(session)
            g.book(account, r.choice(patients), doctor, when, session, ip=r.choice(ips),
                   device=r.choice(devices), payer=r.choice(payers), channel=channel)

    for h in range(households):
        patients = [_person(g) for _ in range(r.choices((1, 2, 3, 4), (40, 30, 20, 10))[0])]
        shared_payer = g.payer()
        n_accounts = 2 if r.random() < 0.15 else 1
        for _ in range(n_accounts):
            account = g.account_id()
            payers = [shared_payer] if r.random() < 0.7 else [g.payer()]
            mobile = r.random() < 0.4
            ips = [r.choice(carrier_nat) if mobile else g.home_ip()]
            devices: list[str | None] = [g.device() if r.random() > 0.1 else None
                                         for _ in range(r.choice((1, 1, 2)))]
            n = max(1, round(r.expovariate(1 / 4.5)))
            visits(account, patients, payers, ips, devices, n)
            kind = None
            if n_accounts == 2:
                kind = "spouses_sharing_payer"
            elif len(patients) >= 3:
                kind = "carer_of_elderly_parents"
            elif mobile:
                kind = "carrier_nat"
            if kind is not None and h % 2 == 0:
                g.label("account", account, "", f"hard_case:{kind}")
            if h % 40 == 0:
                # An honest typo in an ID number, once.
                typo = (g.bad_id_number(), *patients[0][1:])
                visits(account, [typo], payers, ips, devices, 1, 0.0)
                g.label("account", account, "", "hard_case:id_typo")

    # A registration window clerk: walk-in patients booked all day, same-day sessions, each
    # patient paying with their own card or phone at the window.
    for clerk_number in range(2):
        clerk = f"staff-window-{clerk_number + 1:02d}"
        terminal = g.device()
        g.label("account", clerk, "", "hard_case:window_clerk")
        for _ in range(max(40, round(500 * g.scale))):
            doctor = g.doctor(hot=False)
            start, release = g.session(doctor[0])
            when = start.replace(hour=r.randint(7, 10), minute=r.randrange(60))
            if when >= start:
                when = start - dt.timedelta(minutes=r.randint(10, 90))
            g.book(clerk, _person(g), doctor, when, (start, release), ip="10.8.1.20",
                   device=terminal, payer=g.payer(), channel="window", clicks=0)

    # A nursing home's carer: eight residents, one payer, monthly visits to their doctors.
    for _home in range(max(1, round(2 * g.scale))):
        carer = g.account_id()
        residents = [_person(g, 95, 70) for _ in range(8)]
        payer, device, ip = g.payer(), g.device(), g.home_ip()
        g.label("account", carer, "", "hard_case:nursing_home_carer")
        for resident in residents:
            regular = g.doctor(hot=False)
            for _month in range(r.randint(3, 6)):
                session = g.session(regular[0])
                g.book(carer, resident, regular, g.ordinary_time(session), session, ip=ip,
                       device=device, payer=payer)

    # A big company's NAT: hundreds of employees booking from the office in work hours.
    office = "202.96.12.34"
    for _ in range(max(30, round(250 * g.scale))):
        account = g.account_id()
        family = [_person(g, 60, 22) for _ in range(r.choice((1, 2, 3)))]
        payer = g.payer()
        g.label("account", account, "", "hard_case:company_nat")
        for _ in range(r.randint(1, 5)):
            doctor = g.doctor()
            session = g.session(doctor[0])
            when = g.ordinary_time(session).replace(hour=r.choice((10, 11, 14, 15, 16)))
            if doctor[3] and session[1].hour == 15 and r.random() < 0.5:
                when = session[1] + dt.timedelta(seconds=g.human_delay())
            g.book(account, r.choice(family), doctor, when, session, ip=office,
                   device=g.device(), payer=payer)

    # A university clinic's terminal: students log in on the clinic's one computer.
    terminal, campus_ip = g.device(), "211.65.0.8"
    for _ in range(max(20, round(120 * g.scale))):
        student = g.account_id()
        me = _person(g, 24, 18)
        g.label("account", student, "", "hard_case:university_terminal")
        for _ in range(r.randint(1, 3)):
            doctor = g.doctor(hot=False)
            session = g.session(doctor[0])
            g.book(student, me, doctor, g.ordinary_time(session).replace(
                hour=r.randint(8, 16)), session, ip=campus_ip, device=terminal,
                payer=g.payer(), channel="web")


def _ring_accounts(g: _Gen, ring: str, n: int, role: str, *, family: bool = True,
                   virtual: bool = False) -> list[dict[str, Any]]:
    """Ring members' accounts; each also books now and then for its own family
    (camouflage) from its own home IP, device and payer."""
    members = []
    for _ in range(n):
        me = (g.id_number(55, 20), g.name(), g.phone(virtual))
        member = {"id": g.account_id(), "me": me, "payer": g.payer(), "ip": g.home_ip(),
                  "device": g.device()}
        members.append(member)
        g.label("account", member["id"], ring, role)
        if family:
            for _ in range(g.r.randint(1, 3)):
                doctor = g.doctor(hot=False)
                session = g.session(doctor[0])
                g.book(member["id"], me, doctor, g.ordinary_time(session), session,
                       ip=member["ip"], device=member["device"], payer=member["payer"])
            g.label("patient", me[0], ring, "member_identity")
    return members


def _buyer(g: _Gen, ring: str) -> tuple[str, str, str]:
    buyer = _person(g, 80, 1)
    g.label("patient", buyer[0], ring, "buyer")
    return buyer


def _releases(g: _Gen, n: int) -> list[tuple[tuple[str, str, str, bool],
                                            tuple[dt.datetime, dt.datetime]]]:
    picked = []
    for _ in range(n):
        doctor = g.doctor(hot=True)
        picked.append((doctor, g.session(doctor[0])))
    return picked


def _api_bot(g: _Gen, ring: str) -> None:
    """T1: reverse-engineered client, 0.02 s after release, from a datacenter proxy pool,
    no device fingerprint, buyers preloaded."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(3, 5), "bot", family=False)
    proxies = [f"47.{r.randrange(90, 120)}.{r.randrange(256)}.{r.randrange(1, 255)}"
               for _ in range(r.randint(40, 90))]
    payers = [g.payer() for _ in range(r.randint(2, 3))]
    for payer in payers:
        g.label("payer", payer, ring, "payment_hub")
    for proxy in proxies:
        g.label("ip", proxy, ring, "proxy")
    for doctor, session in _releases(g, max(20, round(70 * g.scale))):
        for member in r.sample(members, k=min(len(members), r.randint(1, 3))):
            g.book(member["id"], _buyer(g, ring), doctor,
                   session[1] + dt.timedelta(seconds=r.uniform(0.015, 0.08)), session,
                   ip=r.choice(proxies), device=None, payer=r.choice(payers),
                   status="checked_in", ua="okhttp/4.9.3", clicks=1)


def _virtual_farm(g: _Gen, ring: str) -> None:
    """T3: many accounts on virtual numbers hold slots at release under made-up patients
    (invalid ID numbers, names like "561"); unsold holds lapse unpaid."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(10, 18), "holder", family=False,
                             virtual=True)
    proxies = [g.home_ip() for _ in range(r.randint(6, 12))]
    hub = g.payer()
    g.label("payer", hub, ring, "payment_hub")
    for member in members:
        g.label("phone", member["me"][2], ring, "virtual_number")
        for _ in range(r.randint(3, 7)):
            fake_id = g.bad_id_number() if r.random() < 0.7 else g.id_number(50, 20)
            fake = (fake_id, str(r.randrange(100, 1000)) if r.random() < 0.7 else g.name(),
                    member["me"][2])
            g.label("patient", fake_id, ring, "fake_identity")
            doctor = g.doctor(hot=True)
            session = g.session(doctor[0])
            sold = r.random() < 0.3
            g.book(member["id"], fake, doctor,
                   session[1] + dt.timedelta(seconds=r.uniform(0.3, 2.5)), session,
                   ip=r.choice(proxies), device=member["device"],
                   payer=hub if sold else None, status="no_show" if sold else "booked",
                   cancel_after=None if sold else r.uniform(900, 1800), clicks=3)


def _launderers(g: _Gen, ring: str) -> None:
    """T4: holders take slots at release under identities the ring controls; when a buyer
    pays, the hold is cancelled and a second account re-books it for the buyer seconds
    later, from another device and IP; unsold holds are cancelled and refunded."""
    r = g.r
    holders = _ring_accounts(g, ring, r.randint(3, 5), "holder")
    rebookers = _ring_accounts(g, ring, r.randint(2, 3), "booker")
    held = [_person(g, 60, 20) for _ in range(r.randint(4, 8))]
    for person in held:
        g.label("patient", person[0], ring, "held_identity")
    payers = [g.payer() for _ in range(2)]
    for payer in payers:
        g.label("payer", payer, ring, "payment_hub")
    for doctor, session in _releases(g, max(25, round(60 * g.scale))):
        holder = r.choice(holders)
        sold = r.random() < 0.65
        wait = r.uniform(3600, 2 * 86400)
        _bid, cancelled = g.book(holder["id"], r.choice(held), doctor,
                                 session[1] + dt.timedelta(seconds=r.uniform(1.0, 4.0)),
                                 session, ip=holder["ip"], device=holder["device"],
                                 payer=r.choice(payers), cancel_after=wait)
        if sold and cancelled is not None:
            rebooker = r.choice(rebookers)
            g.book(rebooker["id"], _buyer(g, ring), doctor,
                   cancelled + dt.timedelta(seconds=r.uniform(0.4, 6.0)), session,
                   ip=rebooker["ip"], device=rebooker["device"], payer=r.choice(payers),
                   status="checked_in")


def _spread_identities(g: _Gen, ring: str) -> None:
    """T5: a handful of identities booked with unrelated departments in the same week."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(3, 4), "holder")
    identities = [_person(g, 50, 25) for _ in range(r.randint(3, 5))]
    for person in identities:
        g.label("patient", person[0], ring, "held_identity")
    payer = g.payer()
    g.label("payer", payer, ring, "payment_hub")
    for _week in range(max(4, round(10 * g.scale))):
        person = r.choice(identities)
        week = g.start + dt.timedelta(days=7 * r.randrange(g.days // 7 - 3))
        for doctor in r.sample(g.doctors, k=r.randint(3, 5)):
            # Slots of unrelated doctors released in the same week, all for one person.
            released = [s for s in g.sessions[doctor[0]]
                        if week <= s[1] < week + dt.timedelta(days=7)]
            if not released:
                continue
            session = r.choice(released)
            member = r.choice(members)
            g.book(member["id"], person, doctor,
                   session[1] + dt.timedelta(seconds=r.uniform(2.0, 30.0)), session,
                   ip=member["ip"], device=member["device"], payer=payer,
                   status="cancelled", cancel_after=r.uniform(7200, 86400))


def _payment_hub(g: _Gen, ring: str) -> None:
    """T6: resellers at human speed, every sale paid from one hub account."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(5, 9), "booker")
    hub = "wechat:o" + "".join(r.choices(string.ascii_letters, k=27))
    g.label("payer", hub, ring, "payment_hub")
    for member in members:
        for _ in range(max(6, round(r.randint(12, 30) * g.scale))):
            doctor = g.doctor(hot=True)
            session = g.session(doctor[0])
            g.book(member["id"], _buyer(g, ring), doctor,
                   session[1] + dt.timedelta(seconds=g.human_delay()), session,
                   ip=member["ip"], device=member["device"], payer=hub,
                   status="checked_in")


def _ip_fanout(g: _Gen, ring: str) -> None:
    """T7: a back office booking many ID numbers an hour from one IP, and a partner
    rotating every request over a proxy pool."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(3, 4), "booker")
    office = g.home_ip()
    proxies = [g.home_ip() for _ in range(r.randint(30, 60))]
    g.label("ip", office, ring, "office_ip")
    for proxy in proxies:
        g.label("ip", proxy, ring, "proxy")
    payers = [g.payer() for _ in range(3)]
    for payer in payers:
        g.label("payer", payer, ring, "payment_hub")
    for _day in range(max(3, round(8 * g.scale))):
        doctor = g.doctor(hot=True)
        session = g.session(doctor[0])
        for k in range(r.randint(12, 20)):
            member = members[k % len(members)]
            when = session[1] + dt.timedelta(seconds=r.uniform(5, 1800))
            ip = office if member is not members[-1] else r.choice(proxies)
            other = g.doctor()
            g.book(member["id"], _buyer(g, ring), other if k % 3 else doctor, when,
                   g.session(other[0]) if k % 3 else session, ip=ip,
                   device=member["device"], payer=r.choice(payers), status="checked_in")


def _family_crowd(g: _Gen, ring: str) -> None:
    """T8: twenty-odd relatives who know each doctor's release time and grab together by
    hand (seconds, not milliseconds), then sell the slots; each pays from their own account,
    the organiser's account now and then."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(20, 26), "booker")
    organiser = members[0]["payer"]
    g.label("payer", organiser, ring, "payment_hub")
    for doctor, session in _releases(g, max(10, round(18 * g.scale))):
        for member in r.sample(members, k=round(len(members) * r.uniform(0.4, 0.7))):
            g.book(member["id"], _buyer(g, ring), doctor,
                   session[1] + dt.timedelta(seconds=r.uniform(3.0, 15.0)), session,
                   ip=member["ip"], device=member["device"],
                   payer=organiser if r.random() < 0.3 else member["payer"],
                   status="checked_in" if r.random() < 0.9 else "no_show")


def _accompany_broker(g: _Gen, ring: str) -> None:
    """T9: "accompanying service" resellers with an auto-clicker (0.3 s a click), booking
    the real customers' identities collected beforehand."""
    r = g.r
    members = _ring_accounts(g, ring, r.randint(3, 5), "booker")
    payers = [g.payer() for _ in range(r.randint(2, 4))]
    for payer in payers:
        g.label("payer", payer, ring, "payment_hub")
    for doctor, session in _releases(g, max(20, round(50 * g.scale))):
        member = r.choice(members)
        g.book(member["id"], _buyer(g, ring), doctor,
               session[1] + dt.timedelta(seconds=r.uniform(0.9, 3.5)), session,
               ip=member["ip"], device=member["device"], payer=r.choice(payers),
               status="checked_in", clicks=r.randint(150, 260))


def _credential_broker(g: _Gen, ring: str) -> None:
    """T9: a reseller logs in with each customer's own account and password and grabs the
    customer's slot from the reseller's own phones; the customer pays as usual."""
    r = g.r
    phones = [g.device() for _ in range(r.randint(1, 2))]
    for phone in phones:
        g.label("device", phone, ring, "broker_device")
    for _ in range(r.randint(8, 16)):
        customer = _buyer(g, ring)
        account, payer, device, ip = g.account_id(), g.payer(), g.device(), g.home_ip()
        # The customer's own account, used by the broker: a buyer's, not the ring's.
        g.label("account", account, "", "hard_case:lent_account")
        for _ in range(r.randint(0, 2)):
            doctor = g.doctor(hot=False)
            session = g.session(doctor[0])
            g.book(account, customer, doctor, g.ordinary_time(session), session, ip=ip,
                   device=device, payer=payer)
        for _ in range(r.randint(1, 3)):
            doctor = g.doctor(hot=True)
            session = g.session(doctor[0])
            g.book(account, customer, doctor,
                   session[1] + dt.timedelta(seconds=r.uniform(1.5, 6.0)), session,
                   ip=g.home_ip(), device=r.choice(phones), payer=payer,
                   status="checked_in")


_RINGS = (_api_bot, _virtual_farm, _launderers, _spread_identities, _payment_hub,
          _ip_fanout, _family_crowd, _accompany_broker, _credential_broker)


def _fmt(value: Any, style: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if style == "local":
            return value.isoformat(sep=" ", timespec="milliseconds")
        if style == "offset":
            return value.isoformat(timespec="milliseconds") + "+08:00"
        return (value - dt.timedelta(hours=8)).isoformat(timespec="milliseconds") + "Z"
    return str(value)


def _write(path: Path, columns: list[str], rows: Iterable[dict[str, Any]], style: str,
           r: random.Random, extra: dict[str, str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, *extra])
        for row in rows:
            writer.writerow([_fmt(row.get(c), style) for c in columns]
                            + [r.choice(("", value)) for value in extra.values()])


def _dirty(g: _Gen) -> None:
    """Real exports' dirt, in this generator's own mix."""
    r = g.r
    rows = g.bookings
    for row in r.sample(rows, k=max(3, len(rows) // 400)):
        rows.append(dict(row))  # exact duplicates
    for row in r.sample(rows, k=max(3, len(rows) // 600)):
        row["status"] = str(row["status"]).upper()
    for row in r.sample(rows, k=max(2, len(rows) // 800)):
        number = str(row["patient_id_number"])
        row["patient_id_number"] = f"{number[:6]} {number[6:14]} {number[14:]}".lower()
    broken = []
    for k in range(max(3, len(rows) // 700)):
        bad = dict(r.choice(rows))
        bad["booking_id"] = f"DIRTY{k}"
        if k % 3 == 0:
            bad["account_id"] = None
        elif k % 3 == 1:
            bad["created_at"] = "2025-13-45 25:61:00"
        else:
            bad["session_start"] = None
        broken.append(bad)
    rows.extend(broken)
    r.shuffle(rows)


def write_other_year(folder: Path, *, seed: int, scale: float = 1.0,
                     drop_columns: Iterable[str] = (), access: bool = True) -> Path:
    """Write ``bookings.csv``, ``payments.csv``, optionally ``access.csv``, and
    ``labels.csv`` into ``folder``; ``drop_columns`` leaves optional booking columns out
    (a sparser export). Returns ``folder``."""
    g = _Gen(seed, scale)
    _genuine(g)
    rings = list(_RINGS)
    if scale >= 1.5:
        rings += [_api_bot, _virtual_farm, _launderers, _family_crowd, _credential_broker]
    for number, make in enumerate(rings):
        make(g, f"X{number + 1:02d}")
    _dirty(g)
    folder.mkdir(parents=True, exist_ok=True)
    dropped = set(drop_columns) & set(OPTIONAL_BOOKING_COLUMNS)
    columns = [c for c in _BOOKING if c not in dropped]
    g.r.shuffle(columns)
    _write(folder / "bookings.csv", columns, g.bookings, "local", g.r,
           {"remark": "复诊", "operator": "sys"})
    payment_columns = list(_PAYMENT)
    g.r.shuffle(payment_columns)
    _write(folder / "payments.csv", payment_columns, g.payments, "offset", g.r,
           {"currency": "CNY"})
    if access:
        g.access.sort(key=lambda row: row["ts"])
        _write(folder / "access.csv", list(_ACCESS), g.access, "utc", g.r, {})
    # Ragged rows: a field too many (a comma in a remark that nobody quoted).
    with (folder / "bookings.csv").open("a", encoding="utf-8") as handle:
        handle.write(",".join(["RAGGED"] * (len(columns) + 4)) + "\n")
    seen: set[tuple[str, str]] = set()
    with (folder / "labels.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("entity_type", "entity_id", "ring_id", "role"))
        for kind, entity, ring, role in g.labels:
            if (kind, entity) in seen:
                continue
            seen.add((kind, entity))
            writer.writerow((kind, entity, ring, role))
    return folder
