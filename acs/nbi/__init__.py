"""The northbound REST API: JSON over HTTP for OSS systems, with an OpenAPI 3.1 document.

``routes`` declares every endpoint once (method, path, role, parameters, body and responses);
``handlers`` does their work with the same service functions the CLI calls; ``openapi`` writes
the document from the route table, so it says what the server does. ``resource`` is the thin
Twisted shell. Everything but ``resource`` imports no Twisted.
"""
