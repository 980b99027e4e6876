"""``fairslot consortium``: this hospital's part in the shared list (docs/consortium.md):
its member key, the consortium's epoch keys, the members it pins, its policy, publishing and
withdrawing entries (one, or a confirmed ring from an investigation), pulling the feeds,
looking at what is held, and appeals."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import pathlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from fairslot.cli.main import CliError
from fairslot.domain.errors import InvalidInput

__all__ = ["register"]

consortium_app = typer.Typer(help="Penalties and confirmed rings shared with other hospitals "
                             "under pseudonyms.", no_args_is_help=True)
epoch_app = typer.Typer(help="The consortium's epoch keys (pseudonyms are keyed by epoch).",
                        no_args_is_help=True)
members_app = typer.Typer(help="The members whose feeds this hospital pulls, with their "
                          "pinned keys.", no_args_is_help=True)
policy_app = typer.Typer(help="What this hospital does when a patient matches an entry.",
                         no_args_is_help=True)
publish_app = typer.Typer(help="Publish entries in this hospital's feed.", no_args_is_help=True)
appeal_app = typer.Typer(help="Appeals: a patient here against another hospital's entry, "
                         "and those other hospitals forward here.", no_args_is_help=True)

review_app = typer.Typer(help="Other hospitals' entries held here for a member of staff to "
                         "review (the `hold` policy).", no_args_is_help=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _consortium() -> Iterator[Any]:
    """The platform's consortium, with database errors turned into one line."""
    from fairslot.cli.common import load_platform
    from fairslot.consortium import Consortium

    platform = load_platform()
    try:
        yield Consortium(platform.engine, platform.clock), platform
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if "consortium_" in message:
            raise CliError("the database has no consortium tables yet: run "
                           "`fairslot db upgrade`") from None
        raise CliError(f"database error: {message.splitlines()[0]}") from None
    finally:
        platform.engine.dispose()


