"""indexes for the console's pages: a campaign's sessions, the inbox's tabs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 16:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flow_sessions', schema=None) as batch_op:
        batch_op.create_index(
            'ix_flow_sessions_campaign',
            ['campaign_id', 'id'],
            unique=False,
            postgresql_where=sa.text('campaign_id IS NOT NULL'),
            sqlite_where=sa.text('campaign_id IS NOT NULL'),
        )

    with op.batch_alter_table('handoff_cases', schema=None) as batch_op:
        batch_op.create_index('ix_handoff_cases_status_opened', ['status', 'opened_at', 'id'], unique=False)
        batch_op.create_index('ix_handoff_cases_status_closed', ['status', 'closed_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handoff_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_handoff_cases_status_closed')
        batch_op.drop_index('ix_handoff_cases_status_opened')

    with op.batch_alter_table('flow_sessions', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_flow_sessions_campaign',
            postgresql_where=sa.text('campaign_id IS NOT NULL'),
            sqlite_where=sa.text('campaign_id IS NOT NULL'),
        )
