from alembic import context

from cim_core.migrate import COMPARE

conn = context.config.attributes["connection"]
context.configure(connection=conn, transaction_per_migration=False, **COMPARE)
with context.begin_transaction():
    context.run_migrations()
