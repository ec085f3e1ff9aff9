"""The monitoring store and what reads it: queries, /metrics, alerts, idle reclaim."""
