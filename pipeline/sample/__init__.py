"""Realistic sample events for a landing folder: a simulated site, visitor journeys, hand-written stories and
deliberately broken lines (`python -m pipeline generate`)."""
