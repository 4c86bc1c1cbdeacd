"""The SQLite state file: schema, records, the store, a tick's writes, the run lock, pruning."""
