"""Resources and what runs for them: processes, programs, dashboards, outputs."""
