"""Several vectors per passage: the texts people ask by (an FAQ's questions, a playbook's
situations, a document's sentence windows), each embedded on its own. The column keeps the
normalised texts that were embedded, main passage first, so loading never re-normalises."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("chunks", sa.Column("vector_texts", sa.JSON, nullable=True))
