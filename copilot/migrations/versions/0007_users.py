"""People: each user has a role, the knowledge audiences they may read and a key stored only as
its SHA-256 (the key itself is shown once, when made). Single sign-on users are matched by their
provider's subject or their email."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("key_hash", sa.String(64), unique=True),
        sa.Column("email", sa.String(320), unique=True),
        sa.Column("oidc_subject", sa.String(255), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("users")
