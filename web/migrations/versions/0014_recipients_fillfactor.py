"""campaign_recipients keeps room in each page for its rows' updates (PostgreSQL fillfactor 80)

A recipient row is updated two or three times as it is sent (claimed, given its message,
settled). With full pages each update writes the new row version elsewhere and a new entry
in each of the table's indexes; with room left in the page, PostgreSQL updates in place
(a HOT update) when no indexed column changes. Only pages written from now on keep room.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 02:05:00.000000
"""

from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE campaign_recipients SET (fillfactor = 80)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE campaign_recipients RESET (fillfactor)')
