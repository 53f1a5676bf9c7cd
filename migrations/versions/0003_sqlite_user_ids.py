"""SQLite: never reuse a user id; drop what deleted users left behind

Revision ID: 0003_sqlite_user_ids
Revises: 0002_access_tokens
Create Date: 2026-11-23 10:00:00.000000

Until now SQLite neither enforced foreign keys (so deleting a user left their
keys and tokens behind) nor kept deleted ids from being handed out again (so
the next account could inherit them). The app now turns foreign keys on for
every SQLite connection; this migration removes the leftovers and rebuilds
``users`` with AUTOINCREMENT, starting new ids above every id that the
database still mentions, audit rows included. PostgreSQL enforced the keys and
never reuses identities, so there is nothing to do there.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_sqlite_user_ids'
down_revision = '0002_access_tokens'
branch_labels = None
depends_on = None

# (table, column, what ON DELETE would have done)
_USER_REFERENCES = [
    ('user_api_keys', 'user_id', 'cascade'),
    ('access_tokens', 'user_id', 'cascade'),
    ('global_api_keys', 'updated_by_id', 'set null'),
]
_IDS_SEEN = [
    'SELECT max(id) FROM users',
    'SELECT max(user_id) FROM user_api_keys',
    'SELECT max(user_id) FROM access_tokens',
    'SELECT max(updated_by_id) FROM global_api_keys',
    'SELECT max(actor_user_id) FROM audit_events',
    'SELECT max(subject_user_id) FROM audit_events',
]


def _is_sqlite():
    return op.get_bind().dialect.name == 'sqlite'


def upgrade():
    if not _is_sqlite():
        return
    bind = op.get_bind()
    highest = max((bind.exec_driver_sql(q).scalar() or 0) for q in _IDS_SEEN)
    for table, column, action in _USER_REFERENCES:
        orphaned = f'{column} IS NOT NULL AND {column} NOT IN (SELECT id FROM users)'
        if action == 'cascade':
            op.execute(f'DELETE FROM {table} WHERE {orphaned}')
        else:
            op.execute(f'UPDATE {table} SET {column} = NULL WHERE {orphaned}')
    op.execute(
        'UPDATE access_tokens SET replaced_by_id = NULL WHERE replaced_by_id IS NOT NULL '
        'AND replaced_by_id NOT IN (SELECT id FROM access_tokens)'
    )
    with op.batch_alter_table(
        'users', recreate='always', table_kwargs={'sqlite_autoincrement': True}
    ):
        pass
    # The copy set the counter to the largest id left; ids of deleted users stay taken.
    op.execute("DELETE FROM sqlite_sequence WHERE name = 'users'")
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', :seq)"),
        {'seq': highest},
    )


def downgrade():
    if not _is_sqlite():
        return
    with op.batch_alter_table('users', recreate='always'):
        pass
