"""Contact snapshots: raw tracking events → sessions → attribution → identity → one summary per contact."""
