"""Serving apps that run as deployments: small HTTP servers answering predictions."""
