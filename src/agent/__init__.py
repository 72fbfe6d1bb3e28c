"""A chat agent that remembers: hot-path memory tools, recall, background memory runs."""
