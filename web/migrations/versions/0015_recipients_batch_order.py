"""A batch's rows in id order in its index: claiming the next rows reads only those

``campaigns.claims.next_pending`` takes a batch's first pending rows by id. With the index on
(campaign_id, batch) alone, PostgreSQL either sorted the whole batch each time or, its
statistics stale (a table grown by a launch since its last ANALYZE), walked the primary key
through every earlier batch of the campaign — a cost that grew with the campaign. With id
as the index's last column the rows come in order from the batch's own entries.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 04:10:00.000000
"""

from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_recipients_campaign_batch')
        batch_op.create_index('ix_campaign_recipients_campaign_batch', ['campaign_id', 'batch', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_recipients_campaign_batch')
        batch_op.create_index('ix_campaign_recipients_campaign_batch', ['campaign_id', 'batch'], unique=False)
