"""The memory model both graphs and the routes share: records, identity, history, search, embeddings, locks."""
