"""Slack I/O: Bolt listeners, the Web API client, posting replies, the HTTP server."""
