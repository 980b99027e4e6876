"""PostgreSQL functions for the booking's hot path: its look-up under the quota locks, its
quota facts and its hold (slot claim, booking, event), each one call whose plans the server
keeps, so that a booking sends its statements in two messages (``BookingRepository.
read_for_booking`` and ``hold_and_commit``). SQLite has no such functions and keeps the
statements.

``fairslot_quota_facts`` answers what ``QuotaRepository.facts`` reads (the same rows);
``tests/integration/test_fast_booking.py`` checks the two agree.

Revision ID: 0018_fastbook_booking_functions
Revises: 0017_t1freed_slot_freed_at
Create Date: 2026-11-28 11:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0018_fastbook_booking_functions"
down_revision = "0017_t1freed_slot_freed_at"
branch_labels = None
depends_on = None

# Statuses as ``fairslot.domain.booking`` defines its sets when this migration was written:
# active = held, paid; visit = held, paid, checked_in; slot taken = held, paid, checked_in,
# no_show. A later change to those sets needs a migration that replaces these functions.
_TARGET = """
CREATE OR REPLACE FUNCTION fairslot_booking_target(
    a_locks bigint[], a_account integer, a_patient integer, a_session integer)
RETURNS TABLE (
    p_id integer, p_id_number bytea, p_name bytea, p_phone bytea, p_verified_at timestamptz,
    p_created_at timestamptz, p_registered_account_id integer, p_claimed_at timestamptz,
    s_id integer, s_doctor_id integer, s_date date, s_period varchar, s_starts_at timestamptz,
    s_ends_at timestamptz, s_capacity integer, s_fee_cents integer,
    s_release_at timestamptz, s_release_policy varchar, s_status varchar,
    department_id integer)
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The quota locks first (ascending keys, as every other taker orders them): the
    -- statements after this one see what the locks' previous holders committed.
    PERFORM pg_advisory_xact_lock(k) FROM unnest(a_locks) AS k ORDER BY k;
    RETURN QUERY
    SELECT p.id, p.id_number, p.name, p.phone, p.verified_at, p.created_at,
           p.registered_account_id, p.claimed_at,
           s.id, s.doctor_id, s.date, s.period, s.starts_at, s.ends_at, s.capacity,
           s.fee_cents, s.release_at, s.release_policy, s.status, d.department_id
      FROM patients p
      JOIN account_patients ap ON ap.patient_id = p.id AND ap.account_id = a_account
                              AND ap.removed_at IS NULL
      JOIN sessions s ON s.id = a_session
      JOIN doctors d ON d.id = s.doctor_id
     WHERE p.id = a_patient;
END
$fn$
"""

_FACTS = """
CREATE OR REPLACE FUNCTION fairslot_quota_facts(
    a_patient integer, a_now timestamptz, a_served_since timestamptz,
    a_offences_since timestamptz, a_session integer, a_account integer, a_phone varchar)
RETURNS TABLE (kind text, key text, at timestamptz)
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY
    SELECT 'active', NULL::text, s.ends_at
      FROM bookings b JOIN sessions s ON s.id = b.session_id
     WHERE b.patient_id = a_patient AND b.status IN ('held', 'paid') AND s.ends_at > a_now
    UNION ALL
    SELECT 'visit', d.department_id::text, s.starts_at
      FROM bookings b JOIN sessions s ON s.id = b.session_id JOIN doctors d ON d.id = s.doctor_id
     WHERE b.patient_id = a_patient AND b.status IN ('checked_in', 'held', 'paid')
    UNION ALL
    SELECT 'entry', r.department_id::text,
           (SELECT min(s.starts_at) FROM sessions s
              JOIN round_sessions rs ON rs.session_id = s.id WHERE rs.round_id = e.round_id)
      FROM entries e JOIN release_rounds r ON r.id = e.round_id
     WHERE e.patient_id = a_patient AND e.withdrawn = false AND r.status = 'open'
    UNION ALL
    SELECT 'no_show', NULL, b.closed_at FROM bookings b
     WHERE b.patient_id = a_patient AND b.status = 'no_show'
       AND b.closed_at >= a_offences_since
    UNION ALL
    SELECT 'late', NULL, b.cancelled_at FROM bookings b
     WHERE b.patient_id = a_patient AND b.late_cancel = true
       AND b.cancelled_at >= a_offences_since
    UNION ALL
    SELECT 'lapsed', NULL, b.closed_at FROM bookings b
     WHERE b.patient_id = a_patient AND b.status = 'expired'
       AND b.closed_at >= a_offences_since;
    IF a_session IS NOT NULL THEN
        RETURN QUERY
        SELECT 'in_session', NULL::text, NULL::timestamptz FROM bookings b
         WHERE b.patient_id = a_patient AND b.session_id = a_session
           AND b.status IN ('checked_in', 'held', 'no_show', 'paid');
    END IF;
    IF a_account IS NOT NULL THEN
        RETURN QUERY
        SELECT 'account', b.patient_id::text, b.created_at FROM bookings b
         WHERE b.account_id = a_account AND b.created_at >= a_served_since
        UNION ALL
        SELECT 'account', e.patient_id::text, e.created_at FROM entries e
         WHERE e.account_id = a_account AND e.created_at >= a_served_since
        UNION ALL
        SELECT 'account_lapsed', NULL, b.closed_at FROM bookings b
         WHERE b.account_id = a_account AND b.status = 'expired'
           AND b.closed_at >= a_offences_since;
    END IF;
    IF a_phone IS NOT NULL THEN
        RETURN QUERY
        WITH phone_accounts AS (
            SELECT id FROM accounts WHERE phone_index = a_phone
            UNION SELECT account_id FROM verification_codes
                   WHERE phone_index = a_phone AND purpose = 'phone'
                     AND used_at >= a_served_since)
        SELECT 'phone', b.patient_id::text, b.created_at FROM bookings b
         WHERE b.account_id IN (SELECT id FROM phone_accounts)
           AND b.created_at >= a_served_since
        UNION ALL
        SELECT 'phone', e.patient_id::text, e.created_at FROM entries e
         WHERE e.account_id IN (SELECT id FROM phone_accounts)
           AND e.created_at >= a_served_since;
    END IF;
