"""Accounts: passwords (Argon2), bearer tokens and sessions, one-time SMS codes, rate limits, the audit.

Nothing secret is stored: a password as its Argon2 hash (argon2-cffi's defaults, RFC 9106's second
recommended profile), a token or a code as its SHA-256 (they are random, so a fast hash is enough and a
lookup by hash is one index probe). A token is shown once, when it is made. Every sign-in, failure,
code sent, token made, revoked or used writes an :class:`AuthEvent`; a token's use is written at most
once a minute per token and address (:data:`USE_AUDIT_EVERY`), so that reading a list of cases does not
write a row per request, and ``last_used_at`` says when it was last used.

Rate limits count the audit itself: :data:`FAILURES_PER_PHONE` failed sign-ins for one phone, or
:data:`FAILURES_PER_ADDRESS` from one address, within :data:`FAILURE_WINDOW`, and the next attempt is
refused before any password is checked; a code is sent at most once per :data:`CODE_INTERVAL` and
:data:`CODES_PER_HOUR` times an hour per phone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import scope
from engine.archive.mask import mask_phone
from engine.errors import CommandRejected, InputError, NotFound
from engine.store.models import ApiToken, AuthEvent, Credential, Person, SignInCode

TOKEN_PREFIX = "gft_"
SESSION_PREFIX = "gfs_"
SESSION_LIFETIME = timedelta(hours=12)
CODE_LIFETIME = timedelta(minutes=5)
CODE_INTERVAL = timedelta(seconds=60)
CODES_PER_HOUR = 5
CODE_ATTEMPTS = 5
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_PHONE = 5
FAILURES_PER_ADDRESS = 20
USE_AUDIT_EVERY = timedelta(minutes=1)
MIN_PASSWORD = 10


class TooManyAttempts(CommandRejected):
    """Sign-in refused for a while: too many failures for this phone or from this address."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotSignedIn(CommandRejected):
    """The credentials are wrong, expired, revoked or belong to a deactivated person."""


@dataclass(frozen=True)
class IssuedToken:
    """A token as it is made: ``token`` is shown this once and never again."""

    id: int
    person_id: str
    kind: str
    name: str
    prefix: str
    token: str
    created_at: datetime
    expires_at: datetime | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


def audit(
    session: Session, at: datetime, kind: str, subject: str, address: str, person_id: str | None = None,
    detail: str | None = None,
) -> None:  # fmt: skip
    session.add(
        AuthEvent(at=at, kind=kind, subject=subject[:64], address=address[:64], person_id=person_id, detail=detail)
    )


def person_by_phone(session: Session, phone: str) -> Person | None:
    return session.scalar(select(Person).where(Person.phone == phone.strip()))


def _failures(session: Session, column: object, value: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuthEvent)
            .where(column == value, AuthEvent.at >= since, AuthEvent.kind == "sign_in.failed")  # type: ignore[operator]
        )
        or 0
    )


def check_rate(session: Session, phone: str, address: str, at: datetime) -> None:
    """Refuse a sign-in attempt when this phone or this address failed too often lately."""
    since = at - FAILURE_WINDOW
    subject = mask_phone(phone) or phone
    minutes = int(FAILURE_WINDOW.total_seconds() // 60)
    if _failures(session, AuthEvent.subject, subject, since) >= FAILURES_PER_PHONE:
        audit(session, at, "sign_in.refused", subject, address, detail="too many failures for this phone")
        raise TooManyAttempts(
            f"too many failed sign-ins for {subject} in the last {minutes} minutes; wait, or ask the centre "
            "to reset the password",
            int(FAILURE_WINDOW.total_seconds()),
        )
    if _failures(session, AuthEvent.address, address, since) >= FAILURES_PER_ADDRESS:
        audit(session, at, "sign_in.refused", subject, address, detail="too many failures from this address")
        raise TooManyAttempts(
            f"too many failed sign-ins from this address in the last {minutes} minutes; wait and try again",
            int(FAILURE_WINDOW.total_seconds()),
        )


def set_password(session: Session, person_id: str, password: str, at: datetime) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters; choose a longer one")
    if session.get(Person, person_id) is None:
        raise NotFound(f"no person {person_id!r}; see `gridflow org show`")
    hashed = _hasher().hash(password)
    found = session.get(Credential, person_id)
    if found is None:
        session.add(Credential(person_id=person_id, password_hash=hashed, updated_at=at))
    else:
        found.password_hash, found.updated_at = hashed, at
    audit(session, at, "password.set", person_id, "cli", person_id)


def _failed(session: Session, at: datetime, subject: str, address: str, person_id: str | None, why: str) -> None:
    audit(session, at, "sign_in.failed", subject, address, person_id, why)


def sign_in_password(session: Session, phone: str, password: str, address: str, at: datetime) -> IssuedToken:
    """A session token for the right phone and password; the same refusal for every wrong pair."""
    check_rate(session, phone, address, at)
    subject = mask_phone(phone) or phone
    person = person_by_phone(session, phone)
    credential = session.get(Credential, person.id) if person is not None else None
    ok = False
    if credential is not None:
        from argon2.exceptions import Argon2Error

        try:
            ok = _hasher().verify(credential.password_hash, password)
        except (Argon2Error, ValueError):
            ok = False
    else:
        _hasher().hash(password)  # the same work either way: the answer's time tells nothing
    if not ok or person is None or not person.active:
        _failed(session, at, subject, address, person.id if person else None, "wrong phone or password")
        raise NotSignedIn("wrong phone number or password (or the account is not active)")
    if _hasher().check_needs_rehash(credential.password_hash):  # type: ignore[union-attr]
        credential.password_hash = _hasher().hash(password)  # type: ignore[union-attr]
    audit(session, at, "sign_in.ok", subject, address, person.id, "password")
    return issue(session, person.id, "session", "sign-in (password)", at, at + SESSION_LIFETIME)


def send_code(session: Session, phone: str, address: str, at: datetime) -> tuple[Person, str] | None:
    """A fresh six-digit code for an active person with this phone, or None (the caller answers the
    same either way, so that nobody learns which phones have accounts). Returns the code to send."""
    subject = mask_phone(phone) or phone
    check_rate(session, phone, address, at)
    person = person_by_phone(session, phone)
    if person is None or not person.active:
        audit(session, at, "code.unknown_phone", subject, address)
        return None
    last = session.scalar(select(func.max(SignInCode.created_at)).where(SignInCode.person_id == person.id))
    sent_lately = (
        session.scalar(
            select(func.count())
            .select_from(SignInCode)
            .where(SignInCode.person_id == person.id, SignInCode.created_at >= at - timedelta(hours=1))
        )
        or 0
    )
    if (last is not None and at - last < CODE_INTERVAL) or sent_lately >= CODES_PER_HOUR:
        wait = int((CODE_INTERVAL - (at - last)).total_seconds()) if last and at - last < CODE_INTERVAL else 3600
        audit(session, at, "code.refused", subject, address, person.id, "sent too often")
        raise TooManyAttempts(f"a code was sent to {subject} a moment ago; wait {wait} s before asking again", wait)
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        SignInCode(
            person_id=person.id, code_hash=digest(f"{person.id}:{code}"), created_at=at, expires_at=at + CODE_LIFETIME
        )
    )
    audit(session, at, "code.sent", subject, address, person.id)
    return person, code


