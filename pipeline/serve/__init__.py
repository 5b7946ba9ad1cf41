"""Serving the published tables: /contacts requests parsed (query), answered in SQL (reader), over HTTP
(api with its auth, limits and models) with hashed API keys (keys)."""
