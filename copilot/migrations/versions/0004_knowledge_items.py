"""Knowledge items that live in the database: rows imported from a company's spreadsheets and
edits, retirements and restores of any item (the bundled YAML files stay read-only). `origin`
is the index document the item belongs to; `sheet_hash` is the row as last imported, so a
re-import changes only rows whose sheet content changed."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "knowledge_items",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(1024), nullable=False, index=True),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sheet_hash", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
