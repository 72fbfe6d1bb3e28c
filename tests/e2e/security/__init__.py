"""End-to-end security tests: `langgraph dev` with auth on, driven as several users."""
