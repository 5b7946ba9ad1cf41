"""Pure transforms: DataFrames in, DataFrames out, no I/O and no SQL.

In data-flow order: pages (URL normalisation) → referrers, channels, traffic (source / medium / campaign /
channel of a page view) → sessions → identity → contacts, journeys, summaries (one row per contact).
"""
