"""The table ``ad_share_estimates``: the raw and the corrected expression shares the reports state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ad_share_estimates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=512), nullable=False),
        sa.Column("ad", sa.String(length=512), nullable=True),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("class", sa.String(length=16), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ad_share_estimates"),
    )
    op.create_index("ix_ad_share_estimates_campaign_ad", "ad_share_estimates", ["campaign", "ad"])


def downgrade() -> None:
    op.drop_index("ix_ad_share_estimates_campaign_ad", table_name="ad_share_estimates")
    op.drop_table("ad_share_estimates")
