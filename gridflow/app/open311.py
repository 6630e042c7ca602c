"""Use cases: the Open311 GeoReport v2 door for the county's platforms (12345 热线, 综治平台).

A client is a row of ``api_client``: its ``api_key`` is shown once when it is made and kept only as its
SHA-256 (:func:`engine.accounts.digest`); its requests are reported in the name of its person
(``ApiClient.person_id``) with ``source_channel`` ``open311`` and ``source_client`` the client's id, in the
report's own transaction. The engine checks that person's roles and grid scope as for anyone else.

Services are the categories of the default workflow; a service definition lists the workflow's report
fields as attributes, and ``grid`` (the grid cell, 单元格). The grid is ``attribute[grid]`` (an id or the
exact name of a grid cell), else the one grid cell whose exact name or id the ``address_string`` contains;
lat/long are kept but never placed in a grid (the org chart has no boundaries), so a request that names
no grid cell is refused with 400 rather than guessed.

What Open311 brings that the workflow has no field for (the address, lat/long, the photo's URL and the
resident's name, phone and e-mail) is kept in the case's description, under :data:`MARK`, one
``键：值`` line each. :func:`mask_text` masks the resident's contact for the roles that may not see
personal data (:attr:`engine.access.Viewer.sees_personal_data`); the Open311 answers never carry it.

A client reads only the requests it sent itself (still inside its person's grid scope).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from engine import access
from engine.accounts import audit, digest
from engine.archive.mask import mask_name, mask_phone
from engine.durations import parse_duration
from engine.errors import CommandRejected, ConfigError, InputError, NotFound, PermissionDenied
from engine.scope import current
from engine.sla import CaseFacts, calendar_for, limit_for
from engine.store import workflow_repo
from engine.store.models import ApiClient, Case, CaseEvent, IdempotencyRecord, Person, SlaClock
from engine.text import clean_text, text_problem
from gridflow import present
from gridflow.app.base import Base

CHANNEL = "open311"
KEY_PREFIX = "o311_"
MARK = "【平台来件】"
SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_SPAN = timedelta(days=90)  # the spec: a search spans at most 90 days, the most recent 90 by default
MAX_PAGE = 1000  # the spec: at most the first 1000 requests
CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

# The line of work (条线) of each category of the default workflow: the workflow has none of its own.
GROUPS = {
    "water_supply": "基础设施",
    "power_supply": "基础设施",
    "road_traffic": "基础设施",
    "geological_hazard": "安全应急",
    "safety_hazard": "安全应急",
    "dispute": "平安综治",
    "public_security": "平安综治",
    "sanitation": "人居环境",
    "social_assistance": "民生保障",
}
OTHER_GROUP = "其他事项"
KEYWORDS = {
    "water_supply": "供水,停水,漏水,水管,水压,饮水",
    "power_supply": "用电,停电,电线,电杆,电压",
    "road_traffic": "道路,交通,塌方,路面,桥梁,占道",
    "geological_hazard": "地质灾害,滑坡,崩塌,泥石流,裂缝,汛期",
    "dispute": "矛盾纠纷,邻里纠纷,土地纠纷,调解",
    "sanitation": "环境卫生,垃圾,污水,厕所,秸秆",
    "public_security": "社会治安,治安,盗窃,打架,可疑人员",
    "social_assistance": "社会救助,低保,困难群众,特困,临时救助",
    "safety_hazard": "安全隐患,消防,危房,燃气,隐患",
    "other": "其他",
}
# Block lines that hold the resident's contact (masked by role); the others are the place and the photo.
CONTACT_LINES = ("反映人", "电话", "邮箱")
DATATYPES = {"text": "string", "enum": "singlevaluelist", "integer": "number", "duration": "string", "person": "string"}
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,19}")
CJK = re.compile(r"[\u3400-\u9fff]")
WORK_UNITS = {"d": "个工作日", "h": "个工作小时", "m": "分钟"}  # business time on a working calendar
WALL_UNITS = {"d": "天", "h": "小时", "m": "分钟"}  # a calendar open around the clock


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    person_id: str


@dataclass(frozen=True)
class Open311Report:
    """A POST as the spec writes it, its fields split out by the face (plain strings, as sent)."""

    service_code: str | None = None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str | None = None
    media_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Open311Query:
    """GET requests: the spec's filters and the ``page``/``page_size`` extension."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()
    page: int = 1
    page_size: int = MAX_PAGE


