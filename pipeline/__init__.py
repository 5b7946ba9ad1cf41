"""Contact snapshots: raw tracking events → sessions → contacts → the /contacts reader.

The sub-packages follow the data (imports flow one way, from the entry points down):

    cli.py, dags/ ─▶ runs/ ─▶ contract/   the raw event contract: landing files read, checked, staged
                  │        ├▶ transform/  pure functions on frames: traffic sources, sessions, identity, summaries
                  │        └▶ warehouse/  tables, engines, bulk reads and writes
                  └▶ serve/ ─▶ warehouse/ the reader, its request parsing, the HTTP API and its keys
    sample/ (generated events), bench/ (the benchmark); settings.py sits below them all.
"""
