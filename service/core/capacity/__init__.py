"""What fits where, and who may use how much: the GPU ledger, fit, quotas, usage."""
