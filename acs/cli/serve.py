"""``acs serve``: run the ACS."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine
from twisted.logger import STDLibLogObserver, globalLogBeginner

from acs.cli.common import db_option, open_secrets, secrets_key_option
from acs.cli.cpe_credentials import credentials_at_start
from acs.connreq import ConnectionRequester
from acs.connreq import Options as ConnreqOptions
from acs.provisioning.mapping import MapError, load_map
from acs.store.engine import StoreError, create_engine, database_url, ensure_schema, show_url
from acs.store.secrets import KEY_FILE_ENV
from acs.web.boundedlog import BoundedLog, TwistedStrangerLines
from acs.web.server import (
    ServeOptions,
    bind,
    database_threads,
    inherited,
    listen,
    listen_nbi,
    listen_profiles,
    nbi_threads,
    start_pool,
)
from acs.web.workers import is_worker, worker_argv

log = logging.getLogger("acs")


#: the HTTPS ports' options and where they listen when --tls-cert is given and they are not
TLS_PORTS = {"tls_port": 7548, "profile_tls_port": 7568, "nbi_tls_port": 7558}


class PortOrOff(click.ParamType):
    """A port number (0: any free one), or ``off``."""

    name = "port|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "off":
            return None
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not 0 <= number <= 65535:
            self.fail(f"{value!r} is not a port (0 to 65535) nor 'off'", param, ctx)
        return number


@click.command()
@db_option
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option(
    "--port",
    default="7547",
    show_default=True,
    type=PortOrOff(),
    help="CWMP port over HTTP (0: any free port; off: none).",
)
@click.option(
    "--tls-port",
    default=None,
    type=PortOrOff(),
    help=f"CWMP port over HTTPS, beside --port [default: {TLS_PORTS['tls_port']} with --tls-cert, else off].",
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
    help="User name every CPE may use (env ACS_CPE_USERNAME); default: the shared credentials kept in "
    "the database (`acs cpe-credentials`), made at the first start. Per-device ones come from the store.",
)
@click.option(
    "--cpe-password",
    envvar="ACS_CPE_PASSWORD",
    default=None,
    help="Password for --cpe-username. On the command line every local user sees it (ps, "
    "/proc/PID/cmdline): give it in ACS_CPE_PASSWORD instead, or keep the shared credentials in the "
    "database (`acs cpe-credentials set`, which prompts for it).",
)
@click.option(
    "--cpe-shared-new",
    envvar="ACS_CPE_SHARED_NEW",
    type=click.Choice(["allow", "deny"]),
    default="allow",
    show_default=True,
    help="Whether a CPE with the shared credentials may inform as a device the database does not know "
    "(deny: only imported devices; env ACS_CPE_SHARED_NEW). They never speak for a device with its own.",
)
@click.option(
    "--auth-secret",
    envvar="ACS_AUTH_SECRET",
    default=None,
    help="Secret that signs Digest nonces; give every server sharing a database the same one "
    "(in ACS_AUTH_SECRET: on the command line every local user sees it).",
)
@secrets_key_option
@click.option("--no-auth", is_flag=True, help="Accept CPEs without authentication: for a lab only.")
@click.option(
    "--allow-basic", is_flag=True, help="Accept HTTP Basic on plain HTTP too (it sends the password)."
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate (then its chain) of the HTTPS ports; with it they default to "
    + ", ".join(f"--{name.replace('_', '-')} {port}" for name, port in TLS_PORTS.items())
    + ", beside the HTTP ones.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving the CWMP ports; any of them can continue any session.",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every HTTP request (off by default: a line per message is costly).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key for --tls-cert (default: the same file).",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificates (PEM) that TLS client certificates are checked against; asked for, not "
    "required. A device whose certificate names it (its MAC, serial number or OUI-ProductClass-Serial) "
    "needs no HTTP authentication; one naming another device is refused.",
)
@click.option(
    "--profile-port",
    default="7567",
    show_default=True,
    type=PortOrOff(),
    help="HTTP port of the profile server for phones that resync by "
    "Profile_Rule (http://acs:7567/$MA.cfg); 0: any free port; off: none.",
)
@click.option(
    "--profile-tls-port",
    default=None,
    type=PortOrOff(),
    help="HTTPS port of the profile server "
    f"[default: {TLS_PORTS['profile_tls_port']} with --tls-cert, else off].",
)
@click.option(
    "--tftp-port",
    default="off",
    show_default=True,
    type=PortOrOff(),
    help="UDP port of the TFTP profile server (69 is TFTP's), for in-house pre-provisioning by DHCP "
    "option 66; off by default: TFTP has no authentication.",
)
@click.option(
    "--tftp-max-transfers",
    default=ServeOptions.tftp_max_transfers,
    show_default=True,
    type=click.IntRange(1),
    help="TFTP transfers at once, in all; lowered to a quarter of the descriptor limit (ulimit -n) so "
    "that TCP connections always find one. An RRQ over it is dropped unanswered: clients send it again.",
)
@click.option(
    "--tftp-max-per-source",
    default=ServeOptions.tftp_max_per_source,
    show_default=True,
    type=click.IntRange(1),
    help="TFTP transfers at once to one IP address (a phone fetches one file at a time); an RRQ over "
    "it is dropped.",
)
@click.option(
    "--nbi-port",
    default="7557",
    show_default=True,
    type=PortOrOff(),
    help="HTTP port of the northbound REST API (0: any free port; off: none); served by the first "
    "process only.",
)
@click.option(
    "--nbi-tls-port",
    default=None,
    type=PortOrOff(),
    help=f"HTTPS port of the REST API [default: {TLS_PORTS['nbi_tls_port']} with --tls-cert, else off].",
)
@click.option("--nbi-host", default=None, help="Address of the REST API (default: --host).")
@click.option("--no-nbi", is_flag=True, help="Serve no REST API (neither port).")
@click.option(
    "--http-head-timeout",
    default=ServeOptions.http_head_timeout,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds a request's head may take on the HTTP ports (CWMP, profiles, API), from the "
    "connection's opening or the request's first byte, however its bytes trickle in (HTTP 408 after).",
)
@click.option(
    "--http-min-rate",
    default=ServeOptions.http_min_rate,
    show_default=True,
    type=click.FloatRange(1),
    help="Bytes/s a request's body must average on the HTTP ports, after --http-head-timeout "
    "seconds of grace (HTTP 408 below).",
)
@click.option(
    "--http-max-connections",
    default=ServeOptions.http_max_connections,
    show_default=True,
    type=click.IntRange(1),
    help="Connections open at once on the HTTP ports, in all; lowered to half the descriptor limit "
    "(ulimit -n). Over it, the connection that has waited on its client the longest is closed.",
)
@click.option(
    "--http-max-per-source",
    default=ServeOptions.http_max_per_source,
    show_default=True,
    type=click.IntRange(1),
    help="Connections open at once on the HTTP ports from one IP address (a NAT may hold many "
    "phones); over it, that address's longest-waiting connection is closed.",
)
@click.option(
    "--profile-unknown",
    type=click.Choice(["404", "default"]),
    default="404",
    show_default=True,
    help="What a phone the ACS does not know gets: 404 (file not found) or the default profile (with "
    "--profile-auth required, only over HTTPS with a client certificate that names its MAC).",
)
@click.option(
    "--profile-auth",
    type=click.Choice(["required", "none"]),
    default="required",
    show_default=True,
    help="A profile holds the phone's SIP and admin passwords. required: it goes in clear only to a "
    "phone that authenticates (its own credentials, HTTP Digest; a client certificate that names it), "
    "else encrypted with its key (acs profile key), else not at all (403); TFTP serves encrypted "
    "profiles only. none: to anyone who names the phone, as a lab wants.",
)
def serve(
    db: str | None,
    host: str,
    port: int | None,
    tls_port: int | None,
    max_body: int,
    session_timeout: float,
    cpe_username: str | None,
    cpe_password: str | None,
    cpe_shared_new: str,
    auth_secret: str | None,
    no_auth: bool,
    allow_basic: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    workers: int,
    access_log: bool,
    profile_port: int | None,
    profile_tls_port: int | None,
    tftp_port: int | None,
    tftp_max_transfers: int,
    tftp_max_per_source: int,
    profile_unknown: str,
    profile_auth: str,
    nbi_port: int | None,
    nbi_tls_port: int | None,
    nbi_host: str | None,
    no_nbi: bool,
    secrets_key_file: str | None,
    http_head_timeout: float,
    http_min_rate: float,
    http_max_connections: int,
    http_max_per_source: int,
) -> None:
    """Serve CWMP sessions: phones inform, the ACS answers and sends their queued tasks.

    CPEs authenticate with HTTP Digest (or Basic over TLS), with the shared credentials, with
    their own in the store, or with a TLS client certificate that names them (--tls-client-ca).
    The shared ones are --cpe-username/--cpe-password if given, else those kept in the database:
    the first start makes them and prints them (`acs cpe-credentials show`).

    Every service can listen on HTTP and HTTPS side by side, so a fleet can move from one
    to the other: CWMP on --port and --tls-port, profiles on --profile-port and
    --profile-tls-port, the REST API on --nbi-port and --nbi-tls-port. Any of them can be
    `off`; the HTTPS ones need --tls-cert and are on with it, at 7548, 7568 and 7558.

    The northbound REST API (OpenAPI at /openapi.json, SOAP at /soap) takes tokens made
    with `acs token create`.

    The passwords and profile keys kept in the database are sealed with a key in a file of its
    own (--secrets-key-file), made at the first start: keep a copy apart from the database.
    """
    os.umask(0o077)  # before any file is made: the database, its WAL and shared memory, the key
    from twisted.internet import reactor

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Twisted's own messages (unhandled errors, the access log) go to the same log; unrouted, Twisted
    # would format them into a buffer of 64k events nobody reads.
    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    # Twisted's lines a stranger causes (an idle connection timed out), at a bounded rate
    stranger_lines = BoundedLog(reactor, logging.getLogger("acs.web.server"))
    logging.getLogger("twisted").addFilter(TwistedStrangerLines(stranger_lines))
    if (cpe_username is None) != (cpe_password is None):
        raise click.UsageError("give --cpe-username and --cpe-password together")
    ctx = click.get_current_context()
    tls_ports = _tls_ports(ctx, tls_cert is not None)
    tls_port, profile_tls_port, nbi_tls_port = (tls_ports[name] for name in TLS_PORTS)
    if no_nbi:
        nbi_port = nbi_tls_port = None
    if port is None and tls_port is None:
        raise click.UsageError("no CWMP port: give --port or --tls-port (or both)")
    try:
        connreq = ConnreqOptions.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    try:
        url = database_url(db)
        # one connection per store thread, kept open: opening one per message would cost more than the message
        pooled = (
            {}
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
            else (
                {
                    "pool_size": database_threads(url.get_backend_name())
                    + nbi_threads(url.get_backend_name()),
                    "max_overflow": 2,
                }
            )
        )
        engine = create_engine(url, **pooled)
        revision = ensure_schema(engine)
        load_map()  # the TR-069 <-> XML map sessions provision with: a broken one fails here, at start
    except (StoreError, MapError) as e:
        raise click.ClickException(str(e)) from None
    keyring = open_secrets(engine, secrets_key_file, create=not is_worker())
    if not is_worker():
        _warn_open_files(url.database if url.get_backend_name() == "sqlite" else None)
        _warn_command_line(ctx, "cpe_password", "ACS_CPE_PASSWORD")
        _warn_command_line(ctx, "auth_secret", "ACS_AUTH_SECRET")
    if not no_auth and not is_worker():  # workers get them from the first process
        cpe_username, cpe_password = credentials_at_start(engine, cpe_username, cpe_password)
    options = ServeOptions(
        host=host,
        port=port,
        tls_port=tls_port,
        max_body=max_body,
        session_timeout=session_timeout,
        auth=not no_auth,
        cpe_username=cpe_username,
        cpe_password=cpe_password,
        cpe_shared_new=cpe_shared_new,
        auth_secret=auth_secret.encode() if auth_secret else None,
        allow_basic=allow_basic,
        tls_cert=tls_cert,
        tls_key=tls_key or tls_cert,
        tls_client_ca=tls_client_ca,
        workers=workers,
        access_log=access_log,
        profile_port=profile_port,
        profile_tls_port=profile_tls_port,
        tftp_port=tftp_port,
        tftp_max_transfers=tftp_max_transfers,
        tftp_max_per_source=tftp_max_per_source,
        profile_unknown=profile_unknown,
        profile_auth=profile_auth,
        nbi_port=nbi_port,
        nbi_tls_port=nbi_tls_port,
        nbi_host=nbi_host,
        http_head_timeout=http_head_timeout,
        http_min_rate=http_min_rate,
        http_max_connections=http_max_connections,
        http_max_per_source=http_max_per_source,
    )
    worker = is_worker()
    if worker:
        pass  # a worker: the first process has said it all
    elif no_auth:
        log.warning("CPE authentication is OFF (--no-auth): any device that reaches this port is served")
    elif cpe_username is None:
        log.warning(
            "shared CPE credentials are off (`acs cpe-credentials disable`): only devices with "
            "their own credentials in the store can open sessions"
        )
    serves_profiles = profile_port is not None or profile_tls_port is not None or tftp_port is not None
    if not worker and profile_auth == "none" and serves_profiles:
        log.warning(
            "profile authentication is OFF (--profile-auth none): anyone who reaches the profile "
            "port%s gets a known phone's profile in clear, with its SIP and admin passwords; for a lab only",
            " or TFTP" if tftp_port is not None else "",
        )
    secret = auth_secret or (secrets.token_urlsafe(32) if workers > 1 else None)
    options.auth_secret = secret.encode() if secret else None
    try:
        options.tls  # noqa: B018 - the certificate, key and CA are read before any port is bound
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot serve HTTPS: {e}") from None
    try:
        sockets = inherited() if worker else bind(options)
    except OSError as e:
        raise click.ClickException(f"cannot listen: {e}") from None
    # Nothing runs before every port is bound: a busy port ends the start here, with no thread to wait for.
    pool = start_pool(engine, reactor)
    try:
        cwmp = listen(
            engine,
            options,
            reactor,
            sockets.cwmp,
            *_worker_command(options, engine, secret, str(keyring.path)),
            pool=pool,
        )
        if not worker:
            profiles, tftp = listen_profiles(engine, options, reactor, pool, sockets)
            nbi = listen_nbi(
                engine,
                options,
                reactor,
                pool,
                sockets.nbi,
                kicker=lambda nbi_pool: ConnectionRequester(reactor, engine, nbi_pool, connreq).kick,
            )
    except BaseException:
        sockets.close()
        reactor.fireSystemEvent("shutdown")  # stops the thread pools
        raise
    if not worker:
        if profiles:
            click.echo(f"acs: profiles on {_urls(profiles)} (e.g. /$MA.cfg)", err=True)
        if tftp is not None:
            bound = tftp.getHost()
            click.echo(f"acs: profiles over TFTP on {bound.host}:{bound.port}", err=True)
        if nbi:
            click.echo(f"acs: NBI on {_urls(nbi)} (OpenAPI at /openapi.json)", err=True)
        if options.tls is not None:
            clients = (
                f"client certificates asked for, checked against {tls_client_ca}"
                if tls_client_ca
                else "no client certificates asked for"
            )
            click.echo(f"acs: HTTPS with {tls_cert}; {clients}", err=True)
        click.echo(f"acs: stored secrets sealed with the key in {keyring.path}", err=True)
        # the last line: the server is ready
        click.echo(
            f"acs: CWMP on {_urls(cwmp)} ({workers} worker"
            f"{'s' if workers > 1 else ''}, database {show_url(engine)}, schema {revision})",
            err=True,
        )
    reactor.run()


def _tls_ports(ctx: click.Context, tls: bool) -> dict[str, int | None]:
    """The HTTPS ports: as given (a number, or off), else on at their conventional port with
    --tls-cert and off without. A port given without --tls-cert is refused, and so is a
    certificate with every HTTPS port off: either would not do what the operator meant."""
    ports: dict[str, int | None] = {}
    for name, conventional in TLS_PORTS.items():
        given = ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
        value = ctx.params[name] if given else (conventional if tls else None)
        if value is not None and not tls:
            raise click.UsageError(
                f"--{name.replace('_', '-')} needs --tls-cert (the certificate HTTPS serves)"
            )
        ports[name] = value
    for name in ("tls_key", "tls_client_ca"):
        if ctx.params[name] is not None and not tls:
            raise click.UsageError(f"--{name.replace('_', '-')} needs --tls-cert")
    if tls and all(value is None for value in ports.values()):
        raise click.UsageError("--tls-cert is given but every HTTPS port is off")
    return ports


def _warn_open_files(database: str | None) -> None:
    """A SQLite database made before acs set its umask (or copied in) may be readable by every
    local user: the store, its WAL and its shared memory hold the inventory and the sealed secrets."""
    if database in (None, "", ":memory:"):
        return
    for path in (Path(database + suffix) for suffix in ("", "-wal", "-shm")):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & 0o077:
            log.warning(
                "%s is open to other local users (mode %04o): `chmod 600 %s` (acs makes its files 0600)",
                path,
                mode & 0o777,
                path,
            )


def _warn_command_line(ctx: click.Context, name: str, env: str) -> None:
    if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
        log.warning(
            "--%s was given on the command line, where every local user sees it (ps): give it in %s",
            name.replace("_", "-"),
            env,
        )


def _urls(ports: dict[str, Any]) -> str:
    """``http://0.0.0.0:7547/ and https://0.0.0.0:7548/``: where each scheme listens."""
    return " and ".join(f"{scheme}://{p.getHost().host}:{p.getHost().port}/" for scheme, p in ports.items())


