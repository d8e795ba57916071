"""a campaign's budget split per channel; a fallback attempt's cost

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_by_channel', sa.JSON(), nullable=True))

    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('fallback_cost_micros', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.drop_column('fallback_cost_micros')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('budget_by_channel')
