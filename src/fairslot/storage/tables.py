"""Table definitions. The database itself enforces the invariants that matter most:

- a slot is held by at most one active booking (a partial unique index);
- a patient has at most one active booking per session (another partial unique index);
- a booking's patient never changes and events are never edited (triggers);
- each identity is registered once (a unique blind index)."""

from __future__ import annotations

import sqlalchemy as sa

from fairslot.domain.accounts import Role
from fairslot.domain.booking import SLOT_TAKEN_STATUSES, BookingStatus, Channel
from fairslot.domain.schedule import Period, ReleasePolicy, SessionStatus
from fairslot.storage.types import EncryptedText, StrEnum, UTCDateTime

__all__ = ["metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SLOT_TAKEN = ("status IN ("
               + ", ".join(f"'{s.value}'" for s in sorted(SLOT_TAKEN_STATUSES)) + ")")

hospitals = sa.Table(
    "hospitals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
)

departments = sa.Table(
    "departments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hospital_id", sa.ForeignKey("hospitals.id"), nullable=False),
    sa.Column("code", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("hospital_id", "code"),
)

doctors = sa.Table(
    "doctors", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("department_id", sa.ForeignKey("departments.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("specialty", sa.String(200), nullable=False),
    sa.Column("release_policy", StrEnum(ReleasePolicy), nullable=False),
    sa.Column("hot", sa.Boolean, nullable=False, default=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doctor_id", sa.ForeignKey("doctors.id"), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("period", StrEnum(Period), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("fee_cents", sa.Integer, nullable=False),
    sa.Column("release_at", UTCDateTime, nullable=False, index=True),
    sa.Column("release_policy", StrEnum(ReleasePolicy), nullable=False),
    sa.Column("status", StrEnum(SessionStatus), nullable=False),
    sa.UniqueConstraint("doctor_id", "date", "period"),
    sa.CheckConstraint("capacity > 0", name="capacity_positive"),
)

slots = sa.Table(
    "slots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    # Whether an active booking (or a waitlist offer) holds it; kept by the booking service and
    # locked with SELECT ... FOR UPDATE SKIP LOCKED, backed by the unique index on bookings.
    sa.Column("taken", sa.Boolean, nullable=False, default=False),
    # When a free slot opens to booking: unset for an fcfs session's slots (from the
    # release); a draw session's leftover from this moment; the session's start for a slot
    # held back for a short round's draw (docs/release.md, "No speed race anywhere").
    sa.Column("open_from", UTCDateTime, nullable=True),
    # When the slot last returned to the public pool after it was first given out (a
    # booking cancelled, a hold or an offer lapsing) or, for a draw session's leftover, when
    # it opened to booking; unset for a slot free since its session's release. Kept when the
    # slot is taken, so the claim reads it back: a booking's event carries it, and the
    # monitor measures a snipe from it (docs/monitoring.md, ``release_snipe``). A slot
    # handed straight to the waitlist never passes through the pool and is not re-stamped.
    sa.Column("freed_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("session_id", "number"),
)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", StrEnum(Role), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("phone", EncryptedText("accounts.phone"), nullable=True),
    sa.Column("phone_index", sa.String(40), nullable=True, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    # Set when the account proved it receives texts at ``phone`` (a one-time code); an
    # account without it cannot book, enter a draw or link anyone.
    sa.Column("phone_verified_at", UTCDateTime, nullable=True),
    sa.Column("language", sa.String(8), nullable=False, default="zh-CN",
              server_default="zh-CN"),
)

patients = sa.Table(
    "patients", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("id_number", EncryptedText("patients.id_number"), nullable=False),
    sa.Column("id_number_index", sa.String(40), nullable=False, unique=True),
    sa.Column("name", EncryptedText("patients.name"), nullable=False),
    sa.Column("phone", EncryptedText("patients.phone"), nullable=True),
    sa.Column("phone_index", sa.String(40), nullable=True, index=True),
    sa.Column("verified_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The account whose verified phone speaks for this identity: the first to link it, until
    # the person claims it from their own account (``claimed_at``) or at the desk with the ID
    # card. Linking the identity to another account needs a code sent to that phone.
    sa.Column("registered_account_id", sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
)

account_patients = sa.Table(
    "account_patients", metadata,
    sa.Column("account_id", sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), primary_key=True, index=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
    # A removed link is kept (with when it ended): quotas count the patients an account
    # managed recently, not only those it manages now.
    sa.Column("removed_at", UTCDateTime, nullable=True),
)

# A claim the registration desk made for a person (their identity to their own account),
# pending until a second member of staff approves or rejects it (four eyes: a clerk alone
# cannot hand a victim's identity to a ring's account). No ID number or name here: the
# patient row holds them. A pending claim past ``expires_at`` is expired.
identity_claims = sa.Table(
    "identity_claims", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=False, index=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("requested_by", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("decided_by", sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("decided_at", UTCDateTime, nullable=True),
)

# The registry of known residents behind the real-name check: only keyed hashes, no clear PII.
residents = sa.Table(
    "residents", metadata,
    sa.Column("id_number_index", sa.String(40), primary_key=True),
    sa.Column("name_check", sa.String(40), nullable=False),
)

bookings = sa.Table(
    "bookings", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.ForeignKey("sessions.id"), nullable=False, index=True),
    sa.Column("slot_id", sa.ForeignKey("slots.id"), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=False, index=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("fee_cents", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("pay_by", UTCDateTime, nullable=False),
    sa.Column("channel", StrEnum(Channel), nullable=False),
    sa.Column("status", StrEnum(BookingStatus), nullable=False, index=True),
    sa.Column("paid_at", UTCDateTime, nullable=True),
    sa.Column("payer_account", EncryptedText("bookings.payer_account"), nullable=True),
    sa.Column("cancelled_at", UTCDateTime, nullable=True),
    sa.Column("checked_in_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("late_cancel", sa.Boolean, nullable=False, default=False),
    # Held for review by a monitoring decision (fairslot.monitoring): pending, approved,
    # rejected or lapsed; NULL for every other booking.
    sa.Column("review", sa.String(16), nullable=True),
    # Only the bookings a review concerns: the review queue is the index's one reader.
    sa.Index("ix_bookings_review", "review", sqlite_where=sa.text("review IS NOT NULL"),
             postgresql_where=sa.text("review IS NOT NULL")),
    sa.Index("uq_bookings_active_slot", "slot_id", unique=True,
             sqlite_where=sa.text(_SLOT_TAKEN), postgresql_where=sa.text(_SLOT_TAKEN)),
    sa.Index("uq_bookings_active_patient_session", "patient_id", "session_id", unique=True,
             sqlite_where=sa.text(_SLOT_TAKEN), postgresql_where=sa.text(_SLOT_TAKEN)),
)

payments = sa.Table(
    "payments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("booking_id", sa.ForeignKey("bookings.id"), nullable=False, index=True),
    sa.Column("provider", sa.String(32), nullable=False),
    # Empty until the provider has taken the money (the charge runs after the commit).
    sa.Column("provider_ref", sa.String(64), nullable=True, unique=True),
    sa.Column("payer_account", EncryptedText("payments.payer_account"), nullable=False),
    sa.Column("payer_index", sa.String(40), nullable=False, index=True),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("paid_at", UTCDateTime, nullable=False),
    sa.Column("refunded_at", UTCDateTime, nullable=True),
)

# Append-only log of what happened; monitoring, investigation and exports read it.
events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False, index=True),
    sa.Column("account_id", sa.Integer, nullable=True, index=True),
    sa.Column("patient_id", sa.Integer, nullable=True),
    sa.Column("session_id", sa.Integer, nullable=True),
    sa.Column("booking_id", sa.Integer, nullable=True),
    sa.Column("ip", sa.String(45), nullable=True),
    sa.Column("device_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
)

# Fair release: a round groups the draw sessions of one department released at one moment.
release_rounds = sa.Table(
    "release_rounds", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("department_id", sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("opens_at", UTCDateTime, nullable=False),
    sa.Column("closes_at", UTCDateTime, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    # The seed stays secret (encrypted) until the draw; its SHA-256 is public from the start.
    sa.Column("seed", EncryptedText("release_rounds.seed"), nullable=False),
    sa.Column("commitment", sa.String(64), nullable=False),
    sa.Column("entries_digest", sa.String(64), nullable=True),
    sa.Column("beacon", sa.String(200), nullable=False, default=""),
    # Named when the window opens (e.g. "drand quicknet, first round after the close");
    # its value is accepted once, after the close, and the draw waits for it.
    sa.Column("beacon_source", sa.String(200), nullable=False, default="",
              server_default=""),
    sa.Column("revealed_seed", sa.String(64), nullable=True),
    sa.Column("drawn_at", UTCDateTime, nullable=True),
    sa.Column("entries_count", sa.Integer, nullable=False, default=0),
    # release | late | leftover | opening (fairslot.domain.rounds.RoundKind)
    sa.Column("kind", sa.String(16), nullable=False, default="release",
              server_default="release"),
    sa.Index("ix_release_rounds_department_id_closes_at", "department_id", "closes_at"),
)

round_sessions = sa.Table(
    "round_sessions", metadata,
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), primary_key=True),
    # A session is in its release round and then in a short round for each slot that frees
    # up with nobody waiting (docs/release.md), so it may be in several.
    sa.Column("session_id", sa.ForeignKey("sessions.id"), primary_key=True, index=True),
    # The slots the draw gives out, fixed and published when the window opens.
    sa.Column("capacity", sa.Integer, nullable=False, default=0, server_default="0"),
)

entries = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), nullable=False),
    sa.Column("ref", sa.String(32), nullable=False, unique=True),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=False),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("choices", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("withdrawn", sa.Boolean, nullable=False, default=False),
    sa.Column("idempotency_key", sa.String(80), nullable=True),
    # After the draw: won | waitlist | offered | passed; position in the draw order.
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("position", sa.Integer, nullable=True),
    # What the draw gave, written once at the draw and never changed: the published result.
    sa.Column("won_session_id", sa.Integer, nullable=True),
    sa.Column("won_rank", sa.Integer, nullable=True),
    sa.Column("booking_id", sa.ForeignKey("bookings.id"), nullable=True),
    sa.UniqueConstraint("round_id", "patient_id"),
    sa.UniqueConstraint("account_id", "idempotency_key"),
    # The drawn entries only (the waitlist's readers ask for an outcome): an entry made in
    # the window, which has none yet, adds nothing to it.
    sa.Index("ix_entries_round_outcome_position", "round_id", "outcome", "position",
             sqlite_where=sa.text("outcome IS NOT NULL"),
             postgresql_where=sa.text("outcome IS NOT NULL")),
)

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("text", sa.String(500), nullable=False),
    sa.Column("read", sa.Boolean, nullable=False, default=False),
)

# One-time codes sent to a phone: to verify an account's phone, or to ask the holder of an
# identity's registered phone for consent to a link or a claim. Only a keyed hash of the code
# is kept; a code lives minutes and allows a few attempts.
verification_codes = sa.Table(
    "verification_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("phone", EncryptedText("verification_codes.phone"), nullable=False),
    sa.Column("phone_index", sa.String(40), nullable=False, index=True),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

# Every message sent to a person (SMS, WeChat template message, e-mail, or the development
# outbox), rendered in their language. Recipient and text are encrypted at rest.
messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=True, index=True),
    sa.Column("channel", sa.String(16), nullable=False, index=True),
    sa.Column("recipient", EncryptedText("messages.recipient"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("subject", EncryptedText("messages.subject"), nullable=False),
    sa.Column("body", EncryptedText("messages.body"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("provider_ref", sa.String(80), nullable=True),
)

# Failed real-name checks, counted per account and per ID number (a blind index) like failed
# log-ins, so the check cannot be used as an oracle for guessing names.
identity_check_failures = sa.Table(
    "identity_check_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("account_id", sa.Integer, nullable=True, index=True),
    sa.Column("id_number_index", sa.String(40), nullable=True, index=True),
)

auth_tokens = sa.Table(
    "auth_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# Calls to the outside world decided by a transaction and made after it commits, retried
# until done (charges, refunds, messages). The payload names rows, never PII in clear.
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Index("ix_outbox_pending", "done_at", "due_at"),
)

# The draw, format fairslot-round/2 (docs/draw.md): what the hospital signed, stored as signed
# and never rewritten (append-only triggers in migration 0005).
draw_statements = sa.Table(
    "draw_statements", metadata,
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # opening | freeze | result
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("signed_at", UTCDateTime, nullable=False),
    # The public half of the draw key that signed it (hex; NULL for statements stored before
    # it was kept): a round's document names its own key even after a key rotation.
    sa.Column("signing_key", sa.String(64), nullable=True),
)

draw_frozen_lists = sa.Table(
    "draw_frozen_lists", metadata,
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), primary_key=True),
    sa.Column("leaves", sa.Text, nullable=False),  # the leaf lines in ref order, "\n"-joined
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("drawn", sa.Integer, nullable=False),
    sa.Column("frozen_at", UTCDateTime, nullable=False),
)

draw_beacons = sa.Table(
    "draw_beacons", metadata,
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), primary_key=True),
    sa.Column("chain_hash", sa.String(64), nullable=False),
    sa.Column("beacon_round", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.String(192), nullable=False),
    sa.Column("previous_signature", sa.String(192), nullable=True),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
)

draw_receipts = sa.Table(
    "draw_receipts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), nullable=False),
    sa.Column("entry_id", sa.ForeignKey("entries.id"), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("entry_id", "seq"),
)

draw_log_records = sa.Table(
    "draw_log_records", metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("round_id", sa.ForeignKey("release_rounds.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("round_id", "kind"),
)

draw_checkpoints = sa.Table(
    "draw_checkpoints", metadata,
    sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

# Beside the checkpoint of each size, the roots of the perfect subtrees of the log's tree
# (hex, comma-separated): enough to append the next record without reading the log
# (merkle.frontier_push). Not public, and derivable from the log: a missing row only means
# the next append reads the log once.
draw_log_frontiers = sa.Table(
    "draw_log_frontiers", metadata,
    sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("frontier", sa.Text, nullable=False),
)

# The consortium (docs/consortium.md): entries shared with other hospitals under pseudonyms.
# Clear identifiers appear only in this hospital's own entries, encrypted; what other members
# send is pseudonymous. Read and written by fairslot.consortium.store alone.
consortium_self = sa.Table(
    "consortium_self", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("signing_key", EncryptedText("consortium_self.signing_key"), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

consortium_epochs = sa.Table(
    "consortium_epochs", metadata,
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", EncryptedText("consortium_epochs.key"), nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime, nullable=True),
)

consortium_members = sa.Table(
    "consortium_members", metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("url", sa.String(300), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("hub", sa.Boolean, nullable=False, default=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime, nullable=True),
    # The last verified state of the member's feed, and how the last pulls went.
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("head_at", UTCDateTime, nullable=True),
    sa.Column("attempt_at", UTCDateTime, nullable=True),
    sa.Column("success_at", UTCDateTime, nullable=True),
    sa.Column("error", sa.String(300), nullable=True),
)

# Every member's feed as received (and this hospital's own), so any member can relay it.
consortium_changes = sa.Table(
    "consortium_changes", metadata,
    sa.Column("member", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("chain", sa.String(64), nullable=False),
    # The issuer's signed head (its exact JSON) when a page ended here, relayed as received.
    sa.Column("head", sa.Text, nullable=True),
    sa.Column("signature", sa.String(100), nullable=True),
)

# The current state of every entry, own and subscribed: what the look-up index is built from.
consortium_entries = sa.Table(
    "consortium_entries", metadata,
    sa.Column("member", sa.String(32), primary_key=True),
    sa.Column("entry_no", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_version", sa.Integer, nullable=False),
    sa.Column("withdrawn", sa.Boolean, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("role", sa.String(24), nullable=True),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.String(16), nullable=False),
    sa.Column("pseudonym", sa.String(32), nullable=False, index=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

consortium_own_entries = sa.Table(
    "consortium_own_entries", metadata,
    sa.Column("entry_no", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("role", sa.String(24), nullable=True),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.String(16), nullable=False),
    # The clear identifier stays here, encrypted, so a new epoch can re-key the entry.
    sa.Column("identifier", EncryptedText("consortium_own_entries.identifier"),
              nullable=False),
    sa.Column("pseudonym", sa.String(32), nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("withdrawn_at", UTCDateTime, nullable=True),
    sa.Column("withdraw_reason", sa.String(300), nullable=True),
)

consortium_policies = sa.Table(
    "consortium_policies", metadata,
    sa.Column("key", sa.String(48), primary_key=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

consortium_appeals = sa.Table(
    "consortium_appeals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ref", sa.String(36), nullable=False, unique=True),
    # "out": a patient here appeals another member's entry; "in": received from a member.
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("member", sa.String(32), nullable=False),
    sa.Column("issuer", sa.String(32), nullable=False),
    sa.Column("entry_no", sa.BigInteger, nullable=False),
    sa.Column("pseudonym", sa.String(32), nullable=False),
    sa.Column("message", EncryptedText("consortium_appeals.message"), nullable=False),
    sa.Column("patient_id", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("decision", sa.String(500), nullable=True),
    sa.Column("error", sa.String(300), nullable=True),
)

# Another member's entry that this hospital's policy holds for review ("hold"): pending
# until a member of staff clears it (it stops applying here) or refuses (it is refused
# here from then on). One row per entry: an entry names one identifier.
consortium_reviews = sa.Table(
    "consortium_reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("issuer", sa.String(32), nullable=False),
    sa.Column("entry_no", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("point", sa.String(24), nullable=False),
    sa.Column("patient_id", sa.Integer, nullable=True),
    sa.Column("account_id", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.UniqueConstraint("issuer", "entry_no"),
)

# Append-only: every change to the consortium's state here, with who made it. No clear PII.
consortium_audit = sa.Table(
    "consortium_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("member", sa.String(32), nullable=True),
    sa.Column("entry_no", sa.BigInteger, nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
)

# Monitoring (fairslot.monitoring): alerts, their status history and the decisions taken.
# One live (open or acknowledged) alert per scenario and entity: a partial unique index, so
# two monitors racing to open the same alert end with one.
_LIVE_ALERT = "status IN ('open', 'acknowledged')"

monitor_alerts = sa.Table(
    "monitor_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario", sa.String(40), nullable=False),
    sa.Column("entity_type", sa.String(20), nullable=False),
    sa.Column("entity_id", sa.String(120), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("summary", sa.String(500), nullable=False),
    # figures, members and sample events: pseudonymous ids only, never clear PII
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("related", sa.JSON, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("status_by", sa.String(80), nullable=True),
    sa.Column("status_reason", sa.String(500), nullable=True),
    sa.Column("status_at", UTCDateTime, nullable=True),
    sa.Column("quiet_until", UTCDateTime, nullable=True),
    sa.Index("uq_monitor_alerts_live", "scenario", "entity_type", "entity_id", unique=True,
             sqlite_where=sa.text(_LIVE_ALERT), postgresql_where=sa.text(_LIVE_ALERT)),
    sa.Index("ix_monitor_alerts_entity_type_entity_id", "entity_type", "entity_id"),
)

monitor_alert_history = sa.Table(
    "monitor_alert_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alert_id", sa.ForeignKey("monitor_alerts.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("reason", sa.String(500), nullable=True),
)

monitor_decisions = sa.Table(
    "monitor_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alert_id", sa.ForeignKey("monitor_alerts.id"), nullable=True),
    sa.Column("scenario", sa.String(40), nullable=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("param", sa.String(40), nullable=True),
    sa.Column("entity_type", sa.String(20), nullable=False),
    sa.Column("entity_id", sa.String(120), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("lifted_at", UTCDateTime, nullable=True),
    sa.Column("lifted_by", sa.String(80), nullable=True),
    sa.Column("lifted_reason", sa.String(500), nullable=True),
    # An alert makes each decision once, however often it is seen or by how many monitors.
    sa.UniqueConstraint("alert_id", "action", "entity_type", "entity_id"),
    sa.Index("ix_monitor_decisions_entity_type_entity_id", "entity_type", "entity_id"),
)