def client_dict(row: ApiClient) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "person": row.person_id,
        "active": row.active,
        "created_at": present.iso(row.created_at),
    }


# -- the description block: what Open311 brings beyond the workflow's fields ---------------------------------


def compose(resident: str, lines: list[tuple[str, str]]) -> str:
    """The case's description: the resident's words, then :data:`MARK` and one ``键：值`` line each."""
    block = "\n".join(f"{key}：{_one_line(value)}" for key, value in lines if value)
    text = resident.replace(MARK, "[平台来件]").strip()
    return f"{text}\n\n{MARK}\n{block}" if text else f"{MARK}\n{block}"


def split(text: str | None) -> tuple[str, dict[str, str]]:
    """The resident's words and the block's lines (the last block: a resident cannot forge one after it)."""
    if not text:
        return "", {}
    head, mark, tail = text.rpartition(MARK)
    if not mark:
        return text, {}
    lines = {}
    for line in tail.strip().splitlines():
        key, sep, value = line.partition("：")
        if sep:
            lines[key.strip()] = value.strip()
    return head.rstrip(), lines


def mask_text(text: str | None) -> str | None:
    """A description of an Open311 case as a role that may not see personal data reads it: the resident's
    name, phone and e-mail masked, and mobile numbers and e-mail addresses in their words too."""
    if not text:
        return text
    resident, lines = split(text)
    words = EMAIL.sub(lambda m: "***@" + m.group(1), MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), resident))
    if not lines:
        return words
    masked = {
        key: (
            mask_name(value)
            if key == "反映人"
            else mask_phone(value)
            if key == "电话"
            else "***@" + value.rpartition("@")[2]
            if key == "邮箱"
            else value
        )
        for key, value in lines.items()
    }
    return compose(words, [(k, v or "") for k, v in masked.items()])


def _one_line(value: str) -> str:
    return " ".join(value.split())


# -- the use cases ---------------------------------------------------------------------------------------------


