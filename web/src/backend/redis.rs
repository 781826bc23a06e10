//! The Redis backend: a Redis server shared by several instances.
