"""Saved success plans, attached to an account or not, and their milestones as tracked. A plan's id
is the id of the confirmed "save" action that stored it; `plan` holds the whole plan as drafted
and `markdown` the export as the person confirmed it. One milestone row per plan milestone, so a
status change touches one row."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "account_plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(255), index=True),
        sa.Column("customer", sa.String(512), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "plan_milestones",
        sa.Column("plan_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("updated_by", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("plan_milestones")
    op.drop_table("account_plans")
