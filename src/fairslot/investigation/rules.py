"""The investigators' rules, each an explained finding with the figures behind it.

Every rule returns findings: (entity_type, entity_id, code, strength, detail). ``strength`` in
[0, 1] is how much the finding alone says about the entity; ``scoring`` combines strengths so
that no single weak clue (one mistyped ID number, a fast click, a shared clinic terminal)
flags anybody, while clues that only a ring produces do. Thresholds live in ``Thresholds``
and are documented, with the reasoning behind each, in docs/investigation.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata

import polars as pl
from stdnum.cn import ric

from fairslot.config import get_settings
from fairslot.domain.identity import is_valid_id_number, known_region

__all__ = [
    "CARRIER_POOL_ADDRESSES",
    "FINDING_SCHEMA",
    "PLATFORM_CHANNELS",
    "SHARED_ADDRESS",
    "STAFF_CHANNELS",
    "Thresholds",
    "account_many_patients",
    "channel_of",
    "click_rate",
    "fanout_payers",
    "fast_after_release",
    "fronts_for_software",
    "grab_device",
    "hub_paid_accounts",
    "identity_spread",
    "instant_hub_paid",
    "institutional_accounts",
    "invalid_id_numbers",
    "invalid_patients",
    "ip_fanout",
    "launder_pairs",
    "nonsense_names",
    "on_site",
    "ordinary_addresses",
    "payer_fanout",
    "release_strangers",
    "repeated_launder_ties",
    "repeated_no_shows",
    "run_rules",
    "shared_device",
    "shared_phone",
    "staff_release_caught",
    "staff_release_for_hub",
    "staff_release_wallet",
    "typo_patients",
    "unused_holds",
    "valid_id_number",
    "without_platform_timing",
]

FINDING_SCHEMA = {
    "entity_type": pl.String,
    "entity_id": pl.String,
    "code": pl.String,
    "strength": pl.Float64,
    "detail": pl.String,
}

# Chinese names (with the middle dot of many minority names) or Latin-script names; what is
# left (digits such as "561", single characters, symbols) is not a person's name.
_NAME = re.compile(r"^[\u3400-\u9fff\u00b7\u30fb]{2,20}$|^[A-Za-z][A-Za-z .'\-]{1,59}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Thresholds:
    """The figures each rule uses; docs/investigation.md explains each choice."""

    fast_seconds: float = 1.0
    """A booking less than this soon after its slot's release is beyond a person using the app: a
    practised hand with the form filled in ahead books in 1.5-2 s, software in 0.02-0.3 s."""
    spread_days: int = 7
    spread_departments: int = 3
    spread_doctors: int = 4
    family_size: int = dataclasses.field(
        default_factory=lambda: get_settings().max_patients_per_account)
    """The platform's per-account patient limit: the size of a household it allows."""
    payer_volume_per_year: int = 100
    """The seed cases' abnormal payment accounts had 100+ payments a year."""
    ip_patients_per_hour: int = 10
    device_accounts: int = 5
    grab_seconds: float = 10.0
    """A release-time grab: well inside the first minute in which hot slots are gone."""
    launder_seconds: float = 60.0
    no_shows: int = 3
    no_show_rate: float = 0.5
    zone: str = dataclasses.field(default_factory=lambda: get_settings().zone.key)
    """The hospital's time zone: what "the same day" means for on-site sales."""
    clicks_per_minute: int = 120
    """Half the auto-clicker's 200-300 clicks a minute in the seed cases; a person reading
    pages does not sustain two requests a second for a minute."""

    @property
    def payer_patients(self) -> int:
        """A payer paying for more than twice a household is paying for strangers."""
        return 2 * self.family_size


SHARED_ADDRESS = 50
"""An IP used by more accounts than this is a crowd's exit (a carrier NAT, a campus or a
hospital Wi-Fi): it links nobody, neither in the link graph nor in a laundering pair."""

CARRIER_POOL_ADDRESSES = 20
"""Addresses of one /16 prefix, each shared over the year by accounts tied by nothing else
(no patient, payer, phone or device in common), that make the prefix a mobile carrier's
rotating exit pool (``ordinary_addresses``)."""


def _prefix16(ip: pl.Expr) -> pl.Expr:
    """The first two octets of an IPv4 address (null for anything else)."""
    return ip.str.extract(r"^(\d{1,3}\.\d{1,3})\.\d{1,3}\.\d{1,3}$")


def ordinary_addresses(bookings: pl.DataFrame) -> set[str]:
    """IPs that tie nobody: a crowd's exit used by more than ``SHARED_ADDRESS`` accounts
    over the year, and every address of a mobile carrier's rotating pool. A carrier hands
    each phone a different exit address from its pool for each session, so over a year
    each address is shared by a handful of strangers, few at a time: under the crowd
    cutoff, yet no more a tie than the carrier itself. A /16 prefix is such a pool when
    ``CARRIER_POOL_ADDRESSES`` or more of its addresses were each shared by accounts that
    have no patient, phone or device in common, and those strangers number more than
    ``SHARED_ADDRESS``. Home broadband prefixes share an address between a household's
    accounts (tied by their patients and phones), a ring's proxies between a ring's
    accounts (a few dozen at most): neither reaches both counts."""
    used = bookings.filter(pl.col("ip").is_not_null()).select(
        "account_id", "ip").unique()
    if used.is_empty():
        return set()
    users = used.group_by("ip").agg(pl.len().alias("users"))
    crowded = set(users.filter(pl.col("users") > SHARED_ADDRESS).get_column("ip").to_list())
    shared = used.join(users.filter((pl.col("users") >= 2)
                                    & (pl.col("users") <= SHARED_ADDRESS)), on="ip")
    if shared.is_empty():
        return crowded
    pairs = (shared.join(shared.select("ip", pl.col("account_id").alias("b")), on="ip")
             .filter(pl.col("account_id") < pl.col("b"))
             .select(pl.col("account_id").alias("a"), "b", "ip"))
    other = pl.concat([
        bookings.select("account_id", pl.lit(kind).alias("kind"),
                        pl.col(column).alias("value"))
        for kind, column in (("patient", "patient"), ("phone", "patient_phone"),
                             ("device", "device_id"))
    ]).drop_nulls().unique()
    accounts = set(pairs.get_column("a").to_list()) | set(pairs.get_column("b").to_list())
    # A value shared by a crowd (a kiosk's device, a hospital's switchboard number) ties a
    # crowd of strangers, as in the link graph; leaving it out also keeps the pairs few.
    other = other.filter(pl.col("account_id").is_in(sorted(accounts))).filter(
        pl.len().over("kind", "value") <= SHARED_ADDRESS)
    tied = (other.join(other.select("kind", "value", pl.col("account_id").alias("b")),
                       on=["kind", "value"])
            .filter(pl.col("account_id") < pl.col("b"))
            .select(pl.col("account_id").alias("a"), "b").unique()
            .with_columns(pl.lit(True).alias("tied")))
    strangers = (pairs.join(tied, on=["a", "b"], how="left")
                 .filter(pl.col("tied").is_null())
                 .with_columns(_prefix16(pl.col("ip")).alias("prefix"))
                 .filter(pl.col("prefix").is_not_null()))
    pools = (
        pl.concat([strangers.select("prefix", "ip", pl.col("a").alias("account_id")),
                   strangers.select("prefix", "ip", pl.col("b").alias("account_id"))])
        .group_by("prefix").agg(pl.col("ip").n_unique().alias("addresses"),
                                pl.col("account_id").n_unique().alias("strangers"))
        .filter((pl.col("addresses") >= CARRIER_POOL_ADDRESSES)
                & (pl.col("strangers") > SHARED_ADDRESS))
        .get_column("prefix").to_list())
    if not pools:
        return crowded
    pooled = used.select("ip").unique().filter(_prefix16(pl.col("ip")).is_in(pools))
    return crowded | set(pooled.get_column("ip").to_list())


PLATFORM_CHANNELS = frozenset({"draw", "waitlist"})
"""Bookings the platform itself writes for a person (a draw's winner, the next on a
waitlist): the row is created at the release instant by the platform, so its timing says
nothing about the person's hands."""
STAFF_CHANNELS = frozenset({"window", "desk", "phone", "call_centre", "kiosk", "staff",
                            "referral"})
"""Bookings made by hospital staff or an institutional terminal for whoever is in front of
them: a registration window, a call centre, a self-service kiosk, a referral desk."""


def channel_of(bookings: pl.DataFrame) -> pl.Expr:
    """The booking channel, lower-case, or null when the export does not say."""
    if "channel" not in bookings.columns:
        return pl.lit(None, dtype=pl.String)
    return pl.col("channel").str.strip_chars().str.to_lowercase()


def without_platform_timing(bookings: pl.DataFrame) -> pl.DataFrame:
    """The bookings with ``released_at`` cleared where the platform, not the person, made
    the booking (draw, waitlist) or staff made it (window, desk, call centre, kiosk): no
    timing rule may read a race into them. A staff booking's release time is kept apart as
    ``staff_released_at``, for ``staff_release_for_hub`` alone."""
    if "channel" not in bookings.columns:
        return bookings.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC"))
                                     .alias("staff_released_at"))
    no_race = channel_of(bookings).is_in(sorted(PLATFORM_CHANNELS | STAFF_CHANNELS))
    staff = channel_of(bookings).is_in(sorted(STAFF_CHANNELS)).fill_null(False)
    return bookings.with_columns(
        pl.when(staff).then(pl.col("released_at")).otherwise(None)
        .alias("staff_released_at"),
        pl.when(no_race.fill_null(False)).then(None).otherwise(pl.col("released_at"))
        .alias("released_at"))


INSTITUTION_RACE_SECONDS = 60
"""A booking this soon after its slot's release races for it (``institutional_accounts``)."""


