"""Test helpers: a scripted fake OpenAI server and a `langgraph dev` harness."""
