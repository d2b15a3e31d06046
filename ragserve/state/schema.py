"""The tables, as SQLAlchemy Core: the one description the migrations and the stores share."""

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "adapter_assignments",
    "api_keys",
    "documents",
    "feedback",
    "legacy_imports",
    "metadata",
    "responses",
    "tenants",
    "vector_store_file_batches",
    "vector_store_files",
    "vector_stores",
]

# Named constraints, so a migration can name what it changes on PostgreSQL and SQLite alike.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_TENANT = 64  # ingest/tenancy.py's limit on a tenant's name


def _tenant_column(*, primary_key: bool = False) -> Column[str]:
    """A tenant's name, pointing at its row: deleting the tenant deletes what hangs off it."""
    return Column(
        "tenant",
        String(_TENANT),
        ForeignKey("tenants.name", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=not primary_key,
    )


tenants = Table(
    "tenants",
    metadata,
    Column("name", String(_TENANT), primary_key=True),
    # The tenant's settings (system prompt, limits, adapter, answer policy), as service/config.py's
    # TenantSettings dumps them: validated on the way in and out, so a new setting needs no migration.
    Column("settings", JSON, nullable=False),
    Column("docs", Text, nullable=True),  # a docs folder on the server, for tenants from ragserve.toml
    Column("source", String(16), nullable=False),  # "config" (ragserve.toml) or "api" (the admin API)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    _tenant_column(),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

adapter_assignments = Table(
    "adapter_assignments",
    metadata,
    _tenant_column(primary_key=True),
    Column("ref", String(300), nullable=False),  # NAME@VERSION; "" for the base model
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # the order records arrived in
    Column("id", String(40), nullable=False, unique=True),
    _tenant_column(),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),  # the record's JSON in UTF-8 bytes, for the per-tenant cap
    Column("record", JSON, nullable=False),
)

legacy_imports = Table(
    "legacy_imports",
    metadata,
    Column("path", String(500), primary_key=True),  # relative to the data dir
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(40), primary_key=True),
    _tenant_column(),
    Column("filename", String(255), nullable=False),
    Column("format", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    # in_progress (stored, waiting for or in indexing), completed, failed (with `error`), or deleting
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("chunks", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # What the Files API was told it is for (`assistants` or `user_data`); every document is indexed alike.
    Column("purpose", String(16), nullable=False, server_default="assistants"),
    UniqueConstraint("tenant", "sha256"),  # the same bytes twice are one document: indexed once
)

# A vector store is a named set of the tenant's documents: a filter on the tenant's chunks in the one
# collection, never a collection of its own. The tenant's default store (all its documents) has no row.
vector_stores = Table(
    "vector_stores",
    metadata,
    Column("id", String(40), primary_key=True),
    _tenant_column(),
    Column("name", String(256), nullable=False, default=""),
    Column("metadata", JSON, nullable=False),  # up to 16 string pairs, as OpenAI's
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_active_at", DateTime(timezone=True), nullable=False),
)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("store_id", String(40), ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True),
    Column("document_id", String(40), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    _tenant_column(),
    Column("attributes", JSON, nullable=False),  # what search filters read: up to 16 pairs
    Column("created_at", DateTime(timezone=True), nullable=False),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("store_id", String(40), ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False),
    _tenant_column(),
    Column("document_ids", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
)

# Responses kept for `previous_response_id` and retrieval (the Responses API's `store`), each its tenant's.
responses = Table(
    "responses",
    metadata,
    Column("id", String(40), primary_key=True),
    _tenant_column(),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("thread", JSON, nullable=False),  # the conversation through this response, as chat messages
    Column("input", JSON, nullable=False),  # the request's input items, as GET .../input_items lists them
    Column("body", JSON, nullable=False),  # the response object as it was returned
    Column("size", Integer, nullable=False),  # thread, input and body in UTF-8 JSON bytes, for the tenant cap
)