def institutional_accounts(bookings: pl.DataFrame, t: Thresholds,
                           pairs: pl.DataFrame | None = None) -> pl.DataFrame:
    """Accounts that book as an institution does (account_id, patients, why): most of
    their bookings come through a staff channel, or they book for several households of
    patients without ever racing a release and the patients pay for themselves (a call
    centre or kiosk exported as ``other``). What they book is judged per patient and per
    payer; the account's own patient count, typos and cancellations are the desk's job.

    An account whose bookings keep landing seconds after another account cancelled the same
    session (three or more laundering pairs within ``grab_seconds``, a tenth of its bookings
    or more) is catching freed slots for buyers: that is no institution, whatever its
    hours. ``pairs`` are ``launder_pairs``' pairs."""
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    platform = channel_of(bookings).is_in(sorted(PLATFORM_CHANNELS)).fill_null(False)
    per_account = bookings.group_by("account_id").agg(
        pl.len().alias("bookings"),
        pl.col("patient").n_unique().alias("patients"),
        channel_of(bookings).is_in(sorted(STAFF_CHANNELS)).fill_null(False).mean()
        .alias("staff_share"),
        # Racing a release is booking in its first minute, when hot slots go (within
        # seconds) and a ring's bots and hands book; a kiosk's or a desk's visitor who
        # arrives a few minutes after a release is not racing anybody.
        ((after >= 0) & (after <= INSTITUTION_RACE_SECONDS)).fill_null(False)
        .filter(~platform).mean().alias("race_share"),
        # What the platform booked (a draw's win, a waitlist's catch) is no clerk's work
        # at ordinary hours: its release time is cleared, yet it was no less a release.
        # An account winning draws for a stream of strangers books at no ordinary hour.
        pl.col("patient").filter(~platform).n_unique().alias("own_patients"),
    )
    if pairs is not None and not pairs.is_empty():
        caught = (pairs.filter((pl.col("holder_account") != pl.col("rebook_account"))
                               & (pl.col("gap") < t.grab_seconds))
                  .group_by(pl.col("rebook_account").alias("account_id"))
                  .agg(pl.col("rebooking").n_unique().alias("caught")))
        per_account = per_account.join(caught, on="account_id", how="left").filter(
            ~((pl.col("caught").fill_null(0) >= 3)
              & (pl.col("caught").fill_null(0) >= 0.1 * pl.col("bookings")))).drop("caught")
    return per_account.filter(
        ((pl.col("staff_share") >= 0.5) & (pl.col("patients") > t.family_size))
        | ((pl.col("own_patients") >= 3 * t.family_size)
           & (pl.col("race_share").fill_null(1.0) < 0.1))
    ).with_columns(
        pl.when(pl.col("staff_share") >= 0.5)
        .then(pl.format("{}% of its bookings through a staff channel",
                        (100 * pl.col("staff_share")).round(0)))
        .otherwise(pl.format("{} patients booked at ordinary hours, never at a release",
                             pl.col("patients"))).alias("why"),
    ).select("account_id", "patients", "why")


def _findings(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col(name).cast(dtype) for name, dtype in FINDING_SCHEMA.items()
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDING_SCHEMA)


_RESIDENT_SHAPE = re.compile(r"^\d{17}[\dX]$")
_DIGITS = re.compile(r"^\d+X?$")
_OTHER_DOCUMENT = re.compile(r"^[A-Z][A-Z0-9]{5,19}$|^\d{7,12}$")
RESIDENT_DOCUMENT = frozenset({"", "resident_id", "resident", "id_card", "身份证"})
"""``patient_id_type`` values (lower-case) that mean a mainland resident ID; any other
value names another document (passport, Hong Kong/Macau or Taiwan permit, foreigner's
permanent residence card, ...), whose number the resident-ID checks do not apply to."""


def _resident_region(value: str) -> bool:
    return len(value) >= 6 and value[:6].isdigit() and known_region(value[:6])


def valid_id_number(value: str, document: str | None = None) -> bool:
    """Whether an identity number is plausible for its document. A pseudonymised value
    (``h:``) counts as valid because it is opaque, not wrong.

    ``document`` is the optional ``patient_id_type`` column: when it names a document
    other than the resident ID, the number is that document's and is not judged; when it
    says resident ID, the platform's checks decide. Without it the number's shape
    decides. An 18-character resident-ID shape (17 digits and a check digit) must pass
    the platform's own checks (check digit, birth date, known county code; see
    ``fairslot.domain.identity``), except that a leading 9 is the 2023 foreigner's
    permanent residence card, whose region field is a nationality code. A string of
    digits that starts with a county code is a resident ID cut short or padded and is
    invalid. A number not in the resident-ID shape at all (a letter and digits such as a
    passport ``G26864141`` or a home-return permit ``H58892624``, or the 7-12 digits of a
    Taiwan or Macau document) is another document, not a typo. What is left (``561``,
    symbols, a few digits) is no document's number and is invalid.

    The region is deliberately not checked against the birth year: numbers issued in the
    1980s carry codes created after their holders' birth, and flagging the elderly would
    be a false accusation."""
    if value.startswith("h:"):
        return True
    kind = (document or "").strip().lower()
    if kind not in RESIDENT_DOCUMENT:
        return True
    if kind:  # declared a resident ID: its shape is not in doubt
        return is_valid_id_number(value)
    if _RESIDENT_SHAPE.match(value):
        if is_valid_id_number(value):
            return True
        if value.startswith("9"):  # foreigner's permanent residence card (2023 format)
            return _check_and_birth_ok(value)
        return False
    if _DIGITS.match(value) and _resident_region(value):
        return False
    return bool(_OTHER_DOCUMENT.match(value))


def _check_and_birth_ok(value: str) -> bool:
    if value[-1] != ric.calc_check_digit(value):
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return born.year >= 1880 and born <= dt.date.today()


def _is_name(value: str) -> bool:
    if value.startswith("h:"):
        return True
    return bool(_NAME.match(unicodedata.normalize("NFKC", value).strip()))


def _graded(count: pl.Expr, steps: tuple[tuple[float, float], ...]) -> pl.Expr:
    """Strength by count: the strength of the highest step whose count is reached."""
    expr: pl.Expr = pl.lit(0.0)
    for at_least, strength in steps:
        expr = pl.when(count >= at_least).then(pl.lit(strength)).otherwise(expr)
    return expr


def invalid_patients(bookings: pl.DataFrame) -> pl.DataFrame:
    """The distinct patients (column ``patient``) whose number is invalid for its document
    (``valid_id_number``). A number given once as another document is given the benefit of
    the doubt."""
    document = pl.col("patient_id_type") if "patient_id_type" in bookings.columns \
        else pl.lit(None, dtype=pl.String)
    # Each distinct (number, document) is checked once, not each row.
    distinct = bookings.select("patient", document.alias("document")).unique()
    checked = distinct.with_columns(
        pl.struct("patient", "document").map_elements(
            lambda row: valid_id_number(row["patient"], row["document"]),
            return_dtype=pl.Boolean).alias("valid"))
    return (checked.group_by("patient").agg(pl.col("valid").any())
            .filter(~pl.col("valid")).select("patient"))


