"""``acs serve``: run the ACS."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from acs.cli.common import db_option
from acs.store.engine import StoreError, create_engine, ensure_schema, show_url
from acs.web.server import ServeOptions, listen

log = logging.getLogger("acs")


@click.command()
@db_option
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option(
    "--port",
    default=7547,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="CWMP port (0: any free port).",
)
@click.option(
    "--max-body",
    default=ServeOptions.max_body,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest CWMP message accepted, in bytes (HTTP 413 above).",
)
@click.option(
    "--session-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds of silence after which a CWMP session is dropped.",
)
@click.option(
    "--cpe-username",
    envvar="ACS_CPE_USERNAME",
    default=None,
    help="User name every CPE may use (env ACS_CPE_USERNAME); per-device ones come from the store.",
)
@click.option(
    "--cpe-password",
    envvar="ACS_CPE_PASSWORD",
    default=None,
    help="Password for --cpe-username (env ACS_CPE_PASSWORD).",
)
@click.option(
    "--auth-secret",
    envvar="ACS_AUTH_SECRET",
    default=None,
    help="Secret that signs Digest nonces; give every server sharing a database the same one.",
)
@click.option("--no-auth", is_flag=True, help="Accept CPEs without authentication: for a lab only.")
@click.option(
    "--allow-basic", is_flag=True, help="Accept HTTP Basic on plain HTTP too (it sends the password)."
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate (chain): serve CWMP over HTTPS.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key for --tls-cert (default: the same file).",
)
def serve(db: str | None, host: str, port: int, max_body: int, session_timeout: float,
          cpe_username: str | None, cpe_password: str | None, auth_secret: str | None, no_auth: bool,
          allow_basic: bool, tls_cert: Path | None, tls_key: Path | None) -> None:  # fmt: skip
    """Serve CWMP sessions: phones inform, the ACS answers and sends their queued tasks.

    CPEs authenticate with HTTP Digest (or Basic over TLS), with the shared
    --cpe-username/--cpe-password or with their own credentials in the store.
    """
    from twisted.internet import reactor

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if (cpe_username is None) != (cpe_password is None):
        raise click.UsageError("give --cpe-username and --cpe-password together")
    if tls_key is not None and tls_cert is None:
        raise click.UsageError("--tls-key needs --tls-cert")
    try:
        engine = create_engine(db)
        revision = ensure_schema(engine)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    options = ServeOptions(
        host=host, port=port, max_body=max_body, session_timeout=session_timeout, auth=not no_auth,
        cpe_username=cpe_username, cpe_password=cpe_password,
        auth_secret=auth_secret.encode() if auth_secret else None, allow_basic=allow_basic,
        tls_cert=tls_cert, tls_key=tls_key or tls_cert,
    )  # fmt: skip
    if no_auth:
        log.warning("CPE authentication is OFF (--no-auth): any device that reaches this port is served")
    elif cpe_username is None:
        log.warning("no shared CPE credentials (--cpe-username/--cpe-password): only devices with "
                    "their own credentials in the store can open sessions")  # fmt: skip
    errors: list[str] = []

    def started(listening: object) -> None:
        address = listening.getHost()  # type: ignore[attr-defined]
        scheme = "https" if tls_cert else "http"
        click.echo(f"acs: CWMP on {scheme}://{address.host}:{address.port}/ "
                   f"(database {show_url(engine)}, schema {revision})", err=True)  # fmt: skip

    def failed(failure: object) -> None:
        errors.append(f"cannot listen on {host}:{port}: {failure.getErrorMessage()}")  # type: ignore[attr-defined]
        reactor.stop()  # type: ignore[attr-defined]

    listen(engine, options, reactor).addCallbacks(started, failed)
    reactor.run()  # type: ignore[attr-defined]
    if errors:
        raise click.ClickException(errors[0])
