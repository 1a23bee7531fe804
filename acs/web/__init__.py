"""Twisted wiring: the CWMP endpoint and the sites that serve it."""