class Open311UseCases(Base):
    """Open311 clients (add, list, revoke) and the GeoReport v2 methods on their behalf."""

    # -- clients --

    def create_client(self, client_id: str, name: str, person_id: str) -> dict[str, Any]:
        """A client of the Open311 door acting as ``person_id``; the dict's ``api_key`` is shown only now."""
        if not CLIENT_ID.fullmatch(client_id):
            raise InputError(f"client id {client_id!r}: lower-case letters, digits, . _ - (e.g. county-12345)")
        name = clean_text(name, "--name", 100)
        if not name.strip():
            raise InputError("--name: say which platform it is, in at most 100 characters (e.g. 通江县12345热线)")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.transaction() as session:
            person = session.get(Person, person_id)
            if person is None or not person.active:
                raise NotFound(f"no active person {person_id!r}; see `gridflow org show`")
            if session.get(ApiClient, client_id) is not None:
                raise CommandRejected(f"client {client_id!r} exists; revoke it and add one with another id")
            row = ApiClient(id=client_id, name=name.strip(), key_hash=digest(key), person_id=person_id, active=True,
                            created_at=now)  # fmt: skip
            session.add(row)
            audit(session, now, "client.created", client_id, "cli", person_id, detail=name.strip()[:300])
            session.flush()
            return {**client_dict(row), "api_key": key}

    def list_clients(self) -> list[dict[str, Any]]:
        """Every Open311 client (never its key), by id."""
        with self.transaction(write=False) as session:
            return [client_dict(r) for r in session.scalars(select(ApiClient).order_by(ApiClient.id))]

    def revoke_client(self, client_id: str) -> dict[str, Any]:
        """Turn a client off at once (safe to repeat): its api_key gets 403 from now on."""
        now = self.clock()
        with self.transaction() as session:
            row = session.get(ApiClient, client_id)
            if row is None:
                raise NotFound(f"no Open311 client {client_id!r}; `gridflow client list` shows them")
            if row.active:
                row.active = False
                audit(session, now, "client.revoked", client_id, "cli", row.person_id)
            return client_dict(row)

    def open311_client(self, api_key: str | None) -> Client:
        """The active client of ``api_key``; :class:`PermissionDenied` (403) for none, an unknown or a revoked one."""
        if not api_key or not api_key.strip():
            raise PermissionDenied(
                "api_key is missing: send the api_key you were given (ask the township's grid centre)"
            )
        with self.transaction(write=False) as session:
            row = session.scalar(select(ApiClient).where(ApiClient.key_hash == digest(api_key.strip())))
            if row is None or not row.active:
                raise PermissionDenied("invalid api_key: it is unknown or was revoked; ask the township's grid centre")
            person = session.get(Person, row.person_id)
            if person is None or not person.active:
                raise PermissionDenied(
                    f"the person client {row.id!r} reports as is no longer active; ask the grid centre"
                )
            return Client(row.id, row.name, row.person_id)

    # -- services --

    def _flow(self, session: Any) -> Any:
        row = workflow_repo.get_version(session, self.settings.default_workflow)
        return row, workflow_repo.compiled(session, row.id, row.source_hash).definition

    def open311_discovery(self, url: str) -> dict[str, Any]:
        """The service discovery document: this endpoint, its formats, whom to ask for a key."""
        with self.transaction(write=False) as session:
            row, _ = self._flow(session)
            org = current(session)
        township = next((p.name for p in org.places.values() if p.kind == "township"), "乡镇")
        changed = _w3c(row.published_at, self.tz)
        return {
            "changeset": changed,
            "contact": f"{township}网格化服务管理中心（事件流转与时限：gridflow）",
            "key_service": f"api_key 由{township}网格管理中心发放（gridflow client add）",
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": url,
                    "changeset": changed,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }  # fmt: skip
            ],
        }

    def open311_services(self) -> list[dict[str, Any]]:
        """One service per category of the default workflow."""
        month = self.clock().astimezone(self.tz).month
        with self.transaction(write=False) as session:
            _, d = self._flow(session)
        attributes = _attributes(d, {})
        return [
            {
                "service_code": code,
                "service_name": label,
                "description": f"{label}类事件，由网格员上报、网格管理中心派遣处置；{self._promise(d, code, None, month)}",
                "metadata": bool(attributes),
                "type": "realtime",
                "keywords": KEYWORDS.get(code, label),
                "group": GROUPS.get(code, OTHER_GROUP),
            }
            for code, label in _categories(d).items()
        ]

    def open311_service_definition(self, code: str) -> dict[str, Any]:
        """The attributes a request of service ``code`` takes: the workflow's report fields and the grid cell."""
        with self.transaction(write=False) as session:
            _, d = self._flow(session)
            org = current(session)
        if code not in _categories(d):
            raise NotFound(f"service_code {code!r} was not found; services.json lists them")
        grids = {p.id: p.name for p in sorted(org.places.values(), key=lambda p: p.id) if p.kind == "grid" and p.active}
        return {"service_code": code, "attributes": _attributes(d, grids)}

    def _promise(self, d: Any, category: str | None, priority: str | None, month: int) -> str:
        """承诺N个工作日内处置: the handling limit for the category (and priority), and the whole case's."""
        facts = CaseFacts(0, category, priority, None)
        parts = []
        handling = next((s for s in d.states.values() if s.sla and s.sla.get("by_category")), None)
        if handling is not None:
            parts.append(f"承诺{self._span(d, handling.sla, facts, month)}内处置")
        whole = d.extras.get("case_sla")
        if whole:
            parts.append(f"{self._span(d, whole, facts, month)}内办结")
        return "，".join(parts) or "按网格事件处置流程办理"

    def _span(self, d: Any, spec: Mapping[str, Any], facts: CaseFacts, month: int) -> str:
        calendar = self.calendars[calendar_for(d, spec, facts, month)]
        limit = parse_duration(limit_for(spec, facts, calendar))
        if calendar.always_open:
            return f"{limit.amount}{WALL_UNITS[limit.unit]}（全天候计时）"
        return f"{limit.amount}{WORK_UNITS[limit.unit]}"

    # -- requests --

    def open311_report(self, api_key: str | None, sent: Open311Report) -> dict[str, Any]:
        """POST requests: a case reported in the client's person's name; the answer's ``service_request_id``
        is the case code."""
        client = self.open311_client(api_key)
        viewer: access.Viewer = self.viewer(client.person_id)  # type: ignore[attr-defined]
        with self.transaction(write=False) as session:
            _, d = self._flow(session)
            org = current(session)
        categories = _categories(d)
        code = (sent.service_code or "").strip()
        if not code:
            raise InputError("service_code is missing: one of those services.json lists")
        if code not in categories:
            raise NotFound(f"service_code {code!r} was not found; services.json lists them")
        problems: list[str] = []
        attributes = self._attributes_sent(d, sent.attributes, problems)
        lat, long = _coordinates(sent.lat, sent.long, problems)
        address = _text(sent.address_string, "address_string", 200, problems)
        address_id = _text(sent.address_id, "address_id", 64, problems)
        media = _url(sent.media_url, problems)
        name = _name(sent.first_name, sent.last_name, problems)
        phone = _text(sent.phone, "phone", 20, problems)
        if phone and not PHONE.fullmatch(phone):
            problems.append(f"phone {phone!r}: digits, spaces, + ( ) - only")
        email = _text(sent.email, "email", 200, problems)
        if email and not EMAIL.fullmatch(email):
            problems.append(f"email {email!r} is not an e-mail address")
        resident = (sent.description or "").replace("\r\n", "\n")
        problem = text_problem(resident, "description", len(resident), multiline=True)
        resident = resident.strip()
        if problem:
            problems.append(problem)
        elif len(resident) > 4000:
            problems.append(f"description is {len(resident)} characters long; the spec allows at most 4000")
        grid_ref = attributes.pop("grid", None)
        if not (lat or address or address_id or grid_ref):
            problems.append("a location is needed: lat and long, address_string or address_id (or attribute[grid])")
        if problems:
            raise InputError("; ".join(problems))
        grid = _grid(org, grid_ref, address)
        label = categories[code]
        lines = [
            ("来源", f"{client.name}（{client.id}）"),
            ("地址", address or ""),
            ("地址编号", address_id or ""),
            ("坐标", f"{lat},{long}" if lat else ""),
            ("图片", media or ""),
            ("反映人", name or ""),
            ("电话", phone or ""),
            ("邮箱", email or ""),
        ]
        description = compose(resident, lines)
        limit = d.fields["description"].max_length if "description" in d.fields else None
        if limit and len(description) > limit:
            room = limit - (len(description) - len(resident))
            raise InputError(f"description is {len(resident)} characters long; at most {max(room, 0)} fit here")
        title = attributes.pop("title", None) or _title(resident, label, address, grid.name)
        fields: dict[str, Any] = {"title": title, "description": description, **attributes}
        if "category" in (*d.report.required, *d.report.optional):
            fields["category"] = code
        case = self.report_as(  # type: ignore[attr-defined]
            viewer, grid_id=grid.id, fields=fields, channel=CHANNEL, client=client.id
        )
        month = self.clock().astimezone(self.tz).month
        return {
            "service_request_id": case["code"],
            "service_notice": self._promise(d, code, fields.get("priority"), month),
            "account_id": None,
        }

    def _attributes_sent(self, d: Any, sent: dict[str, list[str]], problems: list[str]) -> dict[str, str]:
        known = {a["code"] for a in _attributes(d, {})}
        out = {}
        for code, values in sent.items():
            if code not in known:
                problems.append(
                    f"attribute[{code}] is not an attribute of this service (it takes: {', '.join(sorted(known))})"
                )
            elif len(values) != 1:
                problems.append(f"attribute[{code}] takes one value, not {len(values)}")
            elif values[0].strip():
                out[code] = values[0].strip()
        return out

    def open311_requests(self, api_key: str | None, query: Open311Query) -> list[dict[str, Any]]:
        """GET requests: the client's own requests, newest first, a page at a time."""
        client = self.open311_client(api_key)
        viewer: access.Viewer = self.viewer(client.person_id)  # type: ignore[attr-defined]
        if query.page < 1 or not 1 <= query.page_size <= MAX_PAGE:
            raise InputError(f"page starts at 1; page_size is 1 to {MAX_PAGE}")
        now = self.clock()
        with self.transaction(write=False) as session:
            _, d = self._flow(session)
            org = current(session)
            q = select(Case).where(Case.source_client == client.id)
            grids = access.grids_seen(org, viewer)
            if grids is not None:
                q = q.where(Case.grid_id.in_(sorted(grids)))
            if query.ids:
                q = q.where(Case.code.in_(query.ids))  # the spec: service_request_id overrides every other filter
            else:
                unknown = [c for c in query.service_codes if c not in _categories(d)]
                if unknown:
                    raise InputError(f"service_code {', '.join(unknown)}: not a service; services.json lists them")
                bad = [s for s in query.statuses if s not in ("open", "closed")]
                if bad:
                    raise InputError(f"status {', '.join(bad)}: open or closed")
                start, end = _window(query.start, query.end, now)
                q = q.where(Case.reported_at >= start, Case.reported_at <= end)
                if query.service_codes:
                    q = q.where(Case.category.in_(query.service_codes))
                if set(query.statuses) == {"open"}:
                    q = q.where(Case.closed_at.is_(None))
                elif set(query.statuses) == {"closed"}:
                    q = q.where(Case.closed_at.is_not(None))
            q = q.order_by(Case.reported_at.desc(), Case.id.desc())
            rows = list(session.scalars(q.offset((query.page - 1) * query.page_size).limit(query.page_size)))
            return self._requests(session, org, viewer, rows)

    def open311_request(self, api_key: str | None, code: str) -> dict[str, Any]:
        """GET requests/{id}: one of the client's requests; :class:`NotFound` for any other code."""
        client = self.open311_client(api_key)
        viewer: access.Viewer = self.viewer(client.person_id)  # type: ignore[attr-defined]
        with self.transaction(write=False) as session:
            org = current(session)
            row = session.scalar(select(Case).where(Case.code == code, Case.source_client == client.id))
            if row is None or not access.sees_grid(org, viewer, row.grid_id):
                raise NotFound(f"service_request_id {code!r} was not found among the requests this api_key sent")
            return self._requests(session, org, viewer, [row])[0]

    def _requests(self, session: Any, org: Any, viewer: access.Viewer, rows: list[Case]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        due = dict(
            session.execute(
                select(SlaClock.case_id, SlaClock.due_at).where(
                    SlaClock.case_id.in_(ids), SlaClock.scope == "case", SlaClock.status == "running"
                )
            ).all()
        )
        newest = (
            select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
            .where(CaseEvent.case_id.in_(ids))
            .group_by(CaseEvent.case_id)
            .subquery()
        )
        last = {
            e.case_id: e
            for e in session.scalars(
                select(CaseEvent).join(
                    newest, (CaseEvent.case_id == newest.c.case_id) & (CaseEvent.seq == newest.c.seq)
                )
            )
        }
        promises: dict[tuple[Any, ...], str] = {}  # a page of cases shares a few promised limits
        return [self._request(session, org, viewer, r, due.get(r.id), last.get(r.id), promises) for r in rows]

    def _request(
        self,
        session: Any,
        org: Any,
        viewer: access.Viewer,
        case: Case,
        due: datetime | None,
        last: CaseEvent | None,
        promises: dict[tuple[Any, ...], str],
    ) -> dict[str, Any]:
        d = workflow_repo.compiled(session, case.workflow_id).definition
        resident, lines = split(case.description)
        if not viewer.sees_personal_data:
            resident = mask_text(resident) or ""
        grid = org.places.get(case.grid_id)
        handler = org.people.get(case.assignee_id) if case.assignee_id else None
        where = grid.name if grid else case.grid_id
        agency = f"{where}，处置人：{handler.name}" if handler else f"{where}，网格管理中心受理"
        notes = d.state_label(case.status)
        if last is not None:
            step = d.triggers.get(last.trigger)
            said = step.label if step else "上报" if last.trigger == "report" else last.trigger
            notes += f"（{said}于{present.local_text(last.at, self.tz)}）"
        lat, _, long = lines.get("坐标", "").partition(",")
        month = case.reported_at.astimezone(self.tz).month
        promised = (case.workflow_id, case.category, case.priority, month)
        if promised not in promises:
            promises[promised] = self._promise(d, case.category, case.priority, month)
        return {
            "service_request_id": case.code,
            "status": "closed" if case.closed_at else "open",
            "status_notes": notes,
            "service_name": present.enum_label(d, "category", case.category) or case.category,
            "service_code": case.category,
            "description": resident or None,
            "agency_responsible": agency,
            "service_notice": promises[promised],
            "requested_datetime": _w3c(case.reported_at, self.tz),
            "updated_datetime": _w3c(case.closed_at or case.updated_at, self.tz),
            "expected_datetime": _w3c(due, self.tz) if due and not case.closed_at else None,
            "address": lines.get("地址") or (grid.name if grid else None),
            "address_id": lines.get("地址编号"),
            "zipcode": None,
            "lat": float(lat) if lat else None,
            "long": float(long) if long else None,
            "media_url": lines.get("图片"),
        }

    def open311_token(self, api_key: str | None, token: str) -> dict[str, Any]:
        """GET tokens/{token}: every service is realtime, so a token is the ``Idempotency-Key`` the client sent
        with its POST; the answer names the request that POST made (for a client whose answer was lost)."""
        client = self.open311_client(api_key)
        with self.transaction(write=False) as session:
            row = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal(client), IdempotencyRecord.key == token
                )
            )
        made = json.loads(row.body) if row is not None and 200 <= row.status < 300 and row.body else []
        if not made or not isinstance(made, list) or "service_request_id" not in made[0]:
            raise NotFound(f"token {token!r} was not found: no request was made with it by this api_key")
        return {"service_request_id": made[0]["service_request_id"], "token": token}