def _near(a: str, b: str) -> bool:
    """Two numbers one slip of the hand apart: the same length, at most two positions
    differing (one mistyped digit and the check digit, or two neighbours swapped)."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 2


def typo_patients(bookings: pl.DataFrame, invalid: pl.DataFrame | None = None
                  ) -> pl.DataFrame:
    """Invalid numbers that are an account's slip for a person it also booked with a valid
    number (account_id, patient, person): the same name (a person's name, not "561"), or
    the numbers one slip apart. A carer who mistyped a neighbour's number once and typed it
    right the next time booked one person, not two, and holds no fake identity."""
    invalid = invalid_patients(bookings) if invalid is None else invalid
    empty = pl.DataFrame(schema={"account_id": pl.String, "patient": pl.String,
                                 "person": pl.String})
    if invalid.is_empty():
        return empty
    bad = set(invalid.get_column("patient").to_list())
    seen = bookings.group_by("account_id", "patient").agg(
        pl.col("patient_name").drop_nulls().unique().alias("names"))
    touched = seen.filter(pl.col("patient").is_in(sorted(bad))).get_column("account_id")
    rows: list[tuple[str, str, str]] = []
    per_account: dict[str, list[tuple[str, list[str]]]] = {}
    for account, patient, names in seen.filter(pl.col("account_id").is_in(touched)).sort(
            "account_id", "patient").iter_rows():
        per_account.setdefault(account, []).append((patient, names))
    for account, patients in per_account.items():
        good = [(p, {n for n in names if _is_name(n)}) for p, names in patients
                if p not in bad]
        for patient, names in patients:
            if patient not in bad:
                continue
            own = {n for n in names if _is_name(n)}
            for other, other_names in good:
                if (own & other_names) or _near(patient, other):
                    rows.append((account, patient, other))
                    break
    return pl.DataFrame(rows, schema=empty.schema, orient="row") if rows else empty


STAFF_SLIP = 0.2
"""Strength of an invalid number that only staff ever typed, for a patient who came."""


def invalid_id_numbers(bookings: pl.DataFrame) -> pl.DataFrame:
    """Patients whose ID number fails the checksum, birth date or region check, and the
    accounts that booked them. One invalid number on an account is a typo more often than
    not; two or more distinct ones are not. A number that is the account's slip for a
    person it also booked correctly (``typo_patients``) is not held against the account."""
    invalid = invalid_patients(bookings)
    if invalid.is_empty():
        return _empty()
    # A number only ever typed by staff (a window, a call centre) for a person who came to
    # the visit is the clerk's slip, not the patient's fake: the person stood at the
    # counter with an ID card and was seen. It stays a weak clue, whoever the clerk is.
    staff = channel_of(bookings).is_in(sorted(STAFF_CHANNELS)).fill_null(False)
    typed_by_staff = (
        bookings.join(invalid, on="patient")
        .group_by("patient").agg(staff.all().alias("staff_only"),
                                 (pl.col("status") == "checked_in").any().alias("came"))
        .filter(pl.col("staff_only") & pl.col("came")).get_column("patient").to_list())
    patients = invalid.with_columns(
        pl.lit("patient").alias("entity_type"), pl.col("patient").alias("entity_id"),
        pl.lit("invalid_id_number").alias("code"),
        pl.when(pl.col("patient").is_in(typed_by_staff)).then(pl.lit(STAFF_SLIP))
        .otherwise(pl.lit(0.6)).alias("strength"),
        pl.when(pl.col("patient").is_in(typed_by_staff))
        .then(pl.lit("ID number fails the checksum, birth date or region check; only ever "
                     "typed by staff, for a patient who came to the visit"))
        .otherwise(pl.lit("ID number fails the checksum, birth date or region check"))
        .alias("detail"),
    )
    typos = typo_patients(bookings, invalid).select("account_id", "patient",
                                                    pl.lit(True).alias("typo"))
    per_account = (
        bookings.join(invalid, on="patient")
        .join(typos, on=["account_id", "patient"], how="left")
        .with_columns(pl.col("typo").fill_null(False))
        .group_by("account_id")
        .agg(pl.col("patient").filter(~pl.col("typo")).n_unique().alias("n"),
             pl.col("patient").filter(pl.col("typo")).n_unique().alias("typos"),
             (~pl.col("typo")).sum().alias("rows"))
        .filter(pl.col("n") > 0)
    )
    accounts = per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("invalid_id_number").alias("code"),
        _graded(pl.col("n"), ((1, 0.25), (2, 0.7), (3, 0.9))).alias("strength"),
        pl.format("booked for {} invalid ID number(s) in {} booking(s), besides {} slip(s) "
                  "for patients it also booked correctly", pl.col("n"), pl.col("rows"),
                  pl.col("typos")).alias("detail"),
    )
    return pl.concat([_findings(patients), _findings(accounts)])


def nonsense_names(bookings: pl.DataFrame) -> pl.DataFrame:
    """Patient names that are no person's name (digits such as "561", one character,
    symbols); pseudonymised names are skipped."""
    names = bookings.filter(pl.col("patient_name").is_not_null()).select(
        "patient", "patient_name").unique()
    distinct = names.select("patient_name").unique().with_columns(
        pl.col("patient_name").map_elements(_is_name, return_dtype=pl.Boolean).alias("ok"))
    bad = names.join(distinct.filter(~pl.col("ok")), on="patient_name")
    if bad.is_empty():
        return _empty()
    patients = bad.group_by("patient").agg(pl.col("patient_name").first()).with_columns(
        pl.lit("patient").alias("entity_type"), pl.col("patient").alias("entity_id"),
        pl.lit("nonsense_name").alias("code"), pl.lit(0.5).alias("strength"),
        pl.format("booked under the name \"{}\", which is no person's name",
                  pl.col("patient_name")).alias("detail"),
    )
    per_account = (
        bookings.join(bad.select("patient", "patient_name"), on=["patient", "patient_name"])
        .group_by("account_id").agg(pl.col("patient").n_unique().alias("n"))
    )
    accounts = per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("nonsense_name").alias("code"),
        _graded(pl.col("n"), ((1, 0.3), (2, 0.7), (3, 0.85))).alias("strength"),
        pl.format("booked for {} patient(s) with nonsense names", pl.col("n")).alias("detail"),
    )
    return pl.concat([_findings(patients), _findings(accounts)])


CAME_TO_CLINIC = 2
"""Bookings a person checked in to that make them a patient, not a held identity
(``identity_spread``)."""


def identity_spread(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """One identity booked with many departments or doctors within a week: "nobody has a
    headache and a foot ache at once". Windows are fixed 7-day buckets and the same buckets
    shifted by half a week, so any burst inside one week is seen whole in one of them."""
    period = f"{t.spread_days}d"
    frames = []
    for offset in ("0d", f"{t.spread_days * 12}h"):
        frames.append(
            bookings.with_columns(
                pl.col("created_at").dt.offset_by(offset).dt.truncate(period).alias("window"))
            .group_by("patient", "window")
            .agg(pl.col("department").n_unique().alias("departments"),
                 pl.col("doctor_id").n_unique().alias("doctors"),
                 pl.col("status").is_in(["cancelled", "no_show", "refunded"]).mean()
                 .alias("unattended"))
        )
    spread_window = (pl.col("departments") >= t.spread_departments) \
        | (pl.col("doctors") >= t.spread_doctors)
    spread = (
        pl.concat(frames).group_by("patient")
        .agg(pl.col("departments").max(), pl.col("doctors").max(),
             # Held: in a spread week the identity attended none of those bookings.
             (spread_window & (pl.col("unattended") >= 1.0)).any().alias("held"))
        .filter((pl.col("departments") >= t.spread_departments)
                | (pl.col("doctors") >= t.spread_doctors))
    )
    if "status" in bookings.columns:
        # A person who came to see a doctor on two or more bookings is a patient, and a
        # patient may well see three departments in a bad week (an elder whose helpers at
        # one community centre book her rounds): the spread is illness, not a held name. A
        # ring's held identities never come; a buyer comes once.
        came = bookings.group_by("patient").agg(
            ((pl.col("status") == "checked_in").sum() >= CAME_TO_CLINIC).alias("came"))
        spread = spread.join(came.filter(pl.col("came")).select("patient"), on="patient",
                             how="anti")
    if spread.is_empty():
        return _empty()
    patients = spread.with_columns(
        pl.lit("patient").alias("entity_type"), pl.col("patient").alias("entity_id"),
        pl.lit("identity_spread").alias("code"),
        _graded(pl.col("departments"), ((0, 0.4), (t.spread_departments + 1, 0.6),
                                         (t.spread_departments + 3, 0.8))).alias("strength"),
        pl.format("booked with {} departments and {} doctors within {} days",
                  pl.col("departments"), pl.col("doctors"), pl.lit(t.spread_days)).alias("detail"),
    )
    per_account = (
        bookings.join(spread.select("patient", "held"), on="patient")
        .group_by("account_id").agg(pl.col("patient").n_unique().alias("n"),
                                    pl.col("patient").filter(pl.col("held")).n_unique()
                                    .alias("held"))
    )
    accounts = per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("identity_spread").alias("code"),
        # A carer's elderly parents may each see three departments in a week, so one or
        # two such identities stay under the flag line; a holder has many. An identity
        # that attended none of its busy week's bookings (all cancelled or no-show) was
        # holding slots, not seeing doctors, and counts twice.
        _graded(pl.col("n") + pl.col("held"),
                ((1, 0.25), (2, 0.45), (3, 0.65), (5, 0.8))).alias("strength"),
        pl.format("booked {} identity(ies) seen across {}+ departments or {}+ doctors in a "
                  "week, {} of them attending none of that week's", pl.col("n"),
                  pl.lit(t.spread_departments), pl.lit(t.spread_doctors), pl.col("held")
                  ).alias("detail"),
    )
    return pl.concat([_findings(patients), _findings(accounts)])


def _volume_limit(t: Thresholds, days: float) -> float:
    return max(10.0, t.payer_volume_per_year * days / 365.0)


def fanout_payers(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds,
                  days: float) -> pl.DataFrame:
    """Payers paying for more patients than two households, or making more payments than
    the seed cases' abnormal accounts (payer_account, patients, accounts, payments)."""
    paid = payments.join(bookings.select("booking_id", "patient", "account_id"),
                         on="booking_id", how="left")
    per_payer = paid.group_by("payer_account").agg(
        pl.col("patient").drop_nulls().n_unique().alias("patients"),
        pl.col("account_id").drop_nulls().n_unique().alias("accounts"),
        pl.len().alias("payments"),
    )
    return per_payer.filter((pl.col("patients") > t.payer_patients)
                            | (pl.col("payments") >= _volume_limit(t, days)))


def staff_release_for_hub(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds,
                          days: float) -> pl.DataFrame:
    """Staff-channel bookings (window, desk, call centre...) made within ``launder_seconds``
    of the slot's release for patients whose booking a shared fan-out payer paid (one that
    pays for several accounts' bookings: a ring's wallet). A desk serves whoever is at the
    counter, and walk-ins pay for themselves; a clerk racing releases for a ring wallet's
    buyers is an insider. Staff channels are judged per patient and payer, so this counts
    for any account, institutional or not."""
    if "staff_released_at" not in bookings.columns:
        return _empty()
    hubs = fanout_payers(bookings, payments, t, days).filter(pl.col("accounts") >= 2)
    if hubs.is_empty():
        return _empty()
    after = (pl.col("created_at") - pl.col("staff_released_at")).dt.total_milliseconds() \
        / 1000.0
    raced = (
        bookings.filter(pl.col("staff_released_at").is_not_null()
                        & (after >= 0) & (after <= t.launder_seconds))
        .join(payments.join(hubs.select("payer_account"), on="payer_account")
              .select("booking_id", "payer_account").unique("booking_id"), on="booking_id")
        .group_by("account_id").agg(pl.col("patient").n_unique().alias("n"),
                                    pl.col("payer_account").n_unique().alias("hubs"))
    )
    return _findings(raced.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("staff_release_for_hub").alias("code"),
        _graded(pl.col("n"), ((1, 0.15), (2, 0.35), (3, 0.5), (5, 0.7), (10, 0.85)))
        .alias("strength"),
        pl.format("booked {} patient(s) through a staff channel within {} s of release, "
                  "paid by {} fan-out payer(s) that pay for other accounts too", pl.col("n"),
                  pl.lit(t.launder_seconds), pl.col("hubs")).alias("detail"),
    ))


