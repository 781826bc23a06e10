//! The SQLite backend: one file, survives a restart, shared by the processes of one host.
