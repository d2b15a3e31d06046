"""Tenants, API keys (hashes), adapter assignments, feedback, and a record of the files imported from an older
data dir.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def _tenant(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(
        "tenant",
        sa.String(64),
        sa.ForeignKey("tenants.name", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("docs", sa.Text, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        _tenant(),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=True),
        sa.Column("revoked_at", _WHEN, nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_table(
        "adapter_assignments",
        _tenant(primary_key=True),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        _tenant(),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_index("ix_feedback_tenant", "feedback", ["tenant"])
    op.create_table(
        "legacy_imports",
        sa.Column("path", sa.String(500), primary_key=True),
        sa.Column("imported_at", _WHEN, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
