"""End-to-end tests: the real `langgraph dev` server, driven with the LangGraph SDK."""
