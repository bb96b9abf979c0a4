//! Serve mode (07): HTTP routes, auth, idempotency, rate limits, schedules and metrics.
