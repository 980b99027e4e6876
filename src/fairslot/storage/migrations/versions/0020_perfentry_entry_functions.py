"""PostgreSQL functions for entering a round at its peak, as migration 0018's are for the
booking: the patient's ownership under the quota locks with the round's look-up
(``fairslot_entry_target``), and a new entry written with its event and its first signed
receipt (``fairslot_add_entry``), each one call whose plans the server keeps, so that an
entry sends its statements in two messages (``RoundRepository.read_for_entry`` and
``add_entry_and_commit``). The rules stay in Python; these only read and write rows. SQLite
has no such functions and keeps the statements.

Revision ID: 0020_perfentry_entry_functions
Revises: 0019_phone_history_quota_facts
Create Date: 2026-11-28 14:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0020_perfentry_entry_functions"
down_revision = "0019_phone_history_quota_facts"
branch_labels = None
depends_on = None

# What ``RoundRepository.entry_target``'s statement reads, after what ``is_managed_by``
# checks: ``managed`` false (and nothing else) when the account does not manage the
# patient; no row when there is no such round.
_TARGET = """
CREATE OR REPLACE FUNCTION fairslot_entry_target(
    a_locks bigint[], a_account integer, a_patient integer, a_round integer,
    a_choice0 integer, a_choice1 integer, a_choice2 integer, a_identity boolean)
RETURNS TABLE (
    managed boolean, r_id integer, r_department_id integer, r_opens_at timestamptz,
    r_closes_at timestamptz, r_status varchar, r_kind varchar, choices_in_round bigint,
    first_starts_at timestamptz, entry_id integer, entry_round_id integer,
    entry_ref varchar, entry_patient_id integer, entry_account_id integer,
    entry_choices json, entry_created_at timestamptz, entry_updated_at timestamptz,
    entry_withdrawn boolean, entry_idempotency_key varchar, entry_outcome varchar,
    entry_position integer, entry_won_session_id integer, entry_won_rank integer,
    entry_booking_id integer, id_number bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    -- The quota locks first (ascending keys, as every other taker orders them): the
    -- statements after this one see what the locks' previous holders committed.
    PERFORM pg_advisory_xact_lock(k) FROM unnest(a_locks) AS k ORDER BY k;
    IF NOT EXISTS (SELECT 1 FROM account_patients ap
                    WHERE ap.account_id = a_account AND ap.patient_id = a_patient
                      AND ap.removed_at IS NULL) THEN
        managed := false;
        RETURN NEXT;
        RETURN;
    END IF;
    -- Locks only the round's row, against the draw (as RoundRepository.get(for_share)).
    RETURN QUERY
    SELECT true, r.id, r.department_id, r.opens_at, r.closes_at, r.status, r.kind,
           (SELECT count(*) FROM round_sessions rs
             WHERE rs.round_id = a_round
               AND rs.session_id IN (a_choice0, a_choice1, a_choice2)),
           (SELECT s.starts_at FROM sessions s WHERE s.id = a_choice0),
           e.id, e.round_id, e.ref, e.patient_id, e.account_id, e.choices, e.created_at,
           e.updated_at, e.withdrawn, e.idempotency_key, e.outcome, e.position,
           e.won_session_id, e.won_rank, e.booking_id, p.id_number
      FROM release_rounds r
      LEFT JOIN entries e ON e.round_id = r.id AND e.patient_id = a_patient
      LEFT JOIN patients p ON a_identity AND p.id = a_patient
     WHERE r.id = a_round
       FOR KEY SHARE OF r;
END
$fn$
"""

# What ``RoundRepository.add_new_entry``'s statement writes: the entry, its
# ``entry.created`` event and its first receipt (the entry's ref); the entry's id back.
_ADD = """
CREATE OR REPLACE FUNCTION fairslot_add_entry(
    a_round integer, a_ref varchar, a_patient integer, a_account integer, a_choices json,
    a_now timestamptz, a_idempotency_key varchar, a_session integer, a_ip varchar,
    a_device_id varchar, a_detail json, a_receipt_kind varchar, a_receipt_at timestamptz,
    a_receipt_body text)
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_entry integer;
BEGIN
    INSERT INTO entries (round_id, ref, patient_id, account_id, choices, created_at,
                         updated_at, withdrawn, idempotency_key)
    VALUES (a_round, a_ref, a_patient, a_account, a_choices, a_now, a_now, false,
            a_idempotency_key)
    RETURNING id INTO v_entry;
    INSERT INTO events (at, kind, account_id, patient_id, session_id, booking_id, ip,
                        device_id, detail)
    VALUES (a_now, 'entry.created', a_account, a_patient, a_session, NULL, a_ip,
            a_device_id, a_detail);
    INSERT INTO draw_receipts (round_id, entry_id, ref, seq, kind, at, body)
    VALUES (a_round, v_entry, a_ref, 1, a_receipt_kind, a_receipt_at, a_receipt_body);
    RETURN v_entry;
END
$fn$
"""

_FUNCTIONS = ("fairslot_entry_target(bigint[], integer, integer, integer, integer, integer, "
              "integer, boolean)",
              "fairslot_add_entry(integer, varchar, integer, integer, json, timestamptz, "
              "varchar, integer, varchar, varchar, json, varchar, timestamptz, text)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in (_TARGET, _ADD):
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