END
$fn$
"""

_HOLD = """
CREATE OR REPLACE FUNCTION fairslot_hold_booking(
    a_session integer, a_now timestamptz, a_leftovers_only boolean,
    a_patient integer, a_account integer, a_fee_cents integer, a_pay_by timestamptz,
    a_channel varchar, a_status varchar, a_review varchar,
    a_ip varchar, a_device_id varchar, a_detail jsonb)
RETURNS TABLE (slot_id integer, slot_number integer, booking_id integer,
               freed_at timestamptz)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_slot integer;
    v_number integer;
    v_freed timestamptz;
    v_booking integer;
    v_detail jsonb;
BEGIN
    -- The session's lowest-numbered free slot (under the draw policy only leftovers,
    -- re-opened at their open_from), as ScheduleRepository.claim_free_slot takes it.
    IF a_leftovers_only THEN
        UPDATE slots SET taken = true, open_from = NULL
         WHERE id = (SELECT c.id FROM slots c
                      WHERE c.session_id = a_session AND c.taken = false
                        AND c.open_from <= a_now
                      ORDER BY c.number LIMIT 1 FOR UPDATE SKIP LOCKED)
           AND taken = false
        RETURNING id, number, slots.freed_at INTO v_slot, v_number, v_freed;
    ELSE
        UPDATE slots SET taken = true, open_from = NULL
         WHERE id = (SELECT c.id FROM slots c
                      WHERE c.session_id = a_session AND c.taken = false
                        AND (c.open_from IS NULL OR c.open_from <= a_now)
                      ORDER BY c.number LIMIT 1 FOR UPDATE SKIP LOCKED)
           AND taken = false
        RETURNING id, number, slots.freed_at INTO v_slot, v_number, v_freed;
    END IF;
    IF v_slot IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO bookings (session_id, slot_id, patient_id, account_id, fee_cents, created_at,
                          pay_by, channel, status, late_cancel, review)
    VALUES (a_session, v_slot, a_patient, a_account, a_fee_cents, a_now, a_pay_by,
            a_channel, a_status, false, a_review)
    RETURNING id INTO v_booking;
    v_detail := a_detail || jsonb_build_object('slot', v_slot);
    IF v_freed IS NOT NULL THEN
        -- As the services write a time in a detail (ISO 8601, UTC).
        v_detail := v_detail || jsonb_build_object('freed_at', to_char(
            v_freed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
    END IF;
    INSERT INTO events (at, kind, account_id, patient_id, session_id, booking_id, ip,
                        device_id, detail)
    VALUES (a_now, 'booking.created', a_account, a_patient, a_session, v_booking, a_ip,
            a_device_id, v_detail::json);
    RETURN QUERY SELECT v_slot, v_number, v_booking, v_freed;
END
$fn$
"""

_FUNCTIONS = ("fairslot_booking_target(bigint[], integer, integer, integer)",
              "fairslot_quota_facts(integer, timestamptz, timestamptz, timestamptz, integer, "
              "integer, varchar)",
              "fairslot_hold_booking(integer, timestamptz, boolean, integer, integer, "
              "integer, timestamptz, varchar, varchar, varchar, varchar, varchar, jsonb)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in (_TARGET, _FACTS, _HOLD):
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