def _worker_command(
    options: ServeOptions, engine: Engine, secret: str | None, key_file: str
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the other workers: the same service on the same socket.

    Secrets (the database URL's password, CPE password, nonce secret) go in the environment, and
    so does where the secrets key is (the file, which they load themselves).
    """
    argv = [
        *worker_argv(),
        "serve",
        "--host",
        options.host,
        *_port_args(options),
        "--max-body",
        str(options.max_body),
        "--session-timeout",
        str(options.session_timeout),
        "--http-head-timeout",
        str(options.http_head_timeout),
        "--http-min-rate",
        str(options.http_min_rate),
        "--http-max-connections",
        str(options.http_max_connections),
        "--http-max-per-source",
        str(options.http_max_per_source),
    ]
    argv += [] if options.auth else ["--no-auth"]
    argv += ["--cpe-shared-new", options.cpe_shared_new]
    argv += ["--allow-basic"] if options.allow_basic else []
    argv += ["--access-log"] if options.access_log else []
    if options.tls_cert is not None:
        argv += ["--tls-cert", str(options.tls_cert), "--tls-key", str(options.tls_key or options.tls_cert)]
    if options.tls_client_ca is not None:
        argv += ["--tls-client-ca", str(options.tls_client_ca)]
    env = dict(os.environ) | {
        "ACS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        KEY_FILE_ENV: key_file,
    }
    for name, value in (
        ("ACS_CPE_USERNAME", options.cpe_username),
        ("ACS_CPE_PASSWORD", options.cpe_password),
        ("ACS_AUTH_SECRET", secret),
    ):
        if value is not None:
            env[name] = value
    return argv, env


def _port_args(options: ServeOptions) -> list[str]:
    """The ports as the first process has them, so a worker's options agree with its own (a
    worker binds none: it serves the CWMP sockets it inherits)."""
    args = []
    for name in ("port", "tls_port", "profile_port", "profile_tls_port", "nbi_port", "nbi_tls_port"):
        value = getattr(options, name)
        args += [f"--{name.replace('_', '-')}", "off" if value is None else str(value)]
    return args
