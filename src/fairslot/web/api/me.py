"""A patient's own things: registration and log-in, family patients, bookings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.errors import Conflict
from fairslot.domain.identity import mask_phone
from fairslot.guard.fastapi import guarded
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import POW_HEADER, TOKEN_HEADER
from fairslot.services import accounts, booking, catalog, shared_list
from fairslot.web.deps import (
    CallerDep,
    DepsDep,
    GuardedScope,
    GuardedUse,
    UowDep,
    action_token,
    bearer_token,
    booking_screen_shown,
    context,
    guarded_use,
    screen,
)
from fairslot.web.login import guarded_log_in
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import (
    AccountOut,
    AppealIn,
    AppealOut,
    BookingIn,
    BookingOut,
    BookingScreen,
    CodeIn,
    CodeSentOut,
    Credentials,
    LanguageIn,
    PatientIn,
    PatientOut,
    PaymentIn,
    PaymentScreen,
    PhoneIn,
    RegisterIn,
    SessionOut,
    SharedEntryOut,
    TokenOut,
)

__all__ = ["router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
BOOK_ACTION = "book"
PAY_ACTION = "pay"
CANCEL_ACTION = "cancel"


@router.post("/auth/register", status_code=201, tags=["account"],
             dependencies=[Depends(guarded(RouteGroup.REGISTRATION, auto=True))])
def register(body: RegisterIn, request: Request, uow: UowDep, deps: DepsDep) -> AccountOut:
    account = accounts.register(uow, deps, body.username, body.password, body.phone,
                                context(request), language=body.language)
    return AccountOut.of(account)


@router.post("/auth/login", tags=["account"])
def log_in(body: Credentials, request: Request, uow: UowDep, deps: DepsDep) -> TokenOut:
    """Log in. Repeated failures ask for a proof of work (``challenge_required``: solve
    the problem body's challenge and send it in ``X-Fairslot-Pow``), then a pause."""
    token, account = guarded_log_in(request, uow, deps, body.username, body.password,
                                    request.headers.get(POW_HEADER))
    return TokenOut(token=token, role=account.role)


@router.post("/auth/logout", status_code=204, tags=["account"])
def log_out(request: Request, caller: CallerDep, uow: UowDep,
            deps: DepsDep) -> Response:
    caller.account()
    token = bearer_token(request)
    if token:
        accounts.log_out(uow, deps, token)
    return Response(status_code=204)


@router.get("/me", tags=["account"])
def me(caller: CallerDep) -> AccountOut:
    account = caller.account()
    return AccountOut.of(account)


@router.post("/me/phone/code", tags=["account"])
def phone_code(caller: CallerDep, uow: UowDep, deps: DepsDep) -> CodeSentOut:
    """Send (again) the code that verifies the account's phone. Limited per account and
    per phone number (``codes_rate_limited``)."""
    account = caller.account(Role.PATIENT)
    phone, expires = accounts.request_phone_code(uow, deps, account)
    return CodeSentOut(sent_to=mask_phone(phone), expires_at=expires)


@router.post("/me/phone/verify", tags=["account"])
def verify_phone(body: CodeIn, request: Request, caller: CallerDep, uow: UowDep,
                 deps: DepsDep) -> AccountOut:
    """Type back the code sent to the phone. Until then the account cannot book, enter a
    draw or add patients (``phone_not_verified``). A code lives minutes and allows a few
    wrong tries (``code_wrong``, then ``code_expired``)."""
    account = caller.account(Role.PATIENT)
    return AccountOut.of(accounts.verify_phone(uow, deps, account, body.code,
                                               context(request)))


@router.post("/me/phone", tags=["account"])
def change_phone(body: PhoneIn, caller: CallerDep, uow: UowDep, deps: DepsDep) -> CodeSentOut:
    """Move the account to another phone: a code goes to the new number, which becomes the
    account's once verified (``POST /me/phone/verify``)."""
    account = caller.account(Role.PATIENT)
    phone, expires = accounts.change_phone(uow, deps, account, body.phone)
    return CodeSentOut(sent_to=mask_phone(phone), expires_at=expires)


@router.put("/me/language", tags=["account"])
def set_language(body: LanguageIn, caller: CallerDep, uow: UowDep, deps: DepsDep) -> AccountOut:
    """The language of the account's messages and notifications: ``zh-CN`` or ``en``."""
    account = caller.account()
    return AccountOut.of(accounts.set_language(uow, deps, account, body.language))


@router.get("/me/patients", tags=["patients"])
def my_patients(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[PatientOut]:
    account = caller.account(Role.PATIENT)
    return [PatientOut.of(p) for p in accounts.list_patients(uow, deps, account)]


@router.post("/me/patients", status_code=201, tags=["patients"])
def add_patient(body: PatientIn, request: Request, caller: CallerDep, uow: UowDep,
                deps: DepsDep) -> PatientOut:
    """Add a family member after the real-name check (counted like a log-in:
    ``identity_checks_limited``). When another account's phone speaks for that identity, a
    code goes there and the answer is ``consent_required``: send it again with
    ``consent_code``."""
    account = caller.account(Role.PATIENT)
    patient = accounts.add_patient(uow, deps, account, body.id_number, body.name, body.phone,
                                   context(request), consent_code=body.consent_code)
    return PatientOut.of(patient)


@router.delete("/me/patients/{patient_id}", status_code=204, tags=["patients"])
def remove_patient(patient_id: IdPath, request: Request, caller: CallerDep,
                   uow: UowDep, deps: DepsDep) -> Response:
    account = caller.account(Role.PATIENT)
    accounts.remove_patient(uow, deps, account, patient_id, context(request))
    return Response(status_code=204)


@router.get("/me/shared-list", tags=["patients"])
def my_shared_list(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[SharedEntryOut]:
    """Other hospitals' entries on the consortium's shared list that this hospital applies
    to the account's people or phone: kind, issuer, expiry, what happens here, and the
    appeals sent. The issuer's evidence is never shown (it never leaves the issuer)."""
    account = caller.account(Role.PATIENT)
    return [SharedEntryOut.of(a) for a in shared_list.affecting(uow, deps, account)]


@router.post("/me/shared-list/appeals", status_code=201, tags=["patients"])
def appeal_shared_entry(body: AppealIn, request: Request, caller: CallerDep, uow: UowDep,
                        deps: DepsDep) -> AppealOut:
    """Appeal an entry that affects one of the account's people. The message goes to the
    hospital that made the entry (with the entry's pseudonym, nothing else about the
    patient); ``pending`` means that hospital was unreachable and it is retried."""
    account = caller.account(Role.PATIENT)
    return AppealOut.of(shared_list.appeal(uow, deps, account, body.entry, body.message,
                                           context(request)))


@router.get("/me/bookings", tags=["bookings"])
def my_bookings(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[BookingOut]:
    account = caller.account()
    return [BookingOut.of(v) for v in booking.my_bookings(uow, deps, account)]


@router.get("/sessions/{session_id}/booking-screen", tags=["bookings"])
async def booking_screen(session_id: IdPath, request: Request) -> BookingScreen:
    """The confirmation screen before booking: the session, the patients who may be booked,
    and the single-use action token that ``POST /bookings`` needs (usable once, not sooner
    than the guard's minimum age, for this account and this session only)."""
    # The screen's reads in one thread hop (the account, the session at a glance, the
    # account's patients), then the guard's screens limits on the event loop: a screen
    # that issues no token (the session not bookable now) counts nothing.
    async with GuardedScope(request, RouteGroup.SCREENS) as use:

        def read() -> tuple[Account, catalog.SessionView, Sequence[Patient]]:
            account = use.account(Role.PATIENT)
            view = booking.bookable_view(use.uow, use.deps, session_id)
            return account, view, accounts.list_patients(use.uow, use.deps, account)

        account, view, patients = await use.run(read)
        await use.check()
        booking_screen_shown(request, account, view.session)
        return BookingScreen(session=SessionOut.of(view),
                             patients=[PatientOut.of(p) for p in patients],
                             action_token=action_token(request, account, BOOK_ACTION,
                                                       session_id),
                             token_header=TOKEN_HEADER)


@router.post("/bookings", status_code=201, tags=["bookings"])
async def book(body: BookingIn, request: Request) -> BookingOut:
    """Book a slot. Send the booking screen's action token in ``X-Fairslot-Action-Token``;
    when the guard asks for proof of work (``challenge_required``), solve the challenge in
    the problem body and send it in ``X-Fairslot-Pow``."""
    # The request's scope opened here rather than as a dependency: FastAPI's generator
    # dependency costs more per request than the scope itself (the booking is the hot path).
    async with GuardedScope(request, RouteGroup.BOOKING, need_token=BOOK_ACTION,
                            exclusive=True) as use:
        await use.check(patient_id=str(body.patient_id), target=str(body.session_id))

        def use_case() -> booking.BookingView:
            # The log-in token's look-up without a BEGIN of its own: the booking opens its
            # transaction with its first locked statement (PostgreSQL).
            use.uow.autocommit()
            return booking.book(use.uow, use.deps, use.account(Role.PATIENT),
                                body.patient_id, body.session_id, use.context())

        view = await use.run(use_case)
    return BookingOut.of(view)


@router.get("/bookings/{booking_id}", tags=["bookings"])
def get_booking(booking_id: IdPath, caller: CallerDep, uow: UowDep,
                deps: DepsDep) -> BookingOut:
    account = caller.account()
    return BookingOut.of(booking.get_booking(uow, deps, account, booking_id))


@router.get("/bookings/{booking_id}/payment-screen", tags=["bookings"])
def payment_screen(booking_id: IdPath, caller: CallerDep, request: Request,
                   uow: UowDep, deps: DepsDep) -> PaymentScreen:
    """The payment screen: what is owed, until when, and the action tokens for paying and
    for cancelling."""
    account = caller.account(Role.PATIENT)
    view = booking.get_booking(uow, deps, account, booking_id)
    may_pay, may_cancel = booking.payment_actions(deps, view)
    if not (may_pay or may_cancel):
        raise Conflict("this booking can no longer be paid or cancelled online",
                       code="booking_settled")
    screen(request, account)
    return PaymentScreen(
        booking=BookingOut.of(view),
        action_token=action_token(request, account, PAY_ACTION, booking_id)
        if may_pay else None,
        cancel_token=action_token(request, account, CANCEL_ACTION, booking_id)
        if may_cancel else None,
        token_header=TOKEN_HEADER)


@router.post("/bookings/{booking_id}/pay", tags=["bookings"])
async def pay(booking_id: IdPath, body: PaymentIn,
              use: Annotated[GuardedUse, Depends(guarded_use(
                  RouteGroup.PAYMENT, need_token=PAY_ACTION, exclusive=True))]) -> BookingOut:
    """Pay a held booking with the payment screen's action token."""
    payer = use.deps.payments.payer_of(body.payer_account)
    await use.check(payer=payer, target=str(booking_id))

    def use_case() -> booking.BookingView:
        return booking.pay(use.uow, use.deps, use.account(Role.PATIENT), booking_id,
                           body.payer_account, use.context())

    return BookingOut.of(await use.run(use_case))


@router.post("/bookings/{booking_id}/cancel", tags=["bookings"])
async def cancel(booking_id: IdPath,
                 use: Annotated[GuardedUse, Depends(guarded_use(
                     RouteGroup.BOOKING, need_token=CANCEL_ACTION))]) -> BookingOut:
    """Cancel a booking with the payment screen's cancel token (``cancel_token``)."""
    await use.check(target=str(booking_id))

    def use_case() -> booking.BookingView:
        account = use.account(Role.PATIENT, Role.REGISTRATION)
        return booking.cancel(use.uow, use.deps, account, booking_id,
                              context(use.request))

    return BookingOut.of(await use.run(use_case))
