"""conversations: senders, sessions, messages, funnel, answers, handoff

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:34:18.691222
"""

from alembic import op
import sqlalchemy as sa
import bot.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('senders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=True),
    sa.Column('messaging_service_sid', sa.String(length=34), nullable=True),
    sa.Column('rate_per_s', sa.Float(), nullable=False),
    sa.Column('healthy', sa.Boolean(), nullable=False),
    sa.Column('health_note', sa.String(length=200), nullable=True),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_senders')),
    sa.UniqueConstraint('channel', 'address', name='uq_senders_channel_address')
    )
    op.create_table('flow_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow_name', sa.String(length=64), nullable=False),
    sa.Column('flow_version', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('waiting_for', sa.String(length=16), nullable=True),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('timeout_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_flow_sessions_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_id'], ['senders.id'], name=op.f('fk_flow_sessions_sender_id_senders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_sessions'))
    )
    with op.batch_alter_table('flow_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_flow_sessions_contact_status', ['contact_id', 'status'], unique=False)
        batch_op.create_index('ix_flow_sessions_timeout', ['status', 'timeout_at'], unique=False)

    op.create_table('answers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow_name', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('answered_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_answers_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['flow_sessions.id'], name=op.f('fk_answers_session_id_flow_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_answers'))
    )
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.create_index('ix_answers_session', ['session_id', 'name'], unique=False)

    op.create_table('funnel_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow_name', sa.String(length=64), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('reached_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_funnel_events_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['flow_sessions.id'], name=op.f('fk_funnel_events_session_id_flow_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funnel_events')),
    sa.UniqueConstraint('session_id', 'step', name='uq_funnel_events_session_step')
    )
    op.create_table('handoff_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=30), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('opened_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_handoff_cases_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['flow_sessions.id'], name=op.f('fk_handoff_cases_session_id_flow_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_cases'))
    )
    with op.batch_alter_table('handoff_cases', schema=None) as batch_op:
        batch_op.create_index('ix_handoff_cases_contact_status', ['contact_id', 'status'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('media', sa.JSON(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', bot.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_messages_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_id'], ['senders.id'], name=op.f('fk_messages_sender_id_senders')),
    sa.ForeignKeyConstraint(['session_id'], ['flow_sessions.id'], name=op.f('fk_messages_session_id_flow_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_messages_provider_id'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_contact', ['contact_id', 'id'], unique=False)

    op.create_table('message_status_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('received_at', bot.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_status_events_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_status_events'))
    )
    with op.batch_alter_table('message_status_events', schema=None) as batch_op:
        batch_op.create_index('ix_message_status_events_message', ['message_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('message_status_events', schema=None) as batch_op:
        batch_op.drop_index('ix_message_status_events_message')

    op.drop_table('message_status_events')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_contact')

    op.drop_table('messages')
    with op.batch_alter_table('handoff_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_handoff_cases_contact_status')

    op.drop_table('handoff_cases')
    op.drop_table('funnel_events')
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_index('ix_answers_session')

    op.drop_table('answers')
    with op.batch_alter_table('flow_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_sessions_timeout')
        batch_op.drop_index('ix_flow_sessions_contact_status')

    op.drop_table('flow_sessions')
    op.drop_table('senders')
