"""Use cases: accounts, sign-in, tokens, and who the caller is (:class:`engine.access.Viewer`).

The sign-in code goes out at once on the first SMS channel of ``config/notifications.yaml`` that can
reach the person (``sms_*`` channels), else on the console channel (the embedded default prints it).
It does not go through the outbox: a code is a secret for five minutes, and the outbox keeps what it
sends for everyone who may read notices; the audit records that a code was sent, never the code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import access, accounts
from engine.errors import ConfigError, NotFound
from engine.scope import current
from engine.text import clean_text
from gridflow import present
from gridflow.app.base import Base

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.store.models import ApiToken

CODE_TEXT = "【胜利乡网格】您的登录验证码为 {code}，5分钟内有效。请勿告诉他人。"


def token_dict(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "person": row.person_id,
        "kind": row.kind,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": present.iso(row.created_at),
        "expires_at": present.iso(row.expires_at),
        "revoked_at": present.iso(row.revoked_at),
        "last_used_at": present.iso(row.last_used_at),
    }


def _issued(issued: accounts.IssuedToken) -> dict[str, Any]:
    return {
        "id": issued.id,
        "person": issued.person_id,
        "kind": issued.kind,
        "name": issued.name,
        "prefix": issued.prefix,
        "token": issued.token,
        "created_at": present.iso(issued.created_at),
        "expires_at": present.iso(issued.expires_at),
    }


class AccountUseCases(Base):
    """Passwords, one-time codes, sessions and tokens; the viewer behind a token."""

    def create_token(self, person_id: str, name: str, expires: timedelta | None = None) -> dict[str, Any]:
        """A token for machines and scripts; the dict's ``token`` is the only time it is shown."""
        name = clean_text(name, "token name", 100)  # api_token.name varchar(100)
        now = self.clock()
        with self.transaction() as session:
            return _issued(accounts.issue(session, person_id, "token", name, now, now + expires if expires else None))

    def list_tokens(self, person_id: str | None = None, with_sessions: bool = False) -> list[dict[str, Any]]:
        """Tokens (never their secret), oldest first."""
        with self.transaction(write=False) as session:
            return [token_dict(t) for t in accounts.tokens(session, person_id, with_sessions)]

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        """Revoke a token or session at once (safe to repeat)."""
        with self.transaction() as session:
            return token_dict(accounts.revoke(session, token_id, self.clock()))

    def set_password(self, person_id: str, password: str) -> None:
        """Set (or reset) a person's password, stored as its Argon2 hash."""
        with self.transaction() as session:
            accounts.set_password(session, person_id, password, self.clock())

    def sign_in_password(self, phone: str, password: str, address: str) -> dict[str, Any]:
        """A session for a phone number and its password."""
        return self._sign_in(lambda s, at: accounts.sign_in_password(s, phone, password, address, at))

    def sign_in_code(self, phone: str, code: str, address: str) -> dict[str, Any]:
        """A session for a phone number and the code just sent to it."""
        return self._sign_in(lambda s, at: accounts.sign_in_code(s, phone, code, address, at))

    def _sign_in(self, attempt: Any) -> dict[str, Any]:
        return _issued(self._audited(attempt))

    def _audited(self, attempt: Any) -> Any:
        """Run ``attempt(session, at)``; a refusal still commits what it wrote (the audit, a code's attempt
        count) before it is raised: the failures are what the rate limits count."""
        at = self.clock()
        refused: accounts.NotSignedIn | accounts.TooManyAttempts | None = None
        with self.transaction() as session:
            try:
                return attempt(session, at)
            except (accounts.NotSignedIn, accounts.TooManyAttempts) as exc:
                refused = exc
        assert refused is not None
        raise refused

    def request_code(self, phone: str, address: str) -> dict[str, Any]:
        """Send a one-time sign-in code to ``phone`` if it belongs to an active person; the answer is the
        same either way."""
        found = self._audited(lambda s, at: _with_recipient(accounts.send_code(s, phone, address, at)))
        recipient = found[0] if found else None
        if found is not None and recipient is not None:
            self._send_code(recipient, found[1])
        return {"sent_to": phone.strip(), "expires_in_s": int(accounts.CODE_LIFETIME.total_seconds())}

    def _send_code(self, recipient: Any, code: str) -> None:
        from notifications.channels.base import Message

        config = self.notice_config  # type: ignore[attr-defined]
        names = [n for n in config.order if n.startswith("sms")] + [n for n in config.order if n == "console"]
        for name in names:
            channel = config.channels[name]
            if channel.address(recipient) is None:
                continue
            text = CODE_TEXT.format(code=code)
            message = Message(
                idempotency_key=f"sign-in:{recipient.id}:{datetime.now().timestamp():.0f}",
                event="sign_in_code",
                recipient=recipient,
                subject="登录验证码",
                text=text,
                params={"code": code},
                urgent=True,
            )
            if channel.send(message).ok:
                return
        raise ConfigError(
            "no SMS channel could send the sign-in code; configure an sms_* channel in config/notifications.yaml "
            "(or sign in with a password)"
        )

    def viewer_for_token(self, token: str, address: str) -> access.Viewer:
        """The person behind a bearer token, as access sees them; :class:`accounts.NotSignedIn` if none."""
        return self._audited(lambda s, at: self._viewer(s, accounts.authenticate(s, token, address, at).person_id))

    def sign_out(self, token: str, address: str) -> None:
        """End the session of ``token`` (a browser's sign-out); an unknown or ended one is already out."""

        def out(session: Session, at: datetime) -> None:
            try:
                row = accounts.authenticate(session, token, address, at)
            except accounts.NotSignedIn:
                return
            accounts.revoke(session, row.id, at, by="sign-out")

        self._audited(out)

    def viewer(self, person_id: str) -> access.Viewer:
        """The viewer for a person id (the CLI acts as the person given with --actor)."""
        with self.transaction(write=False) as session:
            return self._viewer(session, person_id)

    def _viewer(self, session: Session, person_id: str) -> access.Viewer:

        org = current(session)
        found = access.viewer_of(org, person_id)
        if found is None:
            raise NotFound(f"no active person {person_id!r}; see `gridflow org show`")
        return found


def _with_recipient(found: tuple[Any, str] | None) -> tuple[Any, str] | None:
    return (_recipient(found[0]), found[1]) if found else None


def _recipient(person: Any) -> Any:
    from notifications.channels.base import Recipient

    return Recipient(person.id, person.name, person.phone, person.email, person.wecom)