def principal(client: Client) -> str:
    """Whose ``Idempotency-Key`` it is: a client's keys never answer another's."""
    return f"client:{client.id}"


# -- helpers -----------------------------------------------------------------------------------------------------


def _categories(d: Any) -> dict[str, str]:
    spec = d.fields.get("category")
    if spec is None or spec.type != "enum" or not spec.values:
        raise ConfigError(f"workflow {d.name!r} has no category field with values: Open311 services are its categories")
    return dict(spec.values)


def _attributes(d: Any, grids: dict[str, str]) -> list[dict[str, Any]]:
    """The report fields (not category, the service itself, nor description, Open311's own) and the grid cell."""
    out: list[dict[str, Any]] = [
        {
            "variable": True,
            "code": "grid",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "单元格编号；不填时按 address_string 中写明的单元格名称匹配",
            "order": 1,
            "description": "事件所在的网格单元格",
            "values": [{"key": k, "name": v} for k, v in grids.items()],
        }
    ]
    for name in (*d.report.required, *d.report.optional):
        spec = d.fields.get(name)
        if name in ("category", "description", "grid") or spec is None:
            continue
        datatype = DATATYPES.get(spec.type, "string")
        if spec.type == "text" and (spec.max_length or 0) > 200:
            datatype = "text"
        derived = name == "title"
        item: dict[str, Any] = {
            "variable": True,
            "code": name,
            "datatype": datatype,
            "required": name in d.report.required and not derived,
            "datatype_description": "不填时取描述的第一行"
            if derived
            else (f"至多{spec.max_length}字" if spec.max_length else None),
            "order": len(out) + 1,
            "description": spec.label,
        }
        if spec.type == "enum":
            item["values"] = [{"key": k, "name": v} for k, v in spec.values.items()]
        out.append(item)
    return out


