//! The in-memory backend: the default, nothing to install; jobs live as long as the process.
