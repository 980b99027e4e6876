"""A synthetic year of booking, payment and access records, with the truth in ``labels.csv``.

The ``seeds`` scenario follows the cases in the project's seed reports. The genuine population
carries the hard cases an investigator must not flag: families sharing one payer, carers
booking for several elderly parents, campus and carrier NAT IPs shared by hundreds, clinics'
shared booking terminals, honest typos in ID numbers, people who are quick at release time.
The rings camouflage: their accounts also book normally for their own families, they rotate
IPs (partly through the same carrier NATs as everybody) and spread payments over several
payers. Four ring kinds: bot farms that hold slots under fake identities and launder them to
buyers (cancel, then rebook within seconds), brokers posing as accompanying services who book
real buyers' identities with an auto-clicker, family crowds grabbing by hand together, and
credential brokers who book each customer with the customer's own account and login.

Institutional channels come last, with two insider kinds and their genuine look-alikes: a
registration-window clerk who books hot slots seconds after release, days ahead, and cancels
them for a few "catcher" accounts to rebook within seconds for buyers, all paid by one
wallet; and a kiosk clerk booking at release for buyers paid by the clerk's own wallet.
The look-alikes must stay clean: busy windows whose cancellations go to the waitlist or to
unrelated people who were refreshing, and kiosks where families pay with one wallet.

The labels name every ring entity (account, patient, payer, ip, device, phone) that appears
in the records, with its ring and role, and the hard-case genuine accounts with ring id empty
and role ``hard_case:<kind>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from pathlib import Path

import numpy as np
import polars as pl
from stdnum.cn import ric

from fairslot.config import get_settings

__all__ = ["SCENARIOS", "Synthetic", "generate", "write_synthetic"]

SCENARIOS = ("seeds",)

_DEPARTMENTS = (
    "心内科", "消化内科", "呼吸内科", "神经内科", "内分泌科", "肾内科", "血液科", "肿瘤科",
    "骨科", "眼科", "耳鼻喉科", "皮肤科", "妇科", "儿科", "泌尿外科", "普外科",
)
_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕彬建国志明海波宇浩然子涵欣怡梓轩雨桐俊杰佳琪晨曦嘉怡思远文博"  # noqa: E501
# Region codes python-stdnum knows for every birth year the generator uses.
_REGIONS = ("110101", "110102", "110105", "110106", "110108", "120101", "120103", "310101",
            "310104", "310105", "310110")
_RELEASE_DAYS = 15


@dataclasses.dataclass(slots=True)
class Synthetic:
    """One generated year: the three tables in the contract's columns (text) and the labels."""

    bookings: pl.DataFrame
    payments: pl.DataFrame
    access: pl.DataFrame
    labels: pl.DataFrame


@dataclasses.dataclass(slots=True)
class _Patient:
    id_number: str
    name: str
    phone: str


@dataclasses.dataclass(slots=True)
class _Account:
    account_id: str
    patients: list[_Patient]
    payers: list[str]
    ips: list[str]
    devices: list[str]
    channel: str
    yearly: float
    hot_share: float
    kind: str


