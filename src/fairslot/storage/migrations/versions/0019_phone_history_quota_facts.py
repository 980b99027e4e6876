"""The booking's quota facts name every phone the account's bookings count toward, each with
its served patients: the one it is on now and those it verified within the quota window
and moved off. A booking then checks the quota of each and holds the lock of each (see
``rules.unlocked_phones``); ``fairslot_quota_facts`` is replaced (same signature, same
result columns) to answer the rows ``QuotaRepository.facts`` now reads.

Revision ID: 0019_phone_history_quota_facts
Revises: 0018_fastbook_booking_functions
Create Date: 2026-11-28 14:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0019_phone_history_quota_facts"
down_revision = "0018_fastbook_booking_functions"
branch_labels = None
depends_on = None

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
        -- The phones the account's bookings count toward (the one it is on, those it
        -- verified within the window), each with its accounts by the same rule; a phone's
        -- served patients keyed "<phone index>/<patient>".
        RETURN QUERY
        WITH phones (idx) AS (
            SELECT a_phone
            UNION SELECT v.phone_index FROM verification_codes v
                   WHERE v.account_id = a_account AND v.purpose = 'phone'
                     AND v.used_at >= a_served_since),
        phone_accounts (idx, acct) AS (
            SELECT p.idx, a.id FROM phones p JOIN accounts a ON a.phone_index = p.idx
            UNION SELECT p.idx, v.account_id FROM phones p
                    JOIN verification_codes v ON v.phone_index = p.idx
                   WHERE v.purpose = 'phone' AND v.used_at >= a_served_since)
        SELECT 'phone_of_account'::text, p.idx::text, NULL::timestamptz FROM phones p
        UNION ALL
        SELECT 'phone', pa.idx || '/' || b.patient_id::text, b.created_at
          FROM phone_accounts pa JOIN bookings b ON b.account_id = pa.acct
         WHERE b.created_at >= a_served_since
        UNION ALL
        SELECT 'phone', pa.idx || '/' || e.patient_id::text, e.created_at
          FROM phone_accounts pa JOIN entries e ON e.account_id = pa.acct
         WHERE e.created_at >= a_served_since;
    END IF;
END
$fn$
"""


# 0018's function, as it was, for the downgrade.
_FACTS_0018 = """
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



def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FACTS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FACTS_0018)
