"""What is left of a campaign's SMS budget for costs found at send time (a voter's own text)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 22:40:00.000000
"""

from alembic import op
import sqlalchemy as sa

import bot.db


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaign_budget_rooms',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('micros', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('counted_at', bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id'),
    )


def downgrade() -> None:
    op.drop_table('campaign_budget_rooms')
