"""Chat channels: inbound platform messages answered once, actions posted to a group once."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "channel_messages",
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("message_id", sa.String(255), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
    )
    op.create_table(
        "channel_posts",
        sa.Column("action_id", sa.String(36), primary_key=True),
        sa.Column("target", sa.String(16), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_posts")
    op.drop_table("channel_messages")
