"""calls.settle_due_at: a call whose end the status webhook recorded, its flow yet to end

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 22:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settle_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'ix_calls_settle_due',
            ['settle_due_at'],
            unique=False,
            postgresql_where=sa.text('settle_due_at IS NOT NULL'),
            sqlite_where=sa.text('settle_due_at IS NOT NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_settle_due')
        batch_op.drop_column('settle_due_at')
