"""What the catalog answers, one frozen record per kind of answer.

The catalog returns these, render reads their attributes, and the tools return them: each tool's
output schema is built from these types, so a client validates against the real shape and a renamed
field is a type error here, not a silent change on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema


class Record(BaseModel):
    """A frozen catalog answer; `as_json` is what structured content carries."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def as_json(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [record.as_json() for record in records]


#: What the operator wrote about an object (pg_mcp.operator_notes), beside PostgreSQL's comment: sent
#: only when there is some, so an answer without it is what it always was.
OperatorText = Annotated[str | SkipJsonSchema[None], Field(exclude_if=lambda value: value is None)]


class SchemaSummary(Record):
    name: str
    comment: str | None
    tables: int
    description: OperatorText = None


class TableSummary(Record):
    """One listed relation; kind is table, view, materialized view, foreign table or partitioned table."""

    schema_: str = Field(alias="schema")
    name: str
    kind: str
    estimated_rows: int | None
    comment: str | None
    description: OperatorText = None


class ColumnType(Record):
    name: str
    type: str


class ColumnDescription(Record):
    """A column as describe_table reports it; only the facts that apply are set (and sent)."""

    name: str
    type: str
    nullable: bool
    identity: str | None = None
    generated: str | None = None
    default: str | None = None
    domain_base: str | None = None
    domain_checks: list[str] | None = None
    collation: str | None = None
    enum_values: list[str] | None = None
    comment: str | None = None
    description: OperatorText = None

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class UniqueConstraint(Record):
    name: str
    columns: list[str]


class Definition(Record):
    """A check or exclusion constraint, by its SQL definition."""

    name: str
    definition: str


class Index(Record):
    name: str
    definition: str
    unique: bool


class ForeignKey(Record):
    """A key from the described table to another."""

    name: str
    columns: list[str]
    references: str
    referenced_columns: list[str]


class Reference(Record):
    """A key from another table (or the same one) to the described table."""

    name: str
    table: str
    columns: list[str]
    referenced_columns: list[str]


class Partition(Record):
    name: str
    bound: str | None


class TableDescription(Record):
    """Everything describe_table reports, for both the text and the structured output."""

    schema_: str = Field(alias="schema")
    name: str
    kind: str
    estimated_rows: int | None
    comment: str | None
    description: OperatorText = None
    columns: list[ColumnDescription]
    primary_key: list[str] = []
    foreign_keys: list[ForeignKey] = []
    referenced_by: list[Reference] = []
    unique_constraints: list[UniqueConstraint] = []
    check_constraints: list[Definition] = []
    exclusion_constraints: list[Definition] = []
    indexes: list[Index] = []
    definition: str | None = None
    partition_key: str | None = None
    partitions: list[Partition] = []
    total_bytes: int | None = None


class SearchHit(Record):
    """A table (column_name None) or a column whose name, comment or description matched; lower rank is
    better."""

    schema_: str = Field(alias="schema")
    table_name: str
    kind: str
    column_name: str | None
    type: str | None
    comment: str | None
    rank: int
    description: OperatorText = None


class NoteHit(Record):
    """A search hit in what the operator wrote: a schema by its description (kind "schema"), or a
    glossary term by its name or meaning (kind "glossary", with its SQL and the tables and columns it
    is about)."""

    kind: str
    name: str
    text: str
    rank: int
    sql: OperatorText = None
    related: Annotated[list[str] | SkipJsonSchema[None], Field(exclude_if=lambda value: not value)] = None


class ForeignKeyLink(Record):
    """A foreign key between two exposed relations, both ends named (the catalog's own answer)."""

    name: str
    source_oid: int
    source_schema: str
    source_table: str
    columns: list[str]
    target_oid: int
    target_schema: str
    target_table: str
    target_columns: list[str]


class Edge(Record):
    """A foreign key as a join path: `from(from_columns) → to(to_columns)`."""

    from_: str = Field(alias="from")
    from_columns: list[str]
    to: str
    to_columns: list[str]
    name: str


class ColumnStatistics(Record):
    """What a column holds: the planner's statistics, or, without them, a probe of the first rows
    (`source` says which rows); a fact not known is None."""

    column: str
    type: str
    null_frac: float | None = None
    n_distinct: float | None = None
    most_common_vals: str | None = None
    most_common_freqs: list[float] | None = None
    histogram_bounds: str | None = None
    correlation: float | None = None
    avg_width: int | None = None
    source: str | None = None
    min: str | None = None
    max: str | None = None
    distinct_in_sample: int | None = None


class Overview(Record):
    """What a model reads first about a database."""

    version: str
    database: str
    role: str
    size_bytes: int
    extensions: list[str]
    schemas: list[SchemaSummary]
    #: The operator's description of the database (its `description` setting).
    description: str | None = None


class RoleFacts(Record):
    """The connected role and what it could do on its own, as `pg-mcp check` reports it."""

    server_version: str
    database: str
    role: str
    superuser: bool
    createrole: bool
    createdb: bool
    replication: bool
    bypassrls: bool
    standby: bool
    can_create_schema: bool
    can_create_temp: bool
    role_settings: list[str]
    writable_tables: int
    writable_schemas: list[str]
    creatable_schemas: list[str]
    #: Schemas in which every role may create objects (a grant to PUBLIC).
    public_creatable_schemas: list[str]
    member_of: list[str]
    dangerous_roles: list[str]
    #: [extension, its schema] for extensions that reach outside the database.
    risky_extensions: list[list[str]]