class _World:
    """The generator's state: a seeded random source, the hospital's schedule, the output."""

    def __init__(self, seed: int, scale: float, zone: zoneinfo.ZoneInfo, year: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.scale = scale
        self.zone = zone
        self.counter = 0
        self.rows: list[dict[str, object]] = []
        self.pays: list[dict[str, object]] = []
        self.access: list[tuple[float, str, str | None, str | None, str, str, int, str]] = []
        self.labels: list[tuple[str, str, str, str]] = []
        self.start = dt.datetime(year, 1, 1, tzinfo=zone)
        self.end = dt.datetime(year + 1, 1, 1, tzinfo=zone)
        self._build_schedule()

    # --- identifiers -------------------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.seed:x}{self.counter:07d}"

    def id_number(self, age_low: int = 1, age_high: int = 85) -> str:
        region = _REGIONS[int(self.rng.integers(len(_REGIONS)))]
        year = self.start.year - int(self.rng.integers(age_low, age_high))
        birth = dt.date(year, 1, 1) + dt.timedelta(days=int(self.rng.integers(0, 365)))
        body = f"{region}{birth:%Y%m%d}{int(self.rng.integers(0, 1000)):03d}"
        return body + str(ric.calc_check_digit(body + "0"))

    def invalid_id_number(self) -> str:
        valid = self.id_number()
        kind = int(self.rng.integers(3))
        if kind == 0:  # wrong check digit
            wrong = [c for c in "0123456789X" if c != valid[-1]]
            return valid[:-1] + wrong[int(self.rng.integers(len(wrong)))]
        if kind == 1:  # impossible birth date
            return valid[:10] + "1345" + valid[14:17] + valid[-1]
        return valid[: int(self.rng.integers(8, 17))]  # truncated

    def name(self) -> str:
        family = _FAMILY[int(self.rng.integers(len(_FAMILY)))]
        length = 1 + int(self.rng.integers(2))
        given = "".join(_GIVEN[int(self.rng.integers(len(_GIVEN)))] for _ in range(length))
        return family + given

    def phone(self, virtual: bool = False) -> str:
        prefix = ("170", "171", "165", "167")[int(self.rng.integers(4))] if virtual else (
            "138", "139", "135", "136", "150", "151", "186", "187", "188", "133"
        )[int(self.rng.integers(10))]
        return prefix + f"{int(self.rng.integers(0, 10**8)):08d}"

    def patient(self, age_low: int = 1, age_high: int = 85) -> _Patient:
        return _Patient(self.id_number(age_low, age_high), self.name(), self.phone())

    def home_ip(self) -> str:
        a, b, c, d = (int(x) for x in self.rng.integers(1, 255, size=4))
        return f"{(a % 100) + 100}.{b}.{c}.{d}"

    def payer(self) -> str:
        method = ("alipay", "wechat", "card")[int(self.rng.integers(3))]
        return f"{method}:{self.next_id('p')}"

    # --- schedule ----------------------------------------------------------------------
    def _build_schedule(self) -> None:
        rng = self.rng
        doctors: list[tuple[str, str, bool]] = []
        for dept in _DEPARTMENTS:
            for _ in range(3 + int(rng.integers(4))):
                doctors.append((self.next_id("d"), dept, bool(rng.random() < 0.3)))
        self.doctors = doctors
        self.sessions: dict[str, list[tuple[float, float]]] = {}
        days = (self.end - self.start).days
        for doctor, _dept, _hot in doctors:
            weekdays = rng.choice(5, size=2, replace=False)
            starts: list[tuple[float, float]] = []
            for day in range(days):
                date = self.start + dt.timedelta(days=day)
                if date.weekday() not in weekdays:
                    continue
                hour, minute = (8, 0) if rng.random() < 0.6 else (13, 30)
                start = date.replace(hour=hour, minute=minute)
                release = (date - dt.timedelta(days=_RELEASE_DAYS)).replace(hour=7, minute=30)
                starts.append((start.timestamp(), release.timestamp()))
            self.sessions[doctor] = starts
        self.by_dept: dict[str, list[int]] = {}
        for index, (_doc, dept, _hot) in enumerate(doctors):
            self.by_dept.setdefault(dept, []).append(index)
        self.hot = [i for i, (_d, _dep, hot) in enumerate(doctors) if hot]

    def pick_session(self, doctor_index: int) -> tuple[str, str, float, float]:
        doctor, dept, _hot = self.doctors[doctor_index]
        starts = self.sessions[doctor]
        # Only sessions whose release falls inside the year, so every booking is in range.
        low = next(i for i, (_s, rel) in enumerate(starts) if rel >= self.start.timestamp())
        start, release = starts[int(self.rng.integers(low, len(starts)))]
        return doctor, dept, start, release

    # --- emitting ----------------------------------------------------------------------
    def book(
        self,
        account: _Account,
        patient: _Patient,
        doctor_index: int,
        *,
        delay: float | None,
        ip: str,
        device: str,
        status: str,
        payer: str | None,
        channel: str | None = None,
        session: tuple[str, str, float, float] | None = None,
        cancel_after: float | None = None,
        bot: bool = False,
    ) -> tuple[str, float, tuple[str, str, float, float]]:
        doctor, dept, start, release = session or self.pick_session(doctor_index)
        if delay is None:
            # An ordinary booking: any time between release and the day before the session.
            created = release + float(self.rng.uniform(600, max(1200.0, start - release - 86400)))
        else:
            created = release + delay
        booking_id = self.next_id("b")
        cancelled = None
        if status == "cancelled":
            cancelled = created + (cancel_after if cancel_after is not None
                                   else float(self.rng.uniform(3600, max(7200.0,
                                                                         start - created - 3600))))
        self.rows.append({
            "booking_id": booking_id, "created_at": created, "account_id": account.account_id,
            "patient_id_number": patient.id_number, "patient_name": patient.name,
            "patient_phone": patient.phone, "hospital_id": "H1", "department": dept,
            "doctor_id": doctor, "session_start": start, "released_at": release,
            "channel": channel or account.channel, "ip": ip, "device_id": device,
            "status": status, "cancelled_at": cancelled, "fee": 50.0,
        })
        if payer is not None and status in ("paid", "checked_in", "no_show", "cancelled"):
            paid = created + float(self.rng.uniform(20, 600))
            if cancelled is not None and paid > cancelled:
                paid = created + 0.5 * (cancelled - created)
            self.pays.append({
                "payment_id": self.next_id("pay"), "booking_id": booking_id, "paid_at": paid,
                "payer_account": payer, "amount": 50.0,
                "refunded_at": cancelled,
            })
        if bot:
            self.access.append((created - 0.01, ip, account.account_id, device, "POST",
                                "/api/bookings", 201, "okhttp/4.9"))
        else:
            for step, path in ((40.0, "/login"), (15.0, f"/doctors/{doctor}"),
                               (0.0, "/api/bookings")):
                self.access.append((created - step * float(self.rng.uniform(0.5, 1.5)), ip,
                                    account.account_id, device,
                                    "POST" if step == 0.0 else "GET", path, 200,
                                    "Mozilla/5.0"))
        return booking_id, created, (doctor, dept, start, release)

    def label(self, entity_type: str, entity_id: str, ring: str, role: str) -> None:
        self.labels.append((entity_type, entity_id, ring, role))


def _genuine_status(rng: np.random.Generator, no_show_rate: float = 0.04) -> str:
    roll = rng.random()
    if roll < 0.80:
        return "checked_in"
    if roll < 0.88:
        return "cancelled"
    if roll < 0.88 + no_show_rate:
        return "no_show"
    return "paid" if roll < 0.97 else "booked"


def _human_delay(rng: np.random.Generator) -> float:
    # People at release time: a few seconds at best, usually tens of seconds.
    return float(3.0 + rng.lognormal(np.log(18.0), 0.9))


def _genuine(world: _World) -> list[_Account]:
    rng = world.rng
    accounts: list[_Account] = []
    carrier_nat = [world.home_ip() for _ in range(8)]
    campus_ip = world.home_ip()
    n = max(200, int(4000 * world.scale))

    def make(kind: str, patients: list[_Patient], payers: list[str], ips: list[str],
             devices: list[str] | None = None, yearly: float = 3.0) -> _Account:
        account = _Account(world.next_id("a"), patients, payers, ips,
                           devices or [world.next_id("dev")],
                           ("app", "wechat", "web")[int(rng.integers(3))], yearly,
                           float(rng.uniform(0.05, 0.5)), kind)
        accounts.append(account)
        if kind != "ordinary":
            world.label("account", account.account_id, "", f"hard_case:{kind}")
        return account

    def ips_for(mobile_share: float) -> list[str]:
        if rng.random() < mobile_share:
            return [carrier_nat[int(rng.integers(len(carrier_nat)))], world.home_ip()]
        return [world.home_ip()]

    made = 0
    while made < n:
        roll = rng.random()
        if roll < 0.60:
            own = world.patient(18, 80)
            family = [own] + [world.patient() for _ in range(int(rng.integers(0, 3)))]
            make("ordinary", family, [world.payer()], ips_for(0.5), yearly=float(rng.uniform(1, 6)))
            made += 1
        elif roll < 0.72:
            # A family: several adults' accounts, one payer, children and grandparents.
            payer = world.payer()
            members = [world.patient() for _ in range(int(rng.integers(3, 7)))]
            for adult in range(int(rng.integers(2, 4))):
                make("family_shared_payer", [members[adult], *members[3:]], [payer],
                     ips_for(0.5), yearly=float(rng.uniform(2, 6)))
                made += 1
        elif roll < 0.80:
            # A carer booking for two to four elderly parents, across their departments.
            parents = [world.patient(65, 90) for _ in range(int(rng.integers(2, 5)))]
            make("carer", [world.patient(30, 60), *parents], [world.payer()], ips_for(0.5),
                 yearly=float(rng.uniform(8, 20)))
            made += 1
        elif roll < 0.88:
            make("campus_nat", [world.patient(18, 25)], [world.payer()], [campus_ip],
                 yearly=float(rng.uniform(1, 4)))
            made += 1
        elif roll < 0.93:
            make("carrier_nat", [world.patient(18, 70)], [world.payer()],
                 [carrier_nat[int(rng.integers(len(carrier_nat)))]],
                 yearly=float(rng.uniform(1, 5)))
            made += 1
        elif roll < 0.96:
            # An honest typo in one family member's ID number.
            family = [world.patient(18, 80), world.patient()]
            family[1] = _Patient(world.invalid_id_number(), family[1].name, family[1].phone)
            make("typo_id", family, [world.payer()], ips_for(0.3),
                 yearly=float(rng.uniform(2, 6)))
            made += 1
        else:
            made += 0  # clinic terminals are added below
            make("quick_at_release", [world.patient(18, 70)], [world.payer()], ips_for(0.5),
                 yearly=float(rng.uniform(4, 10)))
            accounts[-1].hot_share = 1.0
            made += 1
    # Community clinics' shared terminals: staff book on the clinic's one device for elderly
    # patients who log in with their own accounts.
    for _clinic in range(max(2, int(3 * world.scale))):
        device, ip = world.next_id("dev"), world.home_ip()
        for _ in range(int(rng.integers(30, 60))):
            make("clinic_terminal", [world.patient(60, 90)], [world.payer()], [ip], [device],
                 yearly=float(rng.uniform(1, 4)))
            accounts[-1].hot_share = 0.0
    return accounts


def _emit_genuine(world: _World, accounts: list[_Account]) -> None:
    rng = world.rng
    for account in accounts:
        # Each patient has one or two usual departments (chronic care, follow-ups).
        usual = {p.id_number: list(rng.choice(len(_DEPARTMENTS), size=2, replace=False))
                 for p in account.patients}
        for _ in range(max(1, int(rng.poisson(account.yearly)))):
            patient = account.patients[int(rng.integers(len(account.patients)))]
            dept = _DEPARTMENTS[int(usual[patient.id_number][int(rng.integers(2))])]
            choices = world.by_dept[dept]
            hot = [i for i in choices if i in world.hot]
            if hot and rng.random() < account.hot_share:
                doctor, delay = hot[int(rng.integers(len(hot)))], _human_delay(rng)
            else:
                doctor, delay = choices[int(rng.integers(len(choices)))], None
            if account.kind == "quick_at_release":
                delay = float(2.5 + rng.lognormal(np.log(4.0), 0.6))
            status = _genuine_status(rng)
            world.book(account, patient, doctor, delay=delay,
                       ip=account.ips[int(rng.integers(len(account.ips)))],
                       device=account.devices[0], status=status,
                       payer=account.payers[int(rng.integers(len(account.payers)))])


def _ring(world: _World, index: int, kind: str, carrier_nat: list[str]) -> None:
    rng = world.rng
    ring = f"R{index + 1}"
    size = {"bot_farm": (4, 9), "broker": (3, 7), "crowd": (8, 14)}[kind]
    n_accounts = int(rng.integers(*size))
    payers = [world.payer() for _ in range(int(rng.integers(2, 5)))]
    proxy_ips = [world.home_ip() for _ in range(int(rng.integers(20, 60)))]
    for payer in payers:
        world.label("payer", payer, ring, "payment_hub")
    accounts: list[_Account] = []
    for _ in range(n_accounts):
        virtual = kind == "bot_farm"
        own = _Patient(world.id_number(20, 60), world.name(), world.phone(virtual))
        devices = [world.next_id("dev") for _ in range(int(rng.integers(1, 4)))]
        account = _Account(world.next_id("a"), [own, world.patient()], [world.payer()],
                           [world.home_ip()], devices, "app", 0, 0, kind)
        accounts.append(account)
        # The member's own payer and home IP carry its camouflage bookings.
        world.label("payer", account.payers[0], ring, "member_payer")
        world.label("ip", account.ips[0], ring, "member_ip")
        for member in account.patients:
            # The member's own and family identities are the ring's too.
            world.label("patient", member.id_number, ring, "member_identity")
            world.label("phone", member.phone, ring, "member_phone")
        world.label("account", account.account_id,
                    ring, "holder" if kind == "bot_farm" else "booker")
        for device in devices:
            world.label("device", device, ring, "ring_device")
        if virtual:
            world.label("phone", own.phone, ring, "ring_phone")
    # Camouflage: each ring account also books normally for its own family, with its own
    # payer, at ordinary times.
    for account in accounts:
        for _ in range(int(rng.integers(1, 5))):
            patient = account.patients[int(rng.integers(2))]
            world.book(account, patient, int(rng.integers(len(world.doctors))), delay=None,
                       ip=account.ips[0], device=account.devices[0],
                       status=_genuine_status(rng), payer=account.payers[0])

    hot = world.hot
    # Ring-held identities for bot farms: fake people, many with invalid ID numbers and
    # nonsense names ("561"), on virtual numbers.
    fakes: list[_Patient] = []
    if kind == "bot_farm":
        for _ in range(int(rng.integers(6, 16))):
            fake_id = world.invalid_id_number() if rng.random() < 0.6 else world.id_number()
            name = str(int(rng.integers(100, 1000))) if rng.random() < 0.6 else world.name()
            fakes.append(_Patient(fake_id, name, world.phone(virtual=True)))
            world.label("patient", fake_id, ring, "fake_identity")
            world.label("phone", fakes[-1].phone, ring, "ring_phone")
    grabs = int(rng.integers(60, 160)) if kind != "crowd" else int(rng.integers(80, 160))
    buyers_made: dict[str, str] = {}

    def ip_for_grab() -> str:
        # Rotating IPs: mostly a proxy pool, partly the carriers' NATs like everybody else.
        if rng.random() < 0.3:
            return carrier_nat[int(rng.integers(len(carrier_nat)))]
        return proxy_ips[int(rng.integers(len(proxy_ips)))]

    # Releases the ring works: a crowd grabs together at the same releases.
    release_pool = [world.pick_session(hot[int(rng.integers(len(hot)))])
                    for _ in range(max(8, grabs // 4))]
    for _ in range(grabs):
        session = release_pool[int(rng.integers(len(release_pool)))]
        doctor_index = next(i for i, d in enumerate(world.doctors) if d[0] == session[0])
        account = accounts[int(rng.integers(len(accounts)))]
        device = account.devices[int(rng.integers(len(account.devices)))]
        buyer = world.patient()
        if kind == "bot_farm":
            holder = fakes[int(rng.integers(len(fakes)))]
            sold = rng.random() < 0.6
            delay = float(rng.uniform(0.02, 1.5))
            _bid, _created, session = world.book(
                account, holder, doctor_index, delay=delay, ip=ip_for_grab(), device=device,
                status="cancelled", payer=None, session=session,
                cancel_after=float(rng.uniform(600, 3 * 86400)), bot=True)
            if sold:
                cancel_time = world.rows[-1]["cancelled_at"]
                assert isinstance(cancel_time, float)
                rebooker = accounts[int(rng.integers(len(accounts)))]
                gap = float(rng.uniform(0.3, 20.0))
                world.book(rebooker, buyer, doctor_index,
                           delay=cancel_time + gap - session[3], ip=ip_for_grab(),
                           device=rebooker.devices[0],
                           status="checked_in" if rng.random() < 0.9 else "no_show",
                           payer=payers[int(rng.integers(len(payers)))], session=session,
                           bot=True)
                buyers_made[buyer.id_number] = buyer.phone
        elif kind == "broker":
            delay = float(rng.uniform(0.3, 2.5))
            world.book(account, buyer, doctor_index, delay=delay, ip=ip_for_grab(),
                       device=device, status="checked_in" if rng.random() < 0.85 else "no_show",
                       payer=payers[int(rng.integers(len(payers)))], session=session)
            buyers_made[buyer.id_number] = buyer.phone
        else:
            delay = float(3.0 + rng.lognormal(np.log(6.0), 0.5))
            payer = payers[int(rng.integers(len(payers)))] if rng.random() < 0.7 \
                else account.payers[0]
            if payer == account.payers[0]:
                # The member's own payer now pays for strangers: part of the ring.
                world.label("payer", payer, ring, "member_payer")
            world.book(account, buyer, doctor_index, delay=delay, ip=ip_for_grab(),
                       device=device, status="checked_in" if rng.random() < 0.85 else "no_show",
                       payer=payer, session=session)
            buyers_made[buyer.id_number] = buyer.phone
    for buyer_id, phone in buyers_made.items():
        world.label("patient", buyer_id, ring, "buyer")
        world.label("phone", phone, ring, "buyer_phone")
    for ip in proxy_ips:
        world.label("ip", ip, ring, "ring_ip")


def _credential_broker(world: _World, index: int, carrier_nat: list[str]) -> None:
    """T9: a reseller collects customers' own app logins and books each customer's slot
    with the customer's own account, from the reseller's few devices, at release time with
    an auto-clicker. Each account looks like one patient booking for themselves and paying
    with their own payer; what gives the ring away is the devices and the timing."""
    rng = world.rng
    ring = f"R{index + 1}"
    devices = [world.next_id("dev") for _ in range(int(rng.integers(1, 3)))]
    proxy_ips = [world.home_ip() for _ in range(int(rng.integers(5, 15)))]
    for device in devices:
        world.label("device", device, ring, "ring_device")
    for ip in proxy_ips:
        world.label("ip", ip, ring, "ring_ip")
    hot = world.hot
    for _ in range(int(rng.integers(12, 25))):
        customer = world.patient()
        account = _Account(world.next_id("a"), [customer], [world.payer()],
                           [world.home_ip()], [world.next_id("dev")], "app", 0, 0,
                           "credential_broker")
        # The account is the customer's own: the broker's device and addresses are the
        # ring's, the customer is a buyer (and the account a genuine look-alike).
        world.label("account", account.account_id, "", "hard_case:lent_account")
        world.label("patient", customer.id_number, ring, "buyer")
        # The customer's own identifiers are the ring's buyers' too, as for other rings.
        world.label("phone", customer.phone, ring, "buyer_phone")
        world.label("payer", account.payers[0], ring, "buyer_payer")
        world.label("device", account.devices[0], ring, "buyer_device")
        world.label("ip", account.ips[0], ring, "buyer_ip")
        # The customer's own ordinary bookings, from their own phone.
        for _ in range(int(rng.integers(0, 3))):
            world.book(account, customer, int(rng.integers(len(world.doctors))), delay=None,
                       ip=account.ips[0], device=account.devices[0],
                       status=_genuine_status(rng), payer=account.payers[0])
        for _ in range(int(rng.integers(1, 4))):
            world.book(account, customer, hot[int(rng.integers(len(hot)))],
                       delay=float(rng.uniform(0.3, 4.0)),
                       ip=(proxy_ips[int(rng.integers(len(proxy_ips)))] if rng.random() < 0.7
                           else carrier_nat[int(rng.integers(len(carrier_nat)))]),
                       device=devices[int(rng.integers(len(devices)))],
                       status="checked_in", payer=account.payers[0])


def _channel_account(world: _World, channel: str, kind: str) -> _Account:
    """A hospital's window or kiosk account: one workstation, the hospital's address."""
    return _Account(world.next_id("a"), [], [], [world.home_ip()], [world.next_id("dev")],
                    channel, 0, 0, kind)


def _walk_ins(world: _World, desk: _Account, count: int) -> None:
    """A desk's ordinary business: walk-ins booked on the day or ahead at ordinary hours,
    each paying for themselves."""
    rng = world.rng
    for _ in range(count):
        who = world.patient()
        doctor = int(rng.integers(len(world.doctors)))
        session = world.pick_session(doctor)
        same_day = rng.random() < 0.6
        delay = (session[2] - session[3] - float(rng.uniform(1800, 5 * 3600))) if same_day \
            else None
        world.book(desk, who, doctor, delay=delay, ip=desk.ips[0], device=desk.devices[0],
                   status=_genuine_status(rng), payer=world.payer(), session=session)


def _institutions(world: _World, first_ring: int, genuine: list[_Account]) -> None:
    """Registration windows and kiosks: two insider rings and their genuine look-alikes."""
    rng = world.rng
    hot = world.hot
    ordinary = [a for a in genuine if a.kind == "ordinary"]

    def release_session() -> tuple[int, tuple[str, str, float, float]]:
        doctor = hot[int(rng.integers(len(hot)))]
        return doctor, world.pick_session(doctor)

    # Genuine busy windows: walk-ins, and release-time bookings for people at the counter
    # (some cancelled days ahead; the freed slot goes to the waitlist or to whoever was
    # refreshing, a different stranger each time, paying for themselves).
    for _ in range(max(2, round(3 * world.scale))):
        desk = _channel_account(world, "window", "busy_window")
        world.label("account", desk.account_id, "", "hard_case:busy_window")
        _walk_ins(world, desk, int(rng.integers(150, 300)))
        for _ in range(int(rng.integers(30, 60))):
            doctor, session = release_session()
            cancelled = rng.random() < 0.4
            world.book(desk, world.patient(), doctor, delay=float(rng.uniform(3, 40)),
                       ip=desk.ips[0], device=desk.devices[0],
                       status="cancelled" if cancelled else "checked_in",
                       payer=world.payer(), session=session,
                       cancel_after=float(rng.uniform(86400, 4 * 86400)))
            if not cancelled:
                continue
            gone = world.rows[-1]["cancelled_at"]
            assert isinstance(gone, float)
            taker = ordinary[int(rng.integers(len(ordinary)))]
            waitlist = rng.random() < 0.6
            world.book(taker, taker.patients[0], doctor,
                       delay=gone + float(rng.uniform(0.0, 1.0) if waitlist
                                          else rng.uniform(1.0, 6.0)) - session[3],
                       ip=taker.ips[0], device=taker.devices[0], status="checked_in",
                       payer=taker.payers[0], session=session,
                       channel="waitlist" if waitlist else None)
    # Genuine kiosks: visitors at ordinary hours paying for themselves, and families who
    # book several relatives at a release and pay with one wallet.
    for _ in range(max(2, round(3 * world.scale))):
        kiosk = _channel_account(world, "kiosk", "busy_kiosk")
        world.label("account", kiosk.account_id, "", "hard_case:busy_kiosk")
        _walk_ins(world, kiosk, int(rng.integers(100, 200)))
        for _ in range(int(rng.integers(3, 8))):
            wallet = world.payer()
            world.label("payer", wallet, "", "hard_case:family_wallet")
            for _ in range(int(rng.integers(2, 5))):
                doctor, session = release_session()
                world.book(kiosk, world.patient(), doctor, delay=float(rng.uniform(3, 40)),
                           ip=kiosk.ips[0], device=kiosk.devices[0], status="checked_in",
                           payer=wallet, session=session)
    # Families who swap a held slot to a relative now and then: the mother cannot go, her
    # brother (own phone, never booked before) takes the slot seconds later, twice a year.
    for _ in range(max(3, round(10 * world.scale))):
        family = _Account(world.next_id("a"), [world.patient(30, 70)], [world.payer()],
                          [world.home_ip()], [world.next_id("dev")], "app", 0, 0,
                          "family_swap")
        world.label("account", family.account_id, "", "hard_case:family_swap")
        for _ in range(int(rng.integers(2, 6))):
            world.book(family, family.patients[0], int(rng.integers(len(world.doctors))),
                       delay=None, ip=family.ips[0], device=family.devices[0],
                       status=_genuine_status(rng), payer=family.payers[0])
        for _ in range(2):
            doctor, session = release_session()
            world.book(family, family.patients[0], doctor, delay=float(rng.uniform(2, 30)),
                       ip=family.ips[0], device=family.devices[0], status="cancelled",
                       payer=family.payers[0], session=session,
                       cancel_after=float(rng.uniform(86400, 5 * 86400)))
            gone = world.rows[-1]["cancelled_at"]
            assert isinstance(gone, float)
            relative = world.patient()
            world.book(family, relative, doctor,
                       delay=gone + float(rng.uniform(8, 16)) - session[3], ip=family.ips[0],
                       device=family.devices[0], status="checked_in",
                       payer=family.payers[0], session=session)
    index = first_ring
    # A registration-window insider: the clerk books hot slots seconds after release, days
    # ahead, and cancels them; a few catcher accounts rebook the freed slots within seconds
    # for buyers, all paid by one wallet.
    for _ in range(max(1, round(world.scale))):
        ring = f"R{index + 1}"
        index += 1
        desk = _channel_account(world, "window", "window_insider")
        world.label("account", desk.account_id, ring, "insider")
        _walk_ins(world, desk, int(rng.integers(150, 300)))
        wallet = world.payer()
        world.label("payer", wallet, ring, "payment_hub")
        catchers = []
        for _ in range(int(rng.integers(3, 5))):
            catcher = _Account(world.next_id("a"), [world.patient()], [world.payer()],
                               [world.home_ip()], [world.next_id("dev")], "app", 0, 0,
                               "catcher")
            catchers.append(catcher)
            world.label("account", catcher.account_id, ring, "broker")
            world.label("device", catcher.devices[0], ring, "ring_device")
        for _ in range(int(rng.integers(40, 70))):
            doctor, session = release_session()
            world.book(desk, world.patient(), doctor, delay=float(rng.uniform(3, 40)),
                       ip=desk.ips[0], device=desk.devices[0], status="cancelled",
                       payer=None, session=session,
                       cancel_after=float(rng.uniform(86400, 5 * 86400)))
            gone = world.rows[-1]["cancelled_at"]
            assert isinstance(gone, float)
            catcher = catchers[int(rng.integers(len(catchers)))]
            buyer = world.patient()
            world.label("patient", buyer.id_number, ring, "buyer")
            world.book(catcher, buyer, doctor, delay=gone + float(rng.uniform(1, 6)) - session[3],
                       ip=catcher.ips[0], device=catcher.devices[0], status="checked_in",
                       payer=wallet, session=session)
    # A kiosk insider with its own wallet: the clerk books at release for buyers, and one
    # wallet pays for those bookings only.
    for _ in range(max(1, round(world.scale))):
        ring = f"R{index + 1}"
        index += 1
        kiosk = _channel_account(world, "kiosk", "kiosk_insider")
        world.label("account", kiosk.account_id, ring, "insider")
        _walk_ins(world, kiosk, int(rng.integers(100, 200)))
        wallet = world.payer()
        world.label("payer", wallet, ring, "payment_hub")
        for _ in range(int(rng.integers(35, 60))):
            doctor, session = release_session()
            buyer = world.patient()
            world.label("patient", buyer.id_number, ring, "buyer")
            world.book(kiosk, buyer, doctor, delay=float(rng.uniform(2, 30)), ip=kiosk.ips[0],
                       device=kiosk.devices[0], status="checked_in", payer=wallet,
                       session=session)


def _dirty(world: _World, frame: pl.DataFrame) -> pl.DataFrame:
    """Real exports are dirty: duplicated rows and rows with a required field lost."""
    rng = world.rng
    picks = rng.choice(frame.height, size=max(3, frame.height // 500), replace=False)
    duplicates = frame.select(pl.all().gather(picks[: len(picks) // 2].tolist()))
    broken = frame.select(pl.all().gather(picks[len(picks) // 2:].tolist())).with_columns(
        pl.lit(None, dtype=pl.String).alias("account_id"),
        pl.col("booking_id") + "x",
    )
    return pl.concat([frame, duplicates, broken])


def _format_times(frame: pl.DataFrame, columns: list[str], zone: zoneinfo.ZoneInfo) -> pl.DataFrame:
    result: pl.DataFrame = frame.with_columns(
        pl.from_epoch((pl.col(c) * 1e6).round().cast(pl.Int64), time_unit="us")
        .dt.replace_time_zone("UTC").dt.convert_time_zone(zone.key)
        .dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").alias(c)
        for c in columns
    )
    return result


def generate(
    *, seed: int, scale: float = 1.0, scenario: str = "seeds",
    zone: zoneinfo.ZoneInfo | None = None, year: int = 2025,
) -> Synthetic:
    """Generate one year. ``scale`` 1.0 is about 4,000 genuine accounts and eight rings
    (two of each kind); at least one ring of each kind at any scale."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if scale <= 0:
        raise ValueError("scale must be positive")
    zone = zone or get_settings().zone
    world = _World(seed, scale, zone, year)
    accounts = _genuine(world)
    _emit_genuine(world, accounts)
    carrier_nat = sorted({a.ips[0] for a in accounts if a.kind == "carrier_nat"})
    kinds = ("bot_farm", "broker", "crowd", "credential_broker")
    for index in range(max(4, round(8 * scale))):
        if kinds[index % 4] == "credential_broker":
            _credential_broker(world, index, carrier_nat)
        else:
            _ring(world, index, kinds[index % 4], carrier_nat)
    _institutions(world, max(4, round(8 * scale)), accounts)
    # Background requests: page views that never became bookings.
    for _ in range(len(world.access) // 4):
        account = accounts[int(world.rng.integers(len(accounts)))]
        when = world.start.timestamp() + float(world.rng.uniform(0, 365 * 86400))
        world.access.append((when, account.ips[0], account.account_id, account.devices[0],
                             "GET", "/doctors", 200, "Mozilla/5.0"))

    bookings = pl.DataFrame(world.rows, infer_schema_length=None).sort("created_at")
    bookings = _format_times(bookings, ["created_at", "session_start", "released_at",
                                        "cancelled_at"], zone)
    bookings = bookings.with_columns(pl.col("fee").cast(pl.String))
    bookings = _dirty(world, bookings)
    payments = pl.DataFrame(world.pays, infer_schema_length=None).sort("paid_at")
    payments = _format_times(payments, ["paid_at", "refunded_at"], zone)
    access = pl.DataFrame(
        world.access, orient="row",
        schema=["ts", "ip", "account_id", "device_id", "method", "path", "status", "user_agent"],
    ).sort("ts")
    access = _format_times(access, ["ts"], zone)
    labels = pl.DataFrame(world.labels, orient="row",
                          schema=["entity_type", "entity_id", "ring_id", "role"]).unique(
        subset=["entity_type", "entity_id"], keep="first", maintain_order=True)
    # Label only what the records show: a proxy IP the ring never drew, or a family member
    # it never booked, is no entity an investigator could find.
    present = pl.concat([
        bookings.select(pl.lit(kind).alias("entity_type"), pl.col(column).alias("entity_id"))
        for kind, column in (("account", "account_id"), ("patient", "patient_id_number"),
                             ("phone", "patient_phone"), ("device", "device_id"),
                             ("ip", "ip"))
    ] + [payments.select(pl.lit("payer").alias("entity_type"),
                         pl.col("payer_account").alias("entity_id"))]).drop_nulls().unique()
    labels = labels.join(present, on=["entity_type", "entity_id"], how="semi",
                         maintain_order="left")
    return Synthetic(bookings, payments, access, labels)


def write_synthetic(
    out: Path, *, seed: int, scale: float = 1.0, scenario: str = "seeds",
    zone: zoneinfo.ZoneInfo | None = None,
) -> dict[str, int]:
    """Generate and write ``bookings.csv``, ``payments.csv``, ``access.csv``, ``labels.csv``."""
    data = generate(seed=seed, scale=scale, scenario=scenario, zone=zone)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name, frame in (("bookings", data.bookings), ("payments", data.payments),
                        ("access", data.access), ("labels", data.labels)):
        frame.write_csv(out / f"{name}.csv")
        counts[name] = frame.height
    return counts