def _grid(org: Any, ref: str | None, address: str | None) -> Any:
    grids = [p for p in org.places.values() if p.kind == "grid" and p.active]
    if ref:
        found = [g for g in grids if ref in (g.id, g.name)]
        if not found:
            raise InputError(f"attribute[grid] {ref!r} is not a grid cell; services/{{code}}.json lists them")
        return found[0]
    if address:
        named = [g for g in grids if g.name in address or g.id in address]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            names = "、".join(g.name for g in named[:5])
            raise InputError(f"address_string names several grid cells ({names}); send attribute[grid]")
    raise InputError(
        "a grid cell is needed: send attribute[grid] (services/{code}.json lists them) or an address_string "
        "that names the grid cell (e.g. 马营台村第1单元格); lat/long alone are not placed in a grid here"
    )


def _coordinates(lat: str | None, long: str | None, problems: list[str]) -> tuple[str | None, str | None]:
    lat, long = (lat or "").strip(), (long or "").strip()
    if not lat and not long:
        return None, None
    if not lat or not long:
        problems.append("lat and long are sent together")
        return None, None
    try:
        y, x = float(lat), float(long)
    except ValueError:
        problems.append(f"lat {lat!r} / long {long!r}: decimal degrees (WGS84), e.g. lat=32.0631&long=107.2452")
        return None, None
    if not (-90 <= y <= 90 and -180 <= x <= 180):
        problems.append(f"lat {lat} / long {long}: out of range (lat -90…90, long -180…180)")
        return None, None
    return f"{y:.6f}", f"{x:.6f}"