def _run(c: Any, platform: Any, use_case: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one of the shared list's services (``fairslot.services.shared_list``, the same
    ones the officer's page calls) as this machine's user, on this consortium."""
    from fairslot.services.shared_list import Shell

    deps = dataclasses.replace(platform.deps, shared_list=c)
    with platform.uow() as uow:
        return use_case(uow, deps, Shell(_actor().removeprefix("cli:")), *args, **kwargs)


def _when(text: str | None, option: str) -> dt.datetime | None:
    from fairslot.cli.common import load_settings

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"{option}: {text!r} is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=load_settings().zone)


def _ago(delta: dt.timedelta | None) -> str:
    if delta is None:
        return "never"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _value(text: str | None) -> str | None:
    """An identifier given on the command line, or '-' to read it from standard input (so
    that it stays out of the shell's history)."""
    if text == "-":
        line = sys.stdin.readline().strip()
        if not line:
            raise CliError("expected the identifier on standard input")
        return line
    return text


# -- keys and epochs --------------------------------------------------------------------------

@consortium_app.command("keys")
def keys(
    member: Annotated[str, typer.Option(help="this hospital's member code, e.g. nj-gulou")],
    name: Annotated[str, typer.Option(help="the hospital's name, for the other members")] = "",
) -> None:
    """Make this hospital's member key pair (kept encrypted in its database) and print the
    public key the other members pin."""
    with _consortium() as (c, _):
        key = c.create_key(member, name, _actor())
    typer.echo(f"member {key.member}\npublic key {key.public_text}\n"
               "give both to the other members: they pin them with "
               "`fairslot consortium members add`")


@epoch_app.command("new")
def epoch_new() -> None:
    """Print a fresh random epoch key, for the consortium's coordinator to hand to every
    member over a channel it trusts. Nothing is stored."""
    from fairslot.consortium.pseudonyms import EpochKey

    typer.echo(EpochKey.new(1).text())


@epoch_app.command("add")
def epoch_add(
    epoch: Annotated[int, typer.Argument(min=1, help="the epoch's number")],
    key_file: Annotated[pathlib.Path | None, typer.Option(
        "--key-file", help="file holding the key; without it the key is read from standard "
        "input")] = None,
) -> None:
    """Add the consortium's key for an epoch (the newest one keys what this hospital
    publishes from now on)."""
    from fairslot.consortium.pseudonyms import EpochKey

    text = key_file.read_text() if key_file is not None else sys.stdin.readline()
    with _consortium() as (c, _):
        c.store.add_epoch(EpochKey.parse(epoch, text), c.clock.now(), _actor())
    typer.echo(f"epoch {epoch} added; run `fairslot consortium rekey` to republish this "
               "hospital's entries under it")


@epoch_app.command("list")
def epoch_list() -> None:
    """The epochs this hospital holds keys for (never the keys)."""
    with _consortium() as (c, _):
        rows = c.store.epoch_rows()
    if not rows:
        typer.echo("no epoch keys")
    for epoch, added, retired in rows:
        state = f"retired {retired:%Y-%m-%d}" if retired else "active"
        typer.echo(f"epoch {epoch}  added {added:%Y-%m-%d}  {state}")


@epoch_app.command("retire")
def epoch_retire(epoch: Annotated[int, typer.Argument(min=1)]) -> None:
    """Stop matching pseudonyms of an epoch (after every member has re-keyed)."""
    with _consortium() as (c, _):
        c.store.retire_epoch(epoch, c.clock.now(), _actor())
    typer.echo(f"epoch {epoch} retired")


@consortium_app.command("rekey")
def rekey() -> None:
    """Republish this hospital's active entries under the newest epoch key."""
    with _consortium() as (c, _):
        done = c.rekey(_actor())
    typer.echo(f"{done} entries republished under the newest epoch")


# -- members and policy -------------------------------------------------------------------------

@members_app.command("add")
def members_add(
    code: Annotated[str, typer.Argument(help="the member's code")],
    url: Annotated[str, typer.Option(help="the member's fairslot address, e.g. "
                                     "https://fairslot.hospital-a.example")],
    key: Annotated[str, typer.Option(help="its public key, 'ed25519:...', as it printed it")],
    name: Annotated[str, typer.Option(help="the hospital's name")] = "",
    hub: Annotated[bool, typer.Option("--hub", help="a hub: relays the feeds, publishes "
                                      "none")] = False,
) -> None:
    """Pin a member: its address and its public key, checked with the member out of band."""
    with _consortium() as (c, _):
        c.add_member(code, url, key, name=name, hub=hub, actor=_actor())
    typer.echo(f"{'hub' if hub else 'member'} {code} pinned")


@members_app.command("list")
def members_list() -> None:
    """Members, their feed versions and how fresh they are."""
    with _consortium() as (c, _):
        for s in c.status():
            m = s.member
            state = "hub" if m.hub else ("STALE" if s.stale else "ok")
            typer.echo(f"{m.code:16} {state:6} v{m.version:<8} {s.entries:>9} entries  head "
                       f"{_ago(s.age):>12}  {m.url}")
            if m.error:
                typer.echo(f"{'':16} last error: {m.error}")


@members_app.command("remove")
def members_remove(code: Annotated[str, typer.Argument()]) -> None:
    """Stop pulling a member's feed; its entries stop applying here."""
    with _consortium() as (c, _):
        c.store.remove_member(code, c.clock.now(), _actor())
        c.refresh()
    typer.echo(f"member {code} removed")


@policy_app.command("set")
def policy_set(
    kind: Annotated[str, typer.Argument(help="ring_member, no_show_suspension, or kind:role "
                                        "(e.g. ring_member:buyer)")],
    action: Annotated[str, typer.Argument(help="refuse, hold, lower_quota or ignore")],
) -> None:
    """Set what this hospital does when a patient matches an entry of this kind."""
    from fairslot.consortium import Action

    try:
        chosen = Action(action)
    except ValueError:
        raise CliError(f"{action!r} is not refuse, hold, lower_quota or ignore") from None
    with _consortium() as (c, _):
        c.set_policy(kind, chosen, _actor())
    typer.echo(f"{kind}: {chosen.value}")


@policy_app.command("list")
def policy_list() -> None:
    """This hospital's policy (defaults where it set none)."""
    from fairslot.consortium import EntryKind

    with _consortium() as (c, _):
        policy = c.store.policy()
    for kind in EntryKind:
        typer.echo(f"{kind.value}: {policy.action(kind, None).value}")
    for key, action in sorted(policy.actions.items()):
        if ":" in key:
            typer.echo(f"{key}: {action.value}")


# -- publishing ----------------------------------------------------------------------------------

@publish_app.command("entry")
def publish_entry(
    kind: Annotated[str, typer.Option(help="ring_member or no_show_suspension")],
    days: Annotated[int, typer.Option(min=1, max=3650, help="days until it expires")],
    source: Annotated[str, typer.Option(help="what it rests on, kept here only (e.g. a case "
                                        "number)")],
    identity: Annotated[str | None, typer.Option(help="ID number, or - for stdin")] = None,
    phone: Annotated[str | None, typer.Option(help="phone, or - for stdin")] = None,
    payer: Annotated[str | None, typer.Option(help="payer account, method:account")] = None,
    device: Annotated[str | None, typer.Option(help="device id")] = None,
    patient: Annotated[int | None, typer.Option(help="a patient of this hospital: their ID "
                                                "number")] = None,
    role: Annotated[str | None, typer.Option(help="a ring member's role")] = None,
    severity: Annotated[int, typer.Option(min=1, max=3, help="1 (low) to 3 (high)")] = 2,
    start: Annotated[str | None, typer.Option(help="from (ISO date); default now")] = None,
) -> None:
    """Publish one entry per identifier given."""
    from fairslot.consortium import EntryKind, RingRole, SubjectType
    from fairslot.services import shared_list

    try:
        entry_kind = EntryKind(kind)
        ring_role = RingRole(role) if role else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if ring_role is not None and entry_kind is not EntryKind.RING_MEMBER:
        raise CliError("--role goes with --kind ring_member only")
    given = [(SubjectType.IDENTITY, _value(identity)), (SubjectType.PHONE, _value(phone)),
             (SubjectType.PAYER, _value(payer)), (SubjectType.DEVICE, _value(device))]
    if patient is None and not any(v for _, v in given):
        raise CliError("name at least one of --identity, --phone, --payer, --device, "
                       "--patient")
    with _consortium() as (c, platform):
        published = _run(c, platform, shared_list.publish, kind=entry_kind, role=ring_role,
                         severity=severity, days=days, source=source,
                         identifiers=[(s, v) for s, v in given if v], patient_id=patient,
                         starts_at=_when(start, "--start"))
    for e in published:
        typer.echo(f"published {e.ref} ({e.kind.value}, {e.subject_type.value}) until "
                   f"{e.expires_at:%Y-%m-%d}")


def _payer_key(platform: Any, value: str) -> str:
    """A payer as the shared list names it: the payment provider's id of the payer (what
    quotas count), whichever way the account was typed or recorded."""
    from fairslot.services.payments import payer_key

    try:
        return payer_key(platform.payments, value)
    except InvalidInput as exc:
        raise CliError(f"--payer: {exc}") from None


@publish_app.command("ring")
def publish_ring(
    folder: Annotated[pathlib.Path, typer.Argument(help="the investigation's output folder "
                                                   "(suspects.csv)")],
    ring: Annotated[list[str], typer.Option("--ring", help="a ring id the investigator "
                                            "confirmed (repeat for several)")],
    days: Annotated[int, typer.Option(min=1, max=3650, help="days until the entries "
                                      "expire")] = 365,
    include_customers: Annotated[bool, typer.Option(
        "--include-customers", help="also list identities the ring booked for buyers")] = False,
    skip_unresolved: Annotated[bool, typer.Option(
        "--skip-unresolved", help="publish even if some h: values are not this hospital's")]
        = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be published")]
        = False,
) -> None:
    """Publish a confirmed ring's identifiers (ID numbers, phones, payers, devices) from
    `fairslot investigate` output, clear or pseudonymised; only pseudonyms leave."""
    from fairslot.consortium.rings import summary
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        try:
            found = _run(c, platform, shared_list.publish_ring, folder, ring, days=days,
                         include_customers=include_customers,
                         skip_unresolved=skip_unresolved, dry_run=dry_run)
        except InvalidInput as exc:
            if exc.code != "consortium_unresolved":
                raise
            raise CliError(f"{exc.detail} (--skip-unresolved publishes the rest)") from None
    left = "; ".join(f"{n} {why}" for why, n in sorted(found.skipped.items()))
    if dry_run:
        typer.echo(f"would publish {summary(found.entries)}" + (f"; left out {left}"
                                                                 if left else ""))
        return
    published = found.published
    typer.echo(f"published {len(published)} entries ({summary(found.entries)}) as "
               f"{published[0].issuer}/{published[0].entry_no}..{published[-1].entry_no}"
               + (f"; left out {left}" if left else "")
               + (f"; {found.unresolved} unresolved skipped" if found.unresolved else ""))


@consortium_app.command("withdraw")
def withdraw(
    entry_no: Annotated[int, typer.Argument(min=1, help="the entry's number in this "
                                            "hospital's feed")],
    reason: Annotated[str, typer.Option(help="why (kept here, in the audit log)")],
) -> None:
    """Withdraw one of this hospital's entries; the withdrawal reaches every member with its
    next sync."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        entry = _run(c, platform, shared_list.withdraw, entry_no, reason)
    typer.echo(f"withdrew {entry.ref}")


@consortium_app.command("sync")
def sync(member: Annotated[list[str] | None, typer.Option(
        "--member", help="only this member (repeat for several)")] = None) -> None:
    """Pull every member's feed now (from a hub when a member is down), and deliver pending
    appeals. Exit 1 when a member could not be brought up to date."""
    with _consortium() as (c, _):
        results = c.sync(member)
    failed = False
    for r in results:
        if r.ok:
            via = "" if r.source == "member" else f" via {r.source}"
            typer.echo(f"{r.member}: v{r.version}, {r.applied} changes applied{via}")
        else:
            failed = True
            typer.echo(f"{r.member}: not updated, kept v{r.version}: {'; '.join(r.errors)}",
                       err=True)
    if not results:
        typer.echo("no members to pull")
    if failed:
        raise typer.Exit(1)


@consortium_app.command("inspect")
def inspect(
    identity: Annotated[str | None, typer.Option(help="look up an ID number (- for "
                                                 "stdin)")] = None,
    phone: Annotated[str | None, typer.Option(help="look up a phone")] = None,
    payer: Annotated[str | None, typer.Option(help="look up a payer account")] = None,
    device: Annotated[str | None, typer.Option(help="look up a device id")] = None,
    own: Annotated[bool, typer.Option("--own", help="list this hospital's entries")] = False,
    audit: Annotated[int, typer.Option(min=0, max=1000, help="show the last N audit "
                                       "rows")] = 0,
) -> None:
    """What this hospital holds: its key, members and staleness, entry counts; or, given
    identifiers, the entries in force that name them and this hospital's action."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        lookup = {"identity": _value(identity), "phone": _value(phone),
                  "payer": _value(payer), "device": _value(device)}
        if any(lookup.values()):
            matches = _run(c, platform, shared_list.lookup, **lookup)
            if not matches:
                typer.echo("no entry in force names these identifiers")
            for m in matches:
                role = f"/{m.role.value}" if m.role else ""
                typer.echo(f"{m.ref}: {m.kind.value}{role} severity {m.severity}, "
                           f"{m.subject_type.value}, until {m.expires_at:%Y-%m-%d} -> "
                           f"{m.action.value}")
            return
        me = c.store.self_row()
        typer.echo(f"this hospital: {me.member} {me.public_key}" if me else
                   "this hospital has no member key (`fairslot consortium keys`)")
        epochs = [k.epoch for k in c.store.epochs()]
        typer.echo(f"active epochs: {', '.join(map(str, epochs)) or 'none'}")
        typer.echo(f"entries in force or pending in memory: {c.index_size}")
        for s in c.status():
            state = "hub" if s.member.hub else ("STALE" if s.stale else "ok")
            typer.echo(f"  {s.member.code}: {state}, v{s.member.version}, {s.entries} entries,"
                       f" head {_ago(s.age)}")
        if own:
            for o in c.store.own_entries():
                e = o.entry
                gone = (f"withdrawn {o.withdrawn_at:%Y-%m-%d}: {o.withdraw_reason}"
                        if o.withdrawn_at else f"until {e.expires_at:%Y-%m-%d}")
                typer.echo(f"{e.ref} v{e.version} {e.kind.value} {e.subject_type.value} "
                           f"epoch {e.epoch} {gone} ({o.source})")
        for row in reversed(c.store.audit_log(audit) if audit else []):
            where = (row["member"] or "") + (f"/{row['entry_no']}" if row["entry_no"] else "")
            typer.echo(f"{row['at']:%Y-%m-%d %H:%M:%S} {row['actor']} {row['action']} {where} "
                       f"{row['detail']}")


# -- appeals ---------------------------------------------------------------------------------------

@appeal_app.command("send")
def appeal_send(
    entry: Annotated[str, typer.Argument(help="the entry, issuer/number as inspect shows it")],
    message: Annotated[str, typer.Option(help="the patient's own words")],
    identity: Annotated[str | None, typer.Option(help="the patient's ID number")] = None,
    phone: Annotated[str | None, typer.Option(help="or phone")] = None,
    payer: Annotated[str | None, typer.Option(help="or payer account")] = None,
    device: Annotated[str | None, typer.Option(help="or device id")] = None,
) -> None:
    """Forward a patient's appeal to the hospital that issued the entry: the pseudonym and
    the message only, signed by this hospital."""
    from fairslot.consortium import SubjectType

    issuer, _, number = entry.partition("/")
    if not issuer or not number.isdigit():
        raise CliError(f"{entry!r} is not issuer/number (e.g. hosp-a/12)")
    given = [(s, _value(v)) for s, v in ((SubjectType.IDENTITY, identity),
                                         (SubjectType.PHONE, phone),
                                         (SubjectType.PAYER, payer),
                                         (SubjectType.DEVICE, device)) if v]
    if len(given) != 1:
        raise CliError("give exactly one of --identity, --phone, --payer, --device: the one "
                       "the entry names")
    subject, value = given[0]
    assert value is not None
    with _consortium() as (c, platform):
        if subject is SubjectType.PAYER:
            value = _payer_key(platform, value)
        appeal = c.appeal(issuer, int(number), subject, value, message, actor=_actor())
    extra = f" ({appeal.error}; `sync` retries)" if appeal.error else ""
    typer.echo(f"appeal {appeal.ref}: {appeal.status}{extra}")
    if appeal.status == "refused":
        raise typer.Exit(1)


@appeal_app.command("list")
def appeal_list() -> None:
    """Appeals sent from here and received here (messages of received ones included)."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        appeals = _run(c, platform, shared_list.appeals)
    if not appeals:
        typer.echo("no appeals")
    for a in appeals:
        where = f"to {a.issuer}" if a.direction == "out" else f"from {a.member}"
        typer.echo(f"{a.ref} {where} about {a.issuer}/{a.entry_no}: {a.status} "
                   f"({a.created_at:%Y-%m-%d %H:%M})")
        if a.direction == "in":
            typer.echo(f"    message: {a.message}")
        if a.decision:
            typer.echo(f"    decision: {a.decision}")


@appeal_app.command("decide")
def appeal_decide(
    ref: Annotated[str, typer.Argument(help="the appeal's reference")],
    note: Annotated[str, typer.Option(help="the decision's reasons")],
    withdraw: Annotated[bool, typer.Option("--withdraw/--uphold", help="withdraw the entry, "
                                           "or keep it")] = False,
) -> None:
    """Decide an appeal received about one of this hospital's entries."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        appeal = _run(c, platform, shared_list.decide_appeal, ref, withdraw=withdraw,
                      note=note)
    typer.echo(f"appeal {appeal.ref}: {appeal.status}")


