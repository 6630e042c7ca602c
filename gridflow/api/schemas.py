"""The API's bodies (pydantic v2): what a client sends, checked field by field; unknown fields refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FieldValue = Annotated[str, StringConstraints(max_length=4000)] | int | float | bool | None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReportIn(Body):
    """A new case (上报): where, what, and the fields the workflow asks for at report."""

    grid: Id = Field(description="Grid cell id, e.g. mayingtai-01.")
    title: Text200 = Field(description="Short title (事件标题).")
    description: Annotated[str, StringConstraints(max_length=4000)] | None = Field(None, description="Details.")
    workflow: Id | None = Field(None, description="Workflow name (default: the township's).")
    fields: dict[Id, FieldValue] = Field(default_factory=dict, max_length=50, description="Report fields.")
    at: AwareDatetime | None = Field(
        None, description="When it happened, if earlier (a phone that was offline): a past time with its offset."
    )


class StepIn(Body):
    """A step: the trigger and its fields."""

    trigger: Id = Field(description="e.g. classify, assign, accept, resolve, verify.")
    fields: dict[Id, FieldValue] = Field(default_factory=dict, max_length=50)
    at: AwareDatetime | None = Field(None, description="When it happened, if earlier: a past time with its offset.")


class WorkflowIn(Body):
    """A workflow definition as YAML text, with the file name its problems are reported against."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)  # the text is published as sent

    yaml: Annotated[str, StringConstraints(min_length=1, max_length=500_000)]
    file: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")] = "upload.yaml"


class PasswordIn(Body):
    phone: Annotated[str, StringConstraints(min_length=5, max_length=20, pattern=r"^\+?[0-9 -]+$")]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CodeRequestIn(Body):
    phone: Annotated[str, StringConstraints(min_length=5, max_length=20, pattern=r"^\+?[0-9 -]+$")]


class CodeIn(Body):
    phone: Annotated[str, StringConstraints(min_length=5, max_length=20, pattern=r"^\+?[0-9 -]+$")]
    code: Annotated[str, StringConstraints(min_length=4, max_length=8, pattern=r"^[0-9]+$")]


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class SessionOut(Out):
    token: str
    kind: str
    person: str
    expires_at: str | None


class TriggerOut(Out):
    trigger: str
    label: str


class CaseOut(Out):
    id: int
    code: str
    status: str
    status_label: str
    version: int
    title: str
    grid: str
    reporter: str
    assignee: str | None
    reported_at: str
    allowed_triggers: list[TriggerOut] | None = None


class CasePage(Out):
    items: list[CaseOut]
    next_cursor: str | None


class EventOut(Out):
    seq: int
    at: str
    actor: str
    trigger: str
    to: str


class HistoryOut(Out):
    case: str
    events: list[EventOut]


class MeOut(Out):
    person: str
    name: str
    roles: list[dict[str, str]]
    township_wide: bool


class CodeSentOut(Out):
    sent_to: str
    expires_in_s: int


class ProblemOut(Out):
    type: str
    title: str
    status: int
    detail: str
    code: str