def sign_in_code(session: Session, phone: str, code: str, address: str, at: datetime) -> IssuedToken:
    """A session token for the newest unused, unexpired code sent to this phone."""
    check_rate(session, phone, address, at)
    subject = mask_phone(phone) or phone
    person = person_by_phone(session, phone)
    sent = (
        session.scalar(
            select(SignInCode)
            .where(SignInCode.person_id == person.id, SignInCode.used_at.is_(None))
            .order_by(SignInCode.created_at.desc())
            .limit(1)
        )
        if person is not None
        else None
    )
    fresh = sent is not None and sent.expires_at > at and sent.attempts < CODE_ATTEMPTS
    if sent is not None:
        sent.attempts += 1
    good = fresh and hmac.compare_digest(sent.code_hash, digest(f"{person.id}:{code.strip()}"))  # type: ignore[union-attr]
    if not good or person is None or not person.active:
        _failed(session, at, subject, address, person.id if person else None, "wrong or expired code")
        raise NotSignedIn("wrong or expired code; ask for a new one")
    sent.used_at = at  # type: ignore[union-attr]
    audit(session, at, "sign_in.ok", subject, address, person.id, "sms code")
    return issue(session, person.id, "session", "sign-in (sms code)", at, at + SESSION_LIFETIME)


def issue(
    session: Session, person_id: str, kind: str, name: str, at: datetime, expires_at: datetime | None
) -> IssuedToken:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person {person_id!r}; see `gridflow org show`")
    if not person.active:
        raise CommandRejected(f"{person_id} is not active in the org chart; a token needs an active person")
    if not name.strip():
        raise InputError("give the token a --name that says what it is for, e.g. 'county-12345 bridge'")
    plain = (TOKEN_PREFIX if kind == "token" else SESSION_PREFIX) + secrets.token_urlsafe(32)
    row = ApiToken(
        person_id=person_id,
        kind=kind,
        name=name.strip()[:100],
        prefix=plain[:12],
        token_hash=digest(plain),
        created_at=at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    if kind == "token":
        audit(session, at, "token.created", row.prefix, "cli", person_id, row.name)
    return IssuedToken(row.id, person_id, kind, row.name, row.prefix, plain, at, expires_at)


def authenticate(session: Session, plain: str, address: str, at: datetime) -> ApiToken:
    """The live token for ``plain`` (its person active), its use audited; else :class:`NotSignedIn`."""
    # one statement: the token, whether its person is active, and the org chart's token for scope
    found = session.execute(
        select(ApiToken, Person.active, scope.token_query())
        .outerjoin(Person, Person.id == ApiToken.person_id)
        .where(ApiToken.token_hash == digest(plain))
    ).first()
    row, active = (found[0], found[1]) if found is not None else (None, None)
    if found is not None:
        scope.prime(session, found[2])
    why = (
        "unknown token"
        if row is None
        else "revoked token"
        if row.revoked_at is not None
        else "expired token"
        if row.expires_at is not None and row.expires_at <= at
        else "the token's person is not active"
        if not active
        else None
    )
    if why is not None:
        subject = row.prefix if row is not None else plain[:12]
        audit(session, at, "token.refused", subject, address, row.person_id if row else None, why)
        raise NotSignedIn(f"not signed in: {why}; sign in again, or ask the centre for a new token")
    assert row is not None
    if row.last_used_at is None or at - row.last_used_at >= USE_AUDIT_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=at))
        audit(session, at, "token.used", row.prefix, address, row.person_id, row.kind)
    return row


def tokens(session: Session, person_id: str | None = None, with_sessions: bool = False) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if person_id is not None:
        query = query.where(ApiToken.person_id == person_id)
    if not with_sessions:
        query = query.where(ApiToken.kind == "token")
    return list(session.scalars(query))


def revoke(session: Session, token_id: int, at: datetime, by: str = "cli") -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token #{token_id}; see `gridflow token list`")
    if row.revoked_at is None:
        row.revoked_at = at
        audit(session, at, "token.revoked", row.prefix, by, row.person_id, row.name)
    return row
