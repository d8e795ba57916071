"""inbound queue: messages stored by the webhook, waiting to be routed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 09:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAITING = sa.text('routed_at IS NULL')


def upgrade() -> None:
    op.create_table('inbound_queue',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('from_phone', sa.String(length=40), nullable=False),
    sa.Column('to_address', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('media', sa.JSON(), nullable=False),
    sa.Column('profile_name', sa.String(length=200), nullable=True),
    sa.Column('button_payload', sa.String(length=256), nullable=True),
    sa.Column('received_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('routed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_queue')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_inbound_queue_provider_id'))
    )
    with op.batch_alter_table('inbound_queue', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_queue_waiting', ['id'], unique=False, postgresql_where=WAITING, sqlite_where=WAITING)
        batch_op.create_index('ix_inbound_queue_phone_waiting', ['from_phone', 'id'], unique=False, postgresql_where=WAITING, sqlite_where=WAITING)


def downgrade() -> None:
    with op.batch_alter_table('inbound_queue', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_queue_phone_waiting')
        batch_op.drop_index('ix_inbound_queue_waiting')

    op.drop_table('inbound_queue')
