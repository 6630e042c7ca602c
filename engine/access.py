"""Who may see what: access by role and grid scope, decided here and nowhere else.

A role held on a place covers everything under it (:mod:`engine.scope`): a grid worker sees the
cases of their grids, a village secretary those of their village, the centre and the township's
leaders the whole township. Outside a person's scope a case does not exist for them — the faces
answer "not found", never "forbidden but here" — so every read goes through :func:`grids_seen`.

Personal data is masked by role: phones and ID numbers are shown whole only to the roles in
:data:`SEES_PERSONAL_DATA` (the centre, which keeps the archive), masked for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.scope import OrgSnapshot

TOWNSHIP_ROLES = frozenset({"center", "township_leader"})
SEES_PERSONAL_DATA = frozenset({"center"})
# Roles that may publish workflows, manage tokens of others, decide objections and the like.
ADMIN_ROLES = frozenset({"center"})


@dataclass(frozen=True)
class Viewer:
    """A signed-in person as access sees them: their org roles, each on a place."""

    person_id: str
    name: str
    roles: frozenset[tuple[str, str]]  # (role, place id)

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(role for role, _ in self.roles)

    @property
    def township_wide(self) -> bool:
        return bool(self.role_names & TOWNSHIP_ROLES)

    @property
    def sees_personal_data(self) -> bool:
        return bool(self.role_names & SEES_PERSONAL_DATA)

    @property
    def is_admin(self) -> bool:
        return bool(self.role_names & ADMIN_ROLES)


def viewer_of(snapshot: OrgSnapshot, person_id: str) -> Viewer | None:
    """The viewer for an active person of the org chart; None for anyone else."""
    person = snapshot.people.get(person_id)
    if person is None or not person.active:
        return None
    return Viewer(person.id, person.name, frozenset(snapshot.roles.get(person.id, frozenset())))


def grids_seen(snapshot: OrgSnapshot, viewer: Viewer) -> frozenset[str] | None:
    """The grid cells whose cases ``viewer`` sees; None means every grid (the township's roles)."""
    if viewer.township_wide:
        return None
    places = {place for _, place in viewer.roles}
    return frozenset(
        grid.id for grid in snapshot.places.values() if grid.kind == "grid" and places.intersection(grid.scopes)
    )


def sees_grid(snapshot: OrgSnapshot, viewer: Viewer, grid_id: str) -> bool:
    """Whether a case of ``grid_id`` exists for ``viewer``."""
    seen = grids_seen(snapshot, viewer)
    return seen is None or grid_id in seen


def villages_seen(snapshot: OrgSnapshot, viewer: Viewer) -> frozenset[str] | None:
    """The villages ``viewer`` sees anything of; None means all of them."""
    seen = grids_seen(snapshot, viewer)
    if seen is None:
        return None
    return frozenset(v for g in seen for v in snapshot.places[g].scopes if snapshot.places[v].kind == "village")
