"""Background memory service: extracts and consolidates long-term memories."""