@review_app.command("list")
def review_list(
    all_: Annotated[bool, typer.Option("--all", help="decided ones too")] = False,
) -> None:
    """Other hospitals' entries this hospital's policy held for review (pending first)."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        reviews = _run(c, platform, shared_list.reviews, status=None if all_ else "pending")
    if not reviews:
        typer.echo("no reviews" if all_ else "no pending reviews")
    for r in reviews:
        who = f"patient {r.patient_id}" if r.patient_id else (
            f"account {r.account_id}" if r.account_id else "no patient yet")
        typer.echo(f"{r.ref}: {r.status} (held at {r.point}, {who}, "
                   f"{r.created_at:%Y-%m-%d %H:%M})")
        if r.note:
            typer.echo(f"    {r.decided_by}: {r.note}")


@review_app.command("decide")
def review_decide(
    ref: Annotated[str, typer.Argument(help="the entry, issuer/number")],
    note: Annotated[str, typer.Option(help="the decision's reasons")],
    clear: Annotated[bool, typer.Option("--clear/--refuse", help="let the person through "
                                        "here from now on, or refuse them here")] = False,
) -> None:
    """Decide an entry held for review: cleared, it stops applying at this hospital;
    refused, it is refused here from now on whatever the policy."""
    from fairslot.services import shared_list

    with _consortium() as (c, platform):
        review = _run(c, platform, shared_list.decide_review, ref, clear=clear, note=note)
    typer.echo(f"{review.ref}: {review.status}")


@consortium_app.command("hub")
def hub(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8100,
) -> None:
    """Serve only the consortium's routes: a hub that relays the members' feeds (pull them
    into its database with `fairslot consortium sync`)."""
    import uvicorn

    from fairslot.cli.common import load_platform
    from fairslot.consortium.hub import create_hub_app

    platform = load_platform()
    typer.echo(f"consortium hub on http://{host}:{port}/")
    uvicorn.run(create_hub_app(platform.engine, platform.clock), host=host, port=port,
                log_level="warning", access_log=False, proxy_headers=False)


def register(app: typer.Typer) -> None:
    consortium_app.add_typer(epoch_app, name="epoch")
    consortium_app.add_typer(members_app, name="members")
    consortium_app.add_typer(policy_app, name="policy")
    consortium_app.add_typer(publish_app, name="publish")
    consortium_app.add_typer(appeal_app, name="appeal")
    consortium_app.add_typer(review_app, name="review")
    app.add_typer(consortium_app, name="consortium")

