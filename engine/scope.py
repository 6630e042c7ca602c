"""Who holds which role over a grid cell.

A role held on a place covers everything under it: a grid worker's grid, a
village secretary's village, the centre's township.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from engine.store.models import Person, Place, RoleAssignment


def roles_over(session: Session, person_id: str, grid: Place) -> tuple[Person | None, set[str]]:
    """The person and the org roles they hold over ``grid`` (on it or on a place above it)."""
    scopes = [p for p in (grid.id, grid.parent_id, grid.village_id, grid.township_id) if p]
    rows = session.execute(
        select(Person, RoleAssignment.role)
        .outerjoin(
            RoleAssignment,
            and_(RoleAssignment.person_id == Person.id, RoleAssignment.place_id.in_(scopes)),
        )
        .where(Person.id == person_id)
    ).all()
    if not rows:
        return None, set()
    return rows[0][0], {role for _, role in rows if role}
