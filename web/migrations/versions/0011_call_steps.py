"""call_steps: a live call's keypad steps, stored by the step webhook and applied later

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 18:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'call_steps',
        sa.Column('call_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('heard', sa.String(length=32), nullable=True),
        sa.Column('node', sa.String(length=64), nullable=True),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('state', sa.JSON(), nullable=False),
        sa.Column('twiml', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('call_id', 'step'),
    )
    with op.batch_alter_table('call_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_steps_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_steps_at'))
    op.drop_table('call_steps')
