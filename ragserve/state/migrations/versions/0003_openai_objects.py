"""Files, vector stores and responses (OpenAI's APIs): a document's purpose, named sets of a tenant's
documents, and the responses kept for previous_response_id.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[str]:
    return sa.Column(
        "tenant", sa.String(64), sa.ForeignKey("tenants.name", ondelete="CASCADE"), nullable=False
    )


def _store() -> sa.Column[str]:
    return sa.Column(
        "store_id", sa.String(40), sa.ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="assistants"))
    op.create_table(
        "vector_stores",
        sa.Column("id", sa.String(40), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_vector_stores_tenant", "vector_stores", ["tenant"])
    op.create_table(
        "vector_store_files",
        sa.Column(
            "store_id",
            sa.String(40),
            sa.ForeignKey("vector_stores.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "document_id",
            sa.String(40),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _tenant(),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_vector_store_files_tenant", "vector_store_files", ["tenant"])
    op.create_table(
        "vector_store_file_batches",
        sa.Column("id", sa.String(40), primary_key=True),
        _store(),
        _tenant(),
        sa.Column("document_ids", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_vector_store_file_batches_tenant", "vector_store_file_batches", ["tenant"])
    op.create_table(
        "responses",
        sa.Column("id", sa.String(40), primary_key=True),
        _tenant(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread", sa.JSON, nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_responses_tenant", "responses", ["tenant"])
