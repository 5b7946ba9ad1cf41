"""The raw event contract (SPEC §2): landing partitions read, each line checked against the JSON Schema,
normalised and deduplicated, or quarantined with its reason; bot user agents flagged."""
