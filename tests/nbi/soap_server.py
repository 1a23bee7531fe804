"""INTERIM until the NBI site lands: the SOAP service alone on 127.0.0.1:0, tokens from argv."""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from acs.nbi.soap import AccessDenied, soap_resource
from acs.store import create_engine

ROLES = ("read", "operator", "admin")


def main() -> None:
    engine = create_engine(sys.argv[1])
    tokens = dict(arg.split("=", 1) for arg in sys.argv[2:])  # token=role

    def authorize(token: str | None, role: str) -> str:
        if token is None:
            raise AccessDenied(401, "an API token is required")
        if token not in tokens:
            raise AccessDenied(401, "unknown API token")
        if ROLES.index(tokens[token]) < ROLES.index(role):
            raise AccessDenied(403, f"this token has the role {tokens[token]}; this needs {role}")
        return f"token:{tokens[token]}"

    pool = ThreadPool(1, 4, name="soap")
    pool.start()
    root = resource.Resource()
    root.putChild(b"soap", soap_resource(engine, authorize, reactor, pool))
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    print(f"SOAP on http://127.0.0.1:{port.getHost().port}/soap", flush=True)
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    reactor.run()


if __name__ == "__main__":
    main()
