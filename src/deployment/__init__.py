"""Deployment wiring: persistence (Postgres or the server's own), auth and HTTP routes."""
