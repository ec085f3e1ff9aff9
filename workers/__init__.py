"""What runs inside a workspace, scheduler or worker."""
