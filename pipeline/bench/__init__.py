"""The benchmark (`python -m pipeline bench`): run steps timed one by one, peak memory, reader latency;
and `referrer_suite`, the referrer rules scored against a suite of referrer URLs."""
