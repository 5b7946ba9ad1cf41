"""One run's life: start (lock, plan) → stage → sessionize[bucket] → identify → summarise[bucket] → check →
publish, each step a function the DAG task calls; `nightly` chains them without a scheduler; `forget`
runs an erasure through the same steps."""
