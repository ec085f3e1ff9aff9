"""Backends turn "start this process with these resources" into something real."""