def _text(value: str | None, name: str, limit: int, problems: list[str]) -> str | None:
    sent = (value or "").replace("\r\n", "\n")
    problem = text_problem(sent, name, len(sent), multiline=True)  # no control or format characters; lines joined
    if problem:
        problems.append(problem)
        return None
    text = _one_line(value or "")
    if len(text) > limit:
        problems.append(f"{name} is {len(text)} characters long; at most {limit}")
        return None
    return text or None


def _url(value: str | None, problems: list[str]) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 500 or any(c.isspace() for c in text):
        problems.append("media_url: an http(s) URL of at most 500 characters")
        return None
    return text


def _name(first: str | None, last: str | None, problems: list[str]) -> str | None:
    for which, value in (("first_name", first), ("last_name", last)):
        sent = (value or "").replace("\r\n", "\n")
        problem = text_problem(sent, which, len(sent), multiline=True)
        if problem:
            problems.append(problem)
            return None
    given, family = _one_line(first or ""), _one_line(last or "")
    if len(given) + len(family) > 50:
        problems.append("first_name and last_name: at most 50 characters together")
        return None
    if CJK.search(given + family):
        return family + given or None  # 姓在前
    return " ".join(p for p in (given, family) if p) or None


def _title(resident: str, label: str, address: str | None, grid: str) -> str:
    first = next((line.strip() for line in resident.splitlines() if line.strip()), "")
    first = mask_text(first) or ""  # the title is shown to every role: the resident's contact stays in the description
    if first:
        return first if len(first) <= 40 else first[:39] + "…"
    return f"{label}（{address or grid}）"[:100]


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    if start is None and end is None:
        return now - MAX_SPAN, now
    if start is None:
        assert end is not None
        return end - MAX_SPAN, end
    if end is None:
        return start, start + MAX_SPAN
    if end < start:
        raise InputError("end_date is before start_date")
    if end - start > MAX_SPAN:
        raise InputError("start_date to end_date spans more than 90 days (the spec's limit); ask for less at once")
    return start, end


def _w3c(at: datetime | None, tz: Any) -> str | None:
    return at.astimezone(tz).replace(microsecond=0).isoformat() if at else None


__all__ = [
    "CHANNEL",
    "Client",
    "Open311Query",
    "Open311Report",
    "Open311UseCases",
    "mask_text",
    "principal",
]