def _staff_release_bookings(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Staff-channel bookings made within ``launder_seconds`` of their slot's release for a
    later day: a desk or kiosk racing a release for a session days ahead, not selling what
    is left on the day to the person at the counter."""
    if "staff_released_at" not in bookings.columns:
        return bookings.clear()
    after = (pl.col("created_at") - pl.col("staff_released_at")).dt.total_milliseconds() \
        / 1000.0
    same_day = (pl.col("created_at").dt.convert_time_zone(t.zone).dt.date()
                == pl.col("session_start").dt.convert_time_zone(t.zone).dt.date())
    return bookings.filter(pl.col("staff_released_at").is_not_null() & (after >= 0)
                           & (after <= t.launder_seconds) & ~same_day.fill_null(False))


INSIDER_CATCHES = 3
"""Freed slots of one desk's release-time bookings that one wallet's catchers must have
rebooked within seconds before it is an insider's trade (``staff_release_caught``)."""


def staff_release_caught(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds
                         ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A desk's release-time holds caught by one wallet's accounts (registration-window
    insider). A staff channel books a hot slot seconds after its release, for a day ahead,
    cancels it later, and within ``grab_seconds`` another account rebooks the freed slot for
    a different patient; when one payer paid ``INSIDER_CATCHES`` or more such rebookings of
    one desk's releases, for as many different patients, the desk was holding slots for
    that wallet's catchers. A busy window's cancellations go to the waitlist (the platform's
    choice, never counted) or to whoever was refreshing: a different stranger each time,
    paying for themselves.

    Findings against the desk (``staff_release_caught``), the catcher accounts
    (``caught_staff_release``) and the wallet (``insider_wallet``); also returns the ties
    (a, b) between the desk and each catcher, for the link graph."""
    ties_schema = {"a": pl.String, "b": pl.String, "weight": pl.Float64, "via": pl.String}
    holds = _staff_release_bookings(bookings, t).filter(pl.col("cancelled_at").is_not_null())
    if holds.is_empty():
        return _empty(), pl.DataFrame(schema=ties_schema)
    # The platform's own rebookings (the waitlist, a draw) chose their recipient, and a
    # staff channel rebooking a freed slot is serving its own counter: neither catches.
    rebooked = bookings.filter(~channel_of(bookings).is_in(
        sorted(PLATFORM_CHANNELS | STAFF_CHANNELS)).fill_null(False)).select(
        "doctor_id", "session_start", "created_at", pl.col("account_id").alias("catcher"),
        pl.col("patient").alias("buyer"), pl.col("booking_id").alias("rebooking"))
    caught = (
        holds.select("doctor_id", "session_start", "cancelled_at",
                     pl.col("account_id").alias("desk"), pl.col("patient").alias("held"),
                     pl.col("booking_id").alias("held_booking"))
        .join(rebooked, on=["doctor_id", "session_start"])
        .with_columns(((pl.col("created_at") - pl.col("cancelled_at")).dt.total_milliseconds()
                       / 1000.0).alias("gap"))
        .filter((pl.col("gap") >= 0) & (pl.col("gap") <= t.grab_seconds)
                & (pl.col("held") != pl.col("buyer")) & (pl.col("desk") != pl.col("catcher")))
        .sort("gap").unique(subset=["held_booking"], keep="first")
        .unique(subset=["rebooking"], keep="first")
        .join(payments.select(pl.col("booking_id").alias("rebooking"), "payer_account")
              .unique("rebooking"), on="rebooking")
    )
    wallets = caught.group_by("desk", "payer_account").agg(
        pl.len().alias("n"), pl.col("buyer").n_unique().alias("buyers"),
        pl.col("catcher").n_unique().alias("catchers")).filter(
        (pl.col("n") >= INSIDER_CATCHES) & (pl.col("buyers") >= INSIDER_CATCHES))
    if wallets.is_empty():
        return _empty(), pl.DataFrame(schema=ties_schema)
    trade = caught.join(wallets.select("desk", "payer_account"), on=["desk", "payer_account"])
    desks = trade.group_by("desk").agg(
        pl.len().alias("n"), pl.col("catcher").n_unique().alias("catchers"),
        pl.col("payer_account").n_unique().alias("wallets"))
    catchers = trade.group_by("catcher").agg(
        pl.len().alias("n"), pl.col("desk").n_unique().alias("desks"))
    payers = trade.group_by("payer_account").agg(
        pl.len().alias("n"), pl.col("desk").n_unique().alias("desks"),
        pl.col("catcher").n_unique().alias("catchers"))
    found = pl.concat([
        _findings(desks.with_columns(
            pl.lit("account").alias("entity_type"), pl.col("desk").alias("entity_id"),
            pl.lit("staff_release_caught").alias("code"),
            _graded(pl.col("n"), ((3, 0.5), (5, 0.75), (10, 0.9))).alias("strength"),
            pl.format("{} slot(s) it booked through a staff channel within {} s of release "
                      "were cancelled and rebooked within {} s by {} account(s) paid by {} "
                      "wallet(s)", pl.col("n"), pl.lit(t.launder_seconds),
                      pl.lit(t.grab_seconds), pl.col("catchers"), pl.col("wallets"))
            .alias("detail"))),
        # A catcher who caught one such slot may be a stranger who was refreshing and
        # happened to use the wallet once; two or more is a habit.
        _findings(catchers.with_columns(
            pl.lit("account").alias("entity_type"), pl.col("catcher").alias("entity_id"),
            pl.lit("caught_staff_release").alias("code"),
            _graded(pl.col("n"), ((1, 0.15), (2, 0.5), (4, 0.75), (8, 0.85)))
            .alias("strength"),
            pl.format("rebooked {} slot(s) within {} s of a staff channel cancelling its "
                      "release-time booking, paid by the wallet that paid the others",
                      pl.col("n"), pl.lit(t.grab_seconds)).alias("detail"))),
        _findings(payers.with_columns(
            pl.lit("payer").alias("entity_type"), pl.col("payer_account").alias("entity_id"),
            pl.lit("insider_wallet").alias("code"),
            _graded(pl.col("n"), ((3, 0.6), (5, 0.8), (10, 0.9))).alias("strength"),
            pl.format("paid for {} slot(s) a staff channel freed and {} account(s) rebooked "
                      "within seconds", pl.col("n"), pl.col("catchers")).alias("detail"))),
    ])
    ties = trade.group_by("desk", "catcher").agg(pl.len().alias("n")).filter(
        pl.col("n") >= 2).select(pl.col("desk").alias("a"), pl.col("catcher").alias("b"),
                                 pl.lit(1.0).alias("weight"), pl.lit("insider").alias("via"))
    return found, ties


def staff_release_wallet(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds
                         ) -> pl.DataFrame:
    """One wallet paying for many different patients' bookings that one staff channel made
    within ``launder_seconds`` of release for a later day (a kiosk or desk insider booking
    releases for its own wallet's buyers). A family pays for its own members (a household,
    ``family_size``); walk-ins pay for themselves; a wallet paying for more than two
    households' worth of a desk's release-time bookings is buying the desk's releases.
    A payer most of whose payments for the desk's bookings are not release-time ones is the
    desk's till, paying for everything it sells, and is left alone. Judged per channel and
    payer, so it holds for institutional accounts too."""
    raced = _staff_release_bookings(bookings, t)
    if raced.is_empty():
        return _empty()
    paid = payments.select("booking_id", "payer_account").unique("booking_id")
    # A desk's own till or the hospital's merchant account pays for whatever the desk
    # sells, at all hours; a buyer's wallet pays for the release-time bookings (mostly).
    all_paid = bookings.join(paid, on="booking_id").group_by("account_id", "payer_account") \
        .agg(pl.len().alias("all"))
    per_pair = (
        raced.join(paid, on="booking_id")
        .group_by("account_id", "payer_account")
        .agg(pl.col("patient").n_unique().alias("n"), pl.len().alias("raced"))
        .join(all_paid, on=["account_id", "payer_account"])
        .filter((pl.col("n") > t.payer_patients) & (pl.col("raced") >= 0.5 * pl.col("all")))
    )
    if per_pair.is_empty():
        return _empty()
    graded = _graded(pl.col("n"), ((t.payer_patients + 1, 0.6), (2 * t.payer_patients, 0.8),
                                   (4 * t.payer_patients, 0.9)))
    accounts = per_pair.group_by("account_id").agg(
        pl.col("n").max(), pl.len().alias("wallets"))
    payers = per_pair.group_by("payer_account").agg(
        pl.col("n").max(), pl.len().alias("desks"))
    return pl.concat([
        _findings(accounts.with_columns(
            pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
            pl.lit("staff_release_wallet").alias("code"), graded.alias("strength"),
            pl.format("booked up to {} different patients through a staff channel within {} "
                      "s of release whom one wallet paid for ({} such wallet(s))",
                      pl.col("n"), pl.lit(t.launder_seconds), pl.col("wallets"))
            .alias("detail"))),
        _findings(payers.with_columns(
            pl.lit("payer").alias("entity_type"), pl.col("payer_account").alias("entity_id"),
            pl.lit("staff_release_wallet").alias("code"), graded.alias("strength"),
            pl.format("paid for {} different patients booked by one staff channel within {} "
                      "s of release", pl.col("n"), pl.lit(t.launder_seconds))
            .alias("detail"))),
    ])


def payer_fanout(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds,
                 days: float) -> pl.DataFrame:
    """Payment accounts paying for more patients than a household, or making more payments
    than the seed cases' abnormal accounts (100+ a year, scaled to the period read)."""
    paid = payments.join(bookings.select("booking_id", "patient", "account_id"),
                         on="booking_id", how="left")
    volume_limit = _volume_limit(t, days)
    flagged = fanout_payers(bookings, payments, t, days)
    if flagged.is_empty():
        return _empty()
    payers = flagged.with_columns(
        pl.lit("payer").alias("entity_type"), pl.col("payer_account").alias("entity_id"),
        pl.lit("payer_fanout").alias("code"),
        pl.max_horizontal(
            _graded(pl.col("patients"), ((t.payer_patients + 1, 0.6),
                                         (2 * t.payer_patients, 0.8),
                                         (4 * t.payer_patients, 0.9))),
            _graded(pl.col("payments"), ((volume_limit, 0.6), (3 * volume_limit, 0.8))),
        ).alias("strength"),
        pl.format("paid {} time(s) for {} distinct patients booked by {} account(s) in {} days",
                  pl.col("payments"), pl.col("patients"), pl.col("accounts"),
                  pl.lit(round(days))).alias("detail"),
    )
    # A fan-out payer that pays for one account only is that account's own wallet: its
    # fan-out is the account's patient count, already counted. Ties to a hub that pays
    # for several accounts' bookings are what ``paid_by_hub`` records.
    shared_hubs = flagged.filter(pl.col("accounts") >= 2)
    per_account = (
        paid.join(shared_hubs.select("payer_account"), on="payer_account")
        .filter(pl.col("account_id").is_not_null())
        .group_by("account_id").agg(pl.len().alias("n"),
                                    pl.col("payer_account").n_unique().alias("hubs"))
    )
    accounts = per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("paid_by_hub").alias("code"),
        _graded(pl.col("n"), ((1, 0.15), (3, 0.4), (6, 0.55))).alias("strength"),
        pl.format("{} of its bookings paid by {} fan-out payer(s)", pl.col("n"),
                  pl.col("hubs")).alias("detail"),
    )
    return pl.concat([_findings(payers), _findings(accounts)])


def ip_fanout(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """One IP booking many ID numbers within an hour, for few accounts. A campus or carrier
    NAT also shows many patients an hour, but each from its own account, so the rule asks
    for at least two patients per account in that hour."""
    hourly = (
        bookings.filter(pl.col("ip").is_not_null())
        .with_columns(pl.col("created_at").dt.truncate("1h").alias("hour"))
        .group_by("ip", "hour")
        .agg(pl.col("patient").n_unique().alias("patients"),
             pl.col("account_id").n_unique().alias("accounts"))
        .filter((pl.col("patients") >= t.ip_patients_per_hour)
                & (pl.col("patients") >= 2 * pl.col("accounts")))
        .group_by("ip").agg(pl.col("patients").max(), pl.len().alias("hours"),
                            pl.col("accounts").max())
    )
    if hourly.is_empty():
        return _empty()
    return _findings(hourly.with_columns(
        pl.lit("ip").alias("entity_type"), pl.col("ip").alias("entity_id"),
        pl.lit("ip_fanout").alias("code"),
        _graded(pl.col("hours"), ((1, 0.5), (3, 0.7))).alias("strength"),
        pl.format("booked up to {} ID numbers from {} account(s) in one hour, in {} hour(s)",
                  pl.col("patients"), pl.col("accounts"), pl.col("hours")).alias("detail"),
    ))


def shared_device(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """A device used by many accounts. Clinics' shared terminals do this honestly, so the
    finding is weak on its own and marks the device only; it matters when the accounts on
    it are suspicious for other reasons."""
    per_device = (
        bookings.filter(pl.col("device_id").is_not_null())
        .group_by("device_id")
        .agg(pl.col("account_id").n_unique().alias("accounts"),
             pl.col("patient").n_unique().alias("patients"))
        .filter(pl.col("accounts") >= t.device_accounts)
    )
    return _findings(per_device.with_columns(
        pl.lit("device").alias("entity_type"), pl.col("device_id").alias("entity_id"),
        pl.lit("shared_device").alias("code"), pl.lit(0.3).alias("strength"),
        pl.format("used by {} accounts for {} patients", pl.col("accounts"),
                  pl.col("patients")).alias("detail"),
    ))


def grab_device(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """One device booking for many accounts at release moments (T9: a reseller logs in with
    customers' own accounts and grabs for each). A device is one pair of hands; a clinic's
    shared terminal books for many accounts too, but at ordinary times, not within seconds
    of releases. The accounts grabbed for are flagged with it."""
    grabs = (
        bookings.filter(pl.col("device_id").is_not_null() & pl.col("released_at").is_not_null())
        .with_columns(((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds()
                       / 1000.0).alias("after"))
        .filter((pl.col("after") >= 0) & (pl.col("after") <= t.grab_seconds))
    )
    per_device = grabs.group_by("device_id").agg(
        pl.col("account_id").n_unique().alias("accounts"), pl.len().alias("grabs")
    ).filter(pl.col("accounts") >= t.device_accounts)
    if per_device.is_empty():
        return _empty()
    devices = per_device.with_columns(
        pl.lit("device").alias("entity_type"), pl.col("device_id").alias("entity_id"),
        pl.lit("grab_device").alias("code"), pl.lit(0.6).alias("strength"),
        pl.format("grabbed {} slot(s) within {} s of release for {} different accounts",
                  pl.col("grabs"), pl.lit(t.grab_seconds), pl.col("accounts")).alias("detail"),
    )
    accounts = (
        grabs.join(per_device.select("device_id", pl.col("accounts").alias("others")),
                   on="device_id")
        .group_by("account_id").agg(pl.len().alias("n"), pl.col("others").max())
        .with_columns(
            pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
            pl.lit("grab_device").alias("code"), pl.lit(0.0).alias("strength"),
            pl.format("{} release-time booking(s) made on a device that grabbed for {} "
                      "accounts", pl.col("n"), pl.col("others")).alias("detail"),
        )
    )
    return pl.concat([_findings(devices), _findings(accounts)])


def shared_phone(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """One phone number given for more patients than a household."""
    per_phone = (
        bookings.filter(pl.col("patient_phone").is_not_null())
        .group_by("patient_phone")
        .agg(pl.col("patient").n_unique().alias("patients"),
             pl.col("account_id").n_unique().alias("accounts"))
        .filter(pl.col("patients") > t.family_size)
    )
    return _findings(per_phone.with_columns(
        pl.lit("phone").alias("entity_type"), pl.col("patient_phone").alias("entity_id"),
        pl.lit("shared_phone").alias("code"), pl.lit(0.5).alias("strength"),
        pl.format("given as the phone of {} patients by {} account(s)", pl.col("patients"),
                  pl.col("accounts")).alias("detail"),
    ))


def fast_after_release(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Bookings made within ``fast_seconds`` of their slot's release. A person needs a
    minute from login to payment; software needs 0.02 s. One fast booking can be luck, a
    habit of them is a tool."""
    fast = (
        bookings.filter(pl.col("released_at").is_not_null())
        .with_columns(((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds()
                       / 1000.0).alias("after"))
        # Strictly under: a booking 1.000 s after release is a practised hand, not a tool.
        .filter((pl.col("after") >= 0) & (pl.col("after") < t.fast_seconds))
        .group_by("account_id")
        .agg(pl.len().alias("n"), pl.col("after").median().alias("median"))
    )
    return _findings(fast.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("fast_after_release").alias("code"),
        _graded(pl.col("n"), ((1, 0.15), (2, 0.35), (3, 0.6), (5, 0.75))).alias("strength"),
        pl.format("{} booking(s) within {} s of release (median {} s)", pl.col("n"),
                  pl.lit(t.fast_seconds), pl.col("median").round(2)).alias("detail"),
    ))


SOFTWARE_ACCOUNT = 0.6
"""``fast_after_release`` or ``click_rate`` strength at which an account books by software
(the ``developer`` role's line)."""
FRONTED_PATIENTS = 3
"""Patients booked by others' software under an account's own phone or payer that make it a
front for that software (``fronts_for_software``)."""


def fronts_for_software(bookings: pl.DataFrame, payments: pl.DataFrame, findings: pl.DataFrame,
                        t: Thresholds) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts whose own phone or payer stands behind bookings that other accounts'
    software made for patients the account never booked itself: a tout who finds the buyers,
    gives its own number as their contact and collects (or pays) the fee, while the broker's
    software books them. A booking is the software's when it came under ``fast_seconds``
    after the release, from an account booking by software (``fast_after_release`` or
    ``click_rate`` at ``SOFTWARE_ACCOUNT``) or on a grabbing device (``grab_device``). The
    phone or payer is the account's own when it is on one of the account's bookings not made
    by software (a customer whose own account the broker logged into has the broker's
    bookings in it, with the tout's number: those do not make the number the customer's).
    A buyer pays for, or gives the number of, their own family's one or two bookings; a
    tout does it for strangers, release after release.

    Returns the findings and the fronts' ties (account, booker, device): the software's
    account when it books by software, else the grabbing device it booked on (the booker
    is then a customer's lent account, no part of the ring)."""
    software = findings.filter(
        (pl.col("entity_type") == "account") & (pl.col("strength") >= SOFTWARE_ACCOUNT)
        & pl.col("code").is_in(["fast_after_release", "click_rate"])
    ).get_column("entity_id").unique().to_list()
    grabbing = findings.filter(
        (pl.col("entity_type") == "device") & (pl.col("code") == "grab_device")
        & (pl.col("strength") > 0)).get_column("entity_id").unique().to_list()
    no_ties = pl.DataFrame(schema={"account_id": pl.String, "booker": pl.String,
                                   "device_id": pl.String})
    if not software and not grabbing:
        return _empty(), no_ties
    paid = bookings.join(payments.select("booking_id", "payer_account").unique("booking_id"),
                         on="booking_id", how="left")
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    machine = (pl.col("released_at").is_not_null() & (after >= 0) & (after < t.fast_seconds)
               & (pl.col("account_id").is_in(software)
                  | pl.col("device_id").is_in(grabbing).fill_null(False)))
    by_software = paid.filter(machine)
    if by_software.is_empty():
        return _empty(), no_ties
    by_hand = paid.filter(~machine.fill_null(False))
    fronted = []
    for column in ("patient_phone", "payer_account"):
        own = by_hand.select("account_id", pl.col(column).alias("ident")).drop_nulls().unique()
        used = by_software.select(pl.col("account_id").alias("booker"), "patient", "device_id",
                                  pl.col(column).alias("ident")).drop_nulls(["ident"])
        fronted.append(own.join(used, on="ident").filter(pl.col("account_id")
                                                         != pl.col("booker")))
    booked = bookings.select("account_id", "patient").unique()
    fronts = pl.concat(fronted).join(booked, on=["account_id", "patient"], how="anti")
    per_account = (
        fronts.group_by("account_id")
        .agg(pl.col("patient").n_unique().alias("patients"),
             pl.col("booker").n_unique().alias("bookers"))
        .filter(pl.col("patients") >= FRONTED_PATIENTS)
    )
    ties = (
        fronts.join(per_account.select("account_id"), on="account_id")
        .select("account_id",
                pl.when(pl.col("booker").is_in(software)).then(pl.col("booker")).alias("booker"),
                pl.when(pl.col("booker").is_in(software)).then(None)
                .otherwise(pl.col("device_id")).alias("device_id"))
        .unique()
    )
    return _findings(per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("fronts_for_software").alias("code"),
        _graded(pl.col("patients"), ((FRONTED_PATIENTS, 0.45), (5, 0.6), (10, 0.75)))
        .alias("strength"),
        pl.format("its own phone or payer is on bookings that software in {} other "
                  "account(s) made within {} s of release for {} patients it never booked",
                  pl.col("bookers"), pl.lit(t.fast_seconds), pl.col("patients"))
        .alias("detail"),
    )), ties


RACE_SECONDS = 60
"""A booking this soon after its slot's release was made in the race for it
(``release_strangers``)."""
RACED_STRANGERS = 3
"""People an account raced for once each that make a clue (``release_strangers``)."""
RACED_TRADE = 25
"""People an account raced for once each that make a trade (``release_strangers`` at
``RACED_TRADE_STRENGTH``): a broker selling its hands at the release, one customer per race.
A household races for the same few people; twenty-five different people, each raced for once
and never booked again, are twenty-five customers: half a year of weekly races, more than
a community helper races for elders it books only once."""
RACED_TRADE_STRENGTH = 0.4
"""Strength of ``release_strangers`` at ``RACED_TRADE`` people: under the flag line alone,
over it with the patient count the same bookings make (``many_patients``, 0.25 at a
person's pace)."""


def release_strangers(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Accounts that raced releases by hand (booked ``fast_seconds`` to ``RACE_SECONDS``
    after them) for 3+ different people,
    each of whom the account booked only that once in the period read: a family crowd's
    member grabbing for a buyer at each release it joins. A household races for the same
    few people again and again (a parent's follow-ups, a child's check-ups); a person booked
    once in a year and never again is somebody else's patient. A weak clue (0.25, 0.3 at
    5+): enough to count as evidence of one's own, never to flag; at ``RACED_TRADE`` (25)
    people a trade (0.4), which with the patient count those bookings make is over the flag
    line: a buyer-facing broker booking genuine patients by hand, each paying for
    themselves, has nothing else of its own to show."""
    times = bookings.group_by("account_id", "patient").agg(pl.len().alias("times"))
    raced = (
        bookings.filter(pl.col("released_at").is_not_null())
        .with_columns(((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds()
                       / 1000.0).alias("after"))
        # By hand: what software books (under ``fast_seconds``) is ``fast_after_release``'s,
        # and a broker's software booking inside a customer's lent account is not the
        # customer's race.
        .filter((pl.col("after") >= t.fast_seconds) & (pl.col("after") <= RACE_SECONDS))
        .join(times.filter(pl.col("times") == 1), on=["account_id", "patient"])
        .group_by("account_id").agg(pl.col("patient").n_unique().alias("strangers"))
        .filter(pl.col("strangers") >= RACED_STRANGERS)
    )
    return _findings(raced.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("release_strangers").alias("code"),
        _graded(pl.col("strangers"), ((RACED_STRANGERS, 0.25), (5, 0.3),
                                       (RACED_TRADE, RACED_TRADE_STRENGTH))).alias("strength"),
        pl.format("raced {} release(s) by hand within {} s, each for a different person it "
                  "booked only that once", pl.col("strangers"), pl.lit(RACE_SECONDS))
        .alias("detail"),
    ))


INSTANT_HUB = 0.5
"""Strength of ``instant_hub_paid``: with the fast bookings it is made of
(``fast_after_release``), over the flag line."""


def instant_hub_paid(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds,
                     days: float) -> pl.DataFrame:
    """Accounts every one of whose release-raced bookings (two or more, and no other
    bookings) came within ``fast_seconds`` of the release, two or more of them paid by a
    fan-out payer that pays for several accounts. A thin account a ring opens to book a
    couple of times is too quiet for the count-based rules: two machine-fast bookings are
    luck now and then, and a shared wallet pays for families too. Both at once, on every
    booking the account ever made, is software booking for a wallet that pays for
    strangers: the account's own speed, tied to the wallet by its own payments."""
    hubs = fanout_payers(bookings, payments, t, days).filter(pl.col("accounts") >= 2)
    if hubs.is_empty():
        return _empty()
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    paid = payments.join(hubs.select("payer_account"), on="payer_account").select(
        "booking_id", pl.lit(True).alias("hub")).unique("booking_id")
    per_account = (
        bookings.join(paid, on="booking_id", how="left")
        .group_by("account_id").agg(
            pl.len().alias("n"),
            ((after >= 0) & (after < t.fast_seconds)).fill_null(False).sum().alias("fast"),
            (pl.col("hub").fill_null(False)
             & ((after >= 0) & (after < t.fast_seconds)).fill_null(False)).sum()
            .alias("fast_hub"))
        .filter((pl.col("n") >= 2) & (pl.col("fast") == pl.col("n"))
                & (pl.col("fast_hub") >= 2))
    )
    return _findings(per_account.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("instant_hub_paid").alias("code"), pl.lit(INSTANT_HUB).alias("strength"),
        pl.format("every one of its {} bookings within {} s of release, {} of them paid by "
                  "a fan-out payer that pays for other accounts", pl.col("n"),
                  pl.lit(t.fast_seconds), pl.col("fast_hub")).alias("detail"),
    ))


REPEATED_PAIRS = 5
"""Cancel-then-rebook pairs between the same two accounts that tie them
(``repeated_launder_ties``). Where two rings race for the same experts, one's bots catch
the other's cancellations now and then: the third generator's racing rings meet the same
rival account up to three times a year; a holder handing its slots to its broker does so
every week."""


def repeated_launder_ties(pairs: pl.DataFrame) -> pl.DataFrame:
    """Ties (a, b, weight, via) between a holder and the account that rebooked its freed
    slots, when one fed the other ``REPEATED_PAIRS`` or more times. One freed slot caught
    by a stranger is the refresh race; which stranger wins changes from one race to the
    next, so the same two accounts meeting again and again over a year is a handover. Only
    a grouping tie: the pairs are already each side's evidence (``launder_pair``). Two
    accounts with a linked pair between them (a shared account, device or IP) are tied by
    that pair already and get no second tie here.
    The same holds between two devices (one hand cancelling, another rebooking, each
    logged into several accounts, as a farm of phones does): the accounts of each such
    pair are tied the same way.
    """
    schema = {"a": pl.String, "b": pl.String, "weight": pl.Float64, "via": pl.String}
    if pairs.is_empty():
        return pl.DataFrame(schema=schema)
    apart = pairs.filter(pl.col("holder_account") != pl.col("rebook_account"))
    chosen = []
    for sides in (["holder_account", "rebook_account"], ["d1", "d2"]):
        if not set(sides) <= set(apart.columns):
            continue
        repeated = (apart.filter(pl.col(sides[0]).is_not_null() & pl.col(sides[1]).is_not_null()
                                 & (pl.col(sides[0]) != pl.col(sides[1])))
                    .group_by(sides).agg(pl.len().alias("n"),
                                         pl.col("linked").any().alias("any_linked"))
                    .filter((pl.col("n") >= REPEATED_PAIRS) & ~pl.col("any_linked")))
        chosen.append(apart.join(repeated.select(sides), on=sides)
                      .select("holder_account", "rebook_account"))
    if not chosen:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(chosen).unique().sort("holder_account", "rebook_account")
        .select(pl.col("holder_account").alias("a"), pl.col("rebook_account").alias("b"),
                pl.lit(1.0).alias("weight"), pl.lit("launder_repeat").alias("via"))
    )


def hub_paid_accounts(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds,
                      days: float) -> list[str]:
    """Accounts with a booking paid by a fan-out payer that pays for several accounts."""
    hubs = fanout_payers(bookings, payments, t, days).filter(pl.col("accounts") >= 2)
    if hubs.is_empty():
        return []
    paid = payments.join(hubs.select("payer_account"), on="payer_account").select("booking_id")
    return sorted(bookings.join(paid, on="booking_id").get_column("account_id").unique()
                  .to_list())


def _rebooked_within(cancelled: pl.DataFrame, booked: pl.DataFrame, seconds: float
                     ) -> pl.DataFrame:
    """Every cancelled booking beside every booking of its session made 0 to ``seconds``
    after the cancellation, with ``gap`` (seconds): the join of the two on doctor and
    session, kept to that window, in the join's own order.

    The join pairs each cancellation with its whole session (tens of bookings each, tens of
    millions of rows for a province's year), almost all of them outside the window: it is
    made on the row numbers and the two times only, and the remaining columns are gathered
    for the rows kept. Joined whole, its string columns were the peak of a province's
    detection."""
    keys = ["doctor_id", "session_start"]
    gap = ((pl.col("created_at") - pl.col("cancelled_at")).dt.total_milliseconds()
           / 1000.0).alias("gap")
    near = (
        cancelled.select(*keys, "cancelled_at").with_row_index("_c")
        .join(booked.select(*keys, "created_at").with_row_index("_b"), on=keys)
        .with_columns(gap)
        .filter((pl.col("gap") >= 0) & (pl.col("gap") <= seconds))
    )
    return pl.concat([
        cancelled[near.get_column("_c")],
        booked.drop(keys)[near.get_column("_b")],
        near.select("gap"),
    ], how="horizontal")


def launder_pairs(bookings: pl.DataFrame, t: Thresholds, hub_paid: list[str] | None = None
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cancel-then-rebook (占坑洗号): a booking for a session is cancelled and, within
    ``launder_seconds``, the same session is booked for a different patient. The cancelled
    side is the holder, the rebooked patient the buyer. A freed slot can go to a stranger by
    luck, so an account needs two such pairs (four unless they are linked: both sides share
    an account, device or IP), or one between two accounts run by one hand; a single pair
    within one household-sized account none of whose bookings a shared fan-out payer paid
    (``hub_paid``) is a weak clue only, unless each hold was grabbed at a release for an
    identity the account never brought to a clinic. Bookings the platform wrote (waitlist, draw)
    are never the receiving half.

    Returns (findings, pairs); ``pairs`` has holder_account, rebook_account, buyer, linked."""
    # A walk-in's booking cancelled at the window and the slot sold to the next person in
    # the queue is the window's ordinary business, so on-site sales are not holds.
    cancelled = bookings.filter(pl.col("cancelled_at").is_not_null()
                                & ~on_site(bookings, t.zone)).select(
        "doctor_id", "session_start", pl.col("cancelled_at"),
        pl.col("account_id").alias("holder_account"), pl.col("patient").alias("held"),
        pl.col("device_id").alias("d1"), pl.col("ip").alias("ip1"),
        pl.col("booking_id").alias("held_booking"))
    # A booking the platform wrote (the next on the waitlist, a draw's winner) cannot be the
    # receiving half: the platform, not a broker, chose who got the freed slot.
    booked = bookings.filter(~channel_of(bookings).is_in(sorted(PLATFORM_CHANNELS))
                             .fill_null(False)).select(
        "doctor_id", "session_start", "created_at",
        pl.col("account_id").alias("rebook_account"), pl.col("patient").alias("buyer"),
        pl.col("device_id").alias("d2"), pl.col("ip").alias("ip2"),
        pl.col("booking_id").alias("rebooking"))
    # An address shared by crowds (a carrier's NAT, a hospital's Wi-Fi) ties nobody: two
    # strangers behind one carrier exit are not one hand.
    crowded = sorted(ordinary_addresses(bookings))
    pairs = (
        _rebooked_within(cancelled, booked, t.launder_seconds)
        .filter(pl.col("held") != pl.col("buyer"))
        .with_columns(
            ((pl.col("holder_account") == pl.col("rebook_account"))
             | (pl.col("d1") == pl.col("d2")).fill_null(False)
             | ((pl.col("ip1") == pl.col("ip2")) & ~pl.col("ip1").is_in(crowded))
             .fill_null(False)).alias("linked"))
        # One rebooking answers at most one cancellation: the closest.
        .sort("gap").unique(subset=["rebooking"], keep="first")
        .unique(subset=["held_booking"], keep="first")
    )
    # A household swapping one of its own members for another (the mother cannot go, the
    # father takes her slot) is not a hold. Both sides are the household's (one account, or
    # accounts on one device or home IP), the accounts are household-sized, and the new
    # patient is the household's too: booked by it before, or sharing the held patient's
    # phone (one family phone for three generations). A ring's holder rebooks for strangers.
    # Household-sized here is up to ``SWAP_FAMILY`` households when both people are real
    # (a valid number, a person's name): three generations of six or seven on one account
    # and one phone are a family, and its swap is still proved by the new patient being its
    # own. Nobody's grandmother is called "561".
    involved = bookings.filter(pl.col("patient").is_in(
        pairs.select(pl.concat_list("held", "buyer").explode()).to_series().unique()
        .to_list()))
    fake = sorted(set(invalid_patients(involved).get_column("patient").to_list())
                  | set(nonsense_names(involved).filter(pl.col("entity_type") == "patient")
                        .get_column("entity_id").to_list()))
    known = bookings.group_by("account_id", "patient").agg(
        pl.col("created_at").min().alias("first_booked"))
    size = bookings.group_by("account_id").agg(pl.col("patient").n_unique().alias("n"))
    phones = bookings.filter(pl.col("patient_phone").is_not_null()).group_by("patient").agg(
        pl.col("patient_phone").unique().alias("phones"))
    # Patients an account brought to a clinic: a family's own people. A ring's holding
    # identities hold and are cancelled or left unused.
    came = bookings.filter(pl.col("status") == "checked_in").select(
        pl.col("account_id").alias("holder_account"), pl.col("patient").alias("held"),
        pl.lit(True).alias("held_came")).unique()
    patients = sorted(set(bookings.filter(pl.col("status") == "checked_in")
                          .group_by("patient").len()
                          .filter(pl.col("len") >= CAME_TO_CLINIC).get_column("patient")
                          .to_list()))
    pairs = (
        pairs.join(known.rename({"account_id": "rebook_account", "patient": "buyer"}),
                   on=["rebook_account", "buyer"], how="left")
        .join(known.rename({"account_id": "holder_account", "patient": "buyer",
                            "first_booked": "first_by_holder"}),
              on=["holder_account", "buyer"], how="left")
        .join(size.rename({"account_id": "rebook_account"}), on="rebook_account", how="left")
        .join(size.rename({"account_id": "holder_account", "n": "holder_n"}),
              on="holder_account", how="left")
        .join(phones.rename({"patient": "held", "phones": "held_phones"}), on="held",
              how="left")
        .join(phones.rename({"patient": "buyer", "phones": "buyer_phones"}), on="buyer",
              how="left")
        .join(came, on=["holder_account", "held"], how="left")
        .join(bookings.select(
            pl.col("booking_id").alias("held_booking"),
            ((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
             < t.grab_seconds).fill_null(False).alias("held_grabbed")),
            on="held_booking", how="left")
        .with_columns(
            (pl.col("first_booked") < pl.col("cancelled_at")).fill_null(False)
            .alias("known_buyer"),
            (pl.col("held_phones").list.set_intersection(pl.col("buyer_phones")).list.len()
             > 0).fill_null(False).alias("one_phone"))
        .with_columns(
            ((pl.col("linked")
              & (((pl.col("n") <= t.family_size) & (pl.col("holder_n") <= t.family_size))
                 | ((pl.col("n") <= SWAP_FAMILY * t.family_size)
                    & (pl.col("holder_n") <= SWAP_FAMILY * t.family_size)
                    & ~pl.col("held").is_in(fake) & ~pl.col("buyer").is_in(fake)))
              & (pl.col("known_buyer")
                 | (pl.col("first_by_holder") < pl.col("cancelled_at")).fill_null(False)
                 | pl.col("one_phone")))
             # A larger family's account (three generations and the relatives it books
             # for) swapping inside itself: the new patient is on the held patient's phone
             # and is one it booked before, or takes the place of someone it brought to a
             # clinic. A ring's holder rebooks for a buyer new to it, in place of a holding
             # identity that never comes.
             | ((pl.col("holder_account") == pl.col("rebook_account"))
                & pl.col("one_phone")
                & (pl.col("known_buyer") | pl.col("held_came").fill_null(False)))
             # A carer's or community helper's account handing a slot from one of its
             # charges to another: the held person came to a clinic (on its bookings, or
             # on two or more of anybody's: a centre's elders are booked by each of its
             # helpers) and so does the new one (or it booked her before), both real
             # people, and the slot was booked at a person's pace, not grabbed at its
             # release: a hold for sale is grabbed, and a ring's buyer may be a chronic
             # patient who comes often.
             | ((pl.col("holder_account") == pl.col("rebook_account"))
                & (pl.col("held_came").fill_null(False) | pl.col("held").is_in(patients))
                & (pl.col("known_buyer") | pl.col("buyer").is_in(patients))
                & ~pl.col("held_grabbed").fill_null(False)
                & ~pl.col("held").is_in(fake) & ~pl.col("buyer").is_in(fake)))
            .fill_null(False).alias("household"))
        .filter(~pl.col("household"))
        .drop("first_booked", "first_by_holder", "n", "holder_n", "held_phones",
              "buyer_phones", "known_buyer", "one_phone", "household", "held_grabbed")
    )
    if pairs.is_empty():
        return _empty(), pairs.drop("held_came")
    # Each pair counts once per account: a household that cancels the mother and books the
    # father on the same account made one swap, not two.
    # A hold grabbed at the release instant (within ``grab_seconds``) under an identity the
    # account never brought to a clinic: the shape of a slot held for sale, not a family's.
    grabbed = bookings.select(
        pl.col("booking_id").alias("held_booking"),
        ((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
         < t.grab_seconds).fill_null(False).alias("grabbed"))
    numbered = pairs.join(grabbed, on="held_booking", how="left").with_row_index(
        "pair").with_columns(
        (pl.col("holder_account") == pl.col("rebook_account")).alias("own"),
        (pl.col("grabbed").fill_null(False) & ~pl.col("held_came").fill_null(False))
        .alias("for_sale"))
    sides = pl.concat([
        numbered.select("pair", pl.col("holder_account").alias("account_id"), "linked", "own",
                        "for_sale"),
        numbered.select("pair", pl.col("rebook_account").alias("account_id"), "linked", "own",
                        "for_sale"),
    ]).unique(subset=["pair", "account_id"])
    per_account = sides.group_by("account_id").agg(
        pl.len().alias("n"), pl.col("linked").sum().alias("linked"),
        pl.col("own").sum().alias("own"), pl.col("for_sale").all().alias("for_sale"))
    # An unlinked pair is a freed slot caught by a stranger who keeps refreshing: luck for
    # the catcher, bad luck for the canceller, a habit only when it keeps happening. A
    # linked pair (both sides on one account, device or IP) is deliberate.
    per_account = per_account.with_columns(
        (2 * pl.col("linked") + 0.5 * (pl.col("n") - pl.col("linked"))).alias("weight")
    ).join(size.rename({"n": "people"}), on="account_id", how="left")
    # One pair in a year within one household-sized account whose bookings no ring wallet
    # pays is a household's one swap or one change of mind: a weak clue. A habit of them is
    # a trade, and so is a single pair between two accounts run by one hand (one device or
    # home IP) unless it is a household's swap.
    accounts = per_account.filter(pl.col("weight") >= 2).with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("launder_pair").alias("code"),
        # A few swaps made entirely inside one household-sized account (each pair's both
        # sides on it) that no ring wallet pays: the family's own slot handed to a relative
        # who could go instead. Two inside one account make no suspect; a habit does.
        # Unless every hold was grabbed at a release for an identity that never came.
        pl.when((pl.col("n") <= SELF_SWAPS) & (pl.col("own") == pl.col("n"))
                & (pl.col("people") <= t.family_size) & ~pl.col("for_sale")
                & ~pl.col("account_id").is_in(hub_paid or [])).then(pl.lit(0.2))
        .otherwise(_graded(pl.col("weight"), ((2, 0.6), (4, 0.8), (8, 0.9))))
        .alias("strength"),
        pl.format("in {} cancel-then-rebook pair(s) within {} s ({} with a shared account, "
                  "device or IP)", pl.col("n"), pl.lit(t.launder_seconds),
                  pl.col("linked")).alias("detail"),
    )
    return _findings(accounts), pairs.drop("held_came")


SWAP_FAMILY = 2
"""How many households' worth of patients an account may hold and still swap one of its own
members for another (``launder_pairs``): an extended family of three generations."""

SELF_SWAPS = 3
"""Cancel-then-rebook pairs made entirely inside one household-sized account, with no ring
wallet paying it, that stay a weak clue (``launder_pair`` 0.2): a family handing its own
slot to a relative a few times a year."""


UNUSED_HOLDS = 3
"""Release-time grabs cancelled unpaid that make ``unused_holds`` (with at least half the
account's bookings)."""


def unused_holds(bookings: pl.DataFrame, payments: pl.DataFrame, t: Thresholds
                 ) -> pl.DataFrame:
    """Accounts that grabbed slots at their release (within ``grab_seconds``) and let them
    go unpaid, ``UNUSED_HOLDS`` times or more, making up at least half of everything they
    booked: holding slots for a buyer who did not come, or to be cancelled and caught. A
    patient who races a release pays for the slot and comes, or cancels it now and then
    among many bookings it used (a fast typist's two or three dropped grabs in a busy
    year); one whose bookings are mostly dropped grabs was never booking for itself. The
    platform's own bookings (draw, waitlist) and staff channels carry no release time here
    and never count."""
    paid = payments.select("booking_id").unique()
    holds = (
        bookings.with_columns(
            ((pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0)
            .alias("after"))
        .join(paid.with_columns(pl.lit(True).alias("paid")), on="booking_id", how="left")
        .with_columns(
            (pl.col("after").is_between(0.0, t.grab_seconds)
             & (pl.col("status") == "cancelled") & pl.col("paid").is_null())
            .fill_null(False).alias("hold"))
        .group_by("account_id").agg(pl.col("hold").sum().alias("holds"), pl.len().alias("n"))
        .filter((pl.col("holds") >= UNUSED_HOLDS) & (2 * pl.col("holds") >= pl.col("n")))
    )
    return _findings(holds.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("unused_holds").alias("code"),
        _graded(pl.col("holds"), ((UNUSED_HOLDS, 0.5), (5, 0.65), (8, 0.8))).alias("strength"),
        pl.format("{} of its {} bookings were grabbed within {} s of release and cancelled "
                  "unpaid", pl.col("holds"), pl.col("n"), pl.lit(t.grab_seconds))
        .alias("detail"),
    ))


def repeated_no_shows(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Accounts whose bookings mostly end in no-shows: unsold holds and wasted capacity."""
    per_account = bookings.group_by("account_id").agg(
        (pl.col("status") == "no_show").sum().alias("no_shows"), pl.len().alias("n"))
    flagged = per_account.filter((pl.col("no_shows") >= t.no_shows)
                                 & (pl.col("no_shows") >= t.no_show_rate * pl.col("n")))
    return _findings(flagged.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("repeated_no_show").alias("code"), pl.lit(0.4).alias("strength"),
        pl.format("{} no-shows in {} bookings", pl.col("no_shows"), pl.col("n")).alias("detail"),
    ))


def on_site(bookings: pl.DataFrame, zone: str) -> pl.Expr:
    """Bookings sold at the hospital rather than booked ahead online: made through the
    registration window, or made on the session's own day (what is left after release is
    sold on site the same day, to the person standing at the counter with their ID). Staff
    book these for whoever comes, so the household limit does not describe them."""
    same_day = (pl.col("created_at").dt.convert_time_zone(zone).dt.date()
                == pl.col("session_start").dt.convert_time_zone(zone).dt.date())
    window = (pl.col("channel").str.to_lowercase() == "window").fill_null(False) \
        if "channel" in bookings.columns else pl.lit(False)
    return window | same_day.fill_null(False)


HUMAN_PACE = 0.25
"""The most ``many_patients`` says of an account that does not grab releases (books at
ordinary hours, or soon after releases at a person's pace): a weak clue, which with
another weak clue (an elder's busy week, the anomaly prompt) still counts once."""


def account_many_patients(bookings: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Accounts booking ahead for more distinct patients than a household (the platform's
    per-account limit); the strength grows with how far beyond it. A number mistyped once
    and typed right another time is one person (``typo_patients``). On-site sales (the
    registration window, same-day walk-ins) are left out: a clerk books for every patient
    at the counter, and that is the window's job, not a household's."""
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    # A slip of the hand is the same person typed twice: counted once.
    typos = typo_patients(bookings)
    ahead = (bookings.filter(~on_site(bookings, t.zone))
             .join(typos, on=["account_id", "patient"], how="left")
             .with_columns(pl.coalesce("person", "patient").alias("person")))
    # Whom the account raced for: a person it booked once, or one who never came to any of
    # its bookings (a held identity), is somebody else's customer; a neighbour it books
    # again and again and who comes to see the doctor is its own charge. A community
    # helper races a hot expert's release for an elder it looks after all year round.
    status = (pl.col("status") == "checked_in") if "status" in bookings.columns \
        else pl.lit(False)
    regulars = ahead.group_by("account_id", "person").agg(
        ((pl.len() >= 2) & status.any()).alias("regular"))
    per_account = (
        ahead.join(regulars, on=["account_id", "person"], how="left")
        .group_by("account_id").agg(
            pl.col("person").n_unique().alias("patients"),
            ((after >= 0) & (after <= t.grab_seconds) & ~pl.col("regular"))
            .fill_null(False).mean().alias("grab_share"))
    )
    flagged = per_account.filter(pl.col("patients") > t.family_size)
    # A carer or a community helper books for a dozen neighbours whenever it suits them; a
    # scalper books for strangers in the release race. Without the race the count stays a
    # weak clue (``HUMAN_PACE``). A helper who books soon after a release at a person's
    # pace (tens of seconds to minutes: it knows when slots open, as any regular does) is
    # not racing anybody either: the race is a fifth or more of the account's bookings
    # grabbed within ``grab_seconds`` of release. (Until 28 November 2026 it was the first
    # 10 minutes, and an outside generator's carers, booking 12-14 elders 10-300 s after
    # release, were suspects on the count alone.)
    graded = _graded(pl.col("patients"), ((t.family_size + 1, 0.1), (t.family_size + 3, 0.3),
                                          (2 * t.family_size, 0.5), (3 * t.family_size, 0.7)))
    return _findings(flagged.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("many_patients").alias("code"),
        pl.when(pl.col("grab_share") >= 0.2).then(graded)
        .otherwise(pl.min_horizontal(graded, pl.lit(HUMAN_PACE))).alias("strength"),
        pl.format("booked for {} distinct patients (a household is at most {})",
                  pl.col("patients"), pl.lit(t.family_size)).alias("detail"),
    ))


def click_rate(access: pl.DataFrame | None, t: Thresholds, *,
               minutes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Accounts whose requests in one minute exceed what a person reading pages makes.

    Reads the access rows, or ``minutes``: their counts per ``account_id`` and ``minute``
    already made (``records.count_access_minutes``), which need only hold the minutes at or
    above the threshold."""
    if minutes is None:
        if access is None or access.is_empty():
            return _empty()
        minutes = (
            access.filter(pl.col("account_id").is_not_null())
            .group_by("account_id", pl.col("ts").dt.truncate("1m").alias("minute"))
            .agg(pl.len().alias("n"))
        )
    per_minute = (
        minutes.filter(pl.col("n") >= t.clicks_per_minute)
        .group_by("account_id").agg(pl.col("n").max(), pl.len().alias("minutes"))
    )
    return _findings(per_minute.with_columns(
        pl.lit("account").alias("entity_type"), pl.col("account_id").alias("entity_id"),
        pl.lit("click_rate").alias("code"),
        _graded(pl.col("minutes"), ((1, 0.35), (3, 0.6))).alias("strength"),
        pl.format("up to {} requests in one minute, in {} minute(s)", pl.col("n"),
                  pl.col("minutes")).alias("detail"),
    ))


def run_rules(
    bookings: pl.DataFrame, payments: pl.DataFrame, access: pl.DataFrame | None,
    t: Thresholds, *, access_minutes: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All rules; returns (findings, launder pairs). The access rows may come as their counts
    per account and minute instead (``access_minutes``, see ``click_rate``)."""
    if bookings.is_empty():
        return _empty(), pl.DataFrame()
    span = bookings.select(pl.col("created_at").min().alias("a"), pl.col("created_at").max()
                           .alias("b")).row(0)
    days = max(1.0, (span[1] - span[0]).total_seconds() / 86400.0)
    laundering, pairs = launder_pairs(bookings, t,
                                      hub_paid_accounts(bookings, payments, t, days))
    findings = pl.concat([
        invalid_id_numbers(bookings),
        nonsense_names(bookings),
        identity_spread(bookings, t),
        payer_fanout(bookings, payments, t, days),
        staff_release_for_hub(bookings, payments, t, days),
        staff_release_wallet(bookings, payments, t),
        ip_fanout(bookings, t),
        shared_device(bookings, t),
        grab_device(bookings, t),
        shared_phone(bookings, t),
        fast_after_release(bookings, t),
        instant_hub_paid(bookings, payments, t, days),
        laundering,
        repeated_no_shows(bookings, t),
        unused_holds(bookings, payments, t),
        account_many_patients(bookings, t),
        release_strangers(bookings, t),
        click_rate(access, t, minutes=access_minutes),
    ])
    return findings, pairs
