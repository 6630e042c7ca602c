"""Published workflow versions: publish, look up, compile (cached per version)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.definitions.model import WorkflowDef
from engine.errors import ConcurrentUpdate, WorkflowNotFound
from engine.machine import MACHINES, CompiledWorkflow, compile_workflow
from engine.store.models import WorkflowDefinition

if TYPE_CHECKING:
    from engine.definitions.loader import LoadedWorkflow
from engine.timeutil import require_aware


@dataclass(frozen=True)
class PublishResult:
    row: WorkflowDefinition
    created: bool


def publish(session: Session, loaded: LoadedWorkflow, at: datetime) -> PublishResult:
    """Store a new version unless the latest version has the same source text."""
    require_aware(at)
    name = loaded.definition.name
    latest = latest_version(session, name, missing_ok=True)
    if latest is not None and latest.source_hash == loaded.source_hash:
        return PublishResult(latest, created=False)
    row = WorkflowDefinition(
        name=name,
        version=(latest.version + 1) if latest else 1,
        title=loaded.definition.title,
        source_file=loaded.file,
        source_text=loaded.source_text,
        source_hash=loaded.source_hash,
        compiled=loaded.definition.to_dict(),
        published_at=at,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"workflow {name!r} was published by someone else meanwhile; try again") from exc
    return PublishResult(row, created=True)


def latest_version(session: Session, name: str, missing_ok: bool = False) -> WorkflowDefinition | None:
    row = session.scalars(
        select(WorkflowDefinition).where(WorkflowDefinition.name == name).order_by(WorkflowDefinition.version.desc())
    ).first()
    if row is None and not missing_ok:
        raise not_found(session, name)
    return row


def get_version(session: Session, name: str, version: int | None = None) -> WorkflowDefinition:
    if version is None:
        row = latest_version(session, name)
        assert row is not None
        return row
    row = session.scalars(
        select(WorkflowDefinition).where(WorkflowDefinition.name == name, WorkflowDefinition.version == version)
    ).first()
    if row is None:
        raise WorkflowNotFound(
            f"workflow {name!r} has no version {version}; `gridflow workflow show {name}` lists them"
        )
    return row


def list_versions(session: Session) -> list[WorkflowDefinition]:
    return list(
        session.scalars(select(WorkflowDefinition).order_by(WorkflowDefinition.name, WorkflowDefinition.version))
    )


HASHES_SEEN = "gridflow.workflow_hashes"  # Session.info: (transaction, {version id: source hash} it read)


def compiled(session: Session, workflow_id: int, source_hash: str | None = None) -> CompiledWorkflow:
    """The compiled machine of a published version, cached by (row id, source hash).

    Published versions never change, but one process may talk to several databases
    (tests, tools) whose row ids coincide: the hash tells them apart. Callers on the hot
    path pass the hash they read with the case; others let it be looked up here, once per version id
    and transaction (a page of 50 cases costs one SELECT, not 50: the session's ``info`` keeps what
    this transaction read, and a version's hash never changes).
    """
    transaction = session.get_transaction()
    kept = session.info.get(HASHES_SEEN)
    if kept is None or kept[0] is not transaction:
        kept = session.info[HASHES_SEEN] = (transaction, {})
    seen: dict[int, str] = kept[1]
    if source_hash is not None:
        seen[workflow_id] = source_hash  # a caller read it with the case: later questions need not ask
    else:
        source_hash = seen.get(workflow_id)
        if source_hash is None:
            source_hash = session.scalar(
                select(WorkflowDefinition.source_hash).where(WorkflowDefinition.id == workflow_id)
            )
            if source_hash is None:
                raise WorkflowNotFound(f"workflow version id {workflow_id} does not exist")
            seen[workflow_id] = source_hash

    def build() -> CompiledWorkflow:
        row = session.get(WorkflowDefinition, workflow_id)
        if row is None or row.source_hash != source_hash:
            raise WorkflowNotFound(f"workflow version id {workflow_id} does not exist")
        return compile_workflow(WorkflowDef.from_dict(row.compiled), row.id, row.version)

    return MACHINES.get((workflow_id, source_hash), build)


def not_found(session: Session, name: str) -> WorkflowNotFound:
    names = list(session.scalars(select(WorkflowDefinition.name).group_by(WorkflowDefinition.name)))
    known = ", ".join(names) if names else "none yet: run `gridflow init` or `gridflow workflow publish FILE`"
    return WorkflowNotFound(f"no workflow named {name!r} is published; published: {known}")


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(WorkflowDefinition)) or 0
