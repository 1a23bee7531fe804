"""Use cases: what an operator can ask of the ACS, once, whichever door (CLI, REST, SOAP) asked.

Each function takes a store connection (the caller's transaction), returns a domain result and
raises domain errors; the doors only translate those to their output (exit message, HTTP problem,
SOAP fault), so a rule such as when tasks share a job id cannot drift between them.
"""
