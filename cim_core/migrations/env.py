from alembic import context

conn = context.config.attributes["connection"]
context.configure(connection=conn, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
