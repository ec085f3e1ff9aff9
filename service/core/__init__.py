"""The logic of the control plane: no HTTP here."""
