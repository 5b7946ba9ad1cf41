"""The benchmark (`python -m pipeline bench`): run steps timed one by one, peak memory, reader latency."""
