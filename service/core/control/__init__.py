"""The control loop: the reconciler, its records and periodic work beside it."""
