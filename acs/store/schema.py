"""The ACS's tables, as SQLAlchemy Core, one ``MetaData`` for the whole store.

Names follow TR-069 where it has one (``connection_request_url``, ``parameter_key``,
``command_key``). Every change here needs an Alembic revision in
``acs/store/migrations/versions``; ``tests/store/test_migrations.py`` fails when the
two disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from acs.store.secrets import SealedText

#: Explicit constraint names, so that later migrations (and SQLite batch mode) can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TaskStatus(enum.StrEnum):
    """A task's life: pending -> sent (in a session) -> done | fault | expired | cancelled.

    The values are what the ``tasks.status`` column holds."""

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    FAULT = "fault"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class SessionStatus(enum.StrEnum):
    """A CWMP session's row: open until it ends (nothing left to send), times out (silent past the
    session timeout) or fails (a newer Inform from its device superseded it)."""

    OPEN = "open"
    ENDED = "ended"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


#: the values (plain text: click choices, JSON schemas, the CHECK constraint)
TASK_STATUSES = tuple(s.value for s in TaskStatus)
#: What an API token may do: read < operator (tasks, tags, faults) < admin (policies, devices).
TOKEN_ROLES = ("read", "operator", "admin")
SESSION_STATUSES = tuple(s.value for s in SessionStatus)
#: what became of a connection request: the CPE answered 200/204 (or the UDP datagrams left), it
#: answered 401/503, nothing listens or routes there, no answer in time, anything else
CONNECTION_REQUEST_OUTCOMES = ("sent", "refused", "unreachable", "timed_out", "error")


def utcnow() -> datetime:
    """Now, aware and in UTC: the only kind of datetime the store accepts."""
    return datetime.now(UTC)


#: per dialect name, UTCDateTime's last conversion: (the datetime given, what the driver got)
_LAST_CONVERTED: dict[str, list[tuple[Any, Any]]] = {}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that is aware UTC on the way out on every backend.

    SQLite keeps no offset, so values are stored as naive UTC there and given their
    tzinfo back when read; PostgreSQL returns ``timestamptz`` in the session time
    zone, which is converted to UTC. Naive datetimes are refused: their meaning
    depends on the machine that made them.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """The conversion, remembering its last answer: the rows of one statement (a GetParameterValues
        batch, an Inform's parameters) and the statements of one CWMP message share one ``now``,
        converted once instead of once per row and column. The memo is shared by every
        UTCDateTime column of a dialect (the conversion depends on nothing else)."""
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        memo = _LAST_CONVERTED.setdefault(dialect.name, [(object(), None)])

        def process(value: Any) -> Any:
            seen, out = memo[0]
            if value is not seen:
                out = convert(value)
                memo[0] = (value, out)  # one tuple, swapped whole: safe across threads
            return out

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON documents: ``jsonb`` on PostgreSQL (compact, indexable), text on SQLite.
#: SQL NULL (not JSON ``null``) for ``None``, so ``IS NULL`` means "nothing stored".
JSONDoc = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

#: 64-bit ids on PostgreSQL (events and tasks grow without bound); SQLite's rowid is 64-bit
#: already, and only a plain INTEGER PRIMARY KEY becomes it.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _device_fk() -> sa.ForeignKey:
    return sa.ForeignKey("devices.id", ondelete="CASCADE")


def _status_check(statuses: tuple[str, ...], column: str = "status") -> sa.CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in statuses)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


devices = sa.Table(
    "devices",
    metadata,
    # OUI-ProductClass-SerialNumber, as the Inform's DeviceId gives it.
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("oui", sa.Text, nullable=False),
    sa.Column("product_class", sa.Text),
    sa.Column("serial_number", sa.Text, nullable=False),
    # Lower-case, 12 hex digits, no separators: what operators type to find a phone.
    sa.Column("mac", sa.Text, nullable=True),
    sa.Column("manufacturer", sa.Text),
    sa.Column("software_version", sa.Text),
    sa.Column("hardware_version", sa.Text),
    sa.Column("ip", sa.Text),
    sa.Column("connection_request_url", sa.Text),
    sa.Column("connection_request_username", sa.Text),
    # sealed (acs.store.secrets): the ACS answers the CPE's challenge with it, so it is needed in clear
    sa.Column("connection_request_password", SealedText),
    sa.Column("udp_connection_request_address", sa.Text),
    sa.Column("cwmp_version", sa.Text),
    sa.Column("parameter_key", sa.Text),
    sa.Column("provisioning_code", sa.Text),
    sa.Column("first_inform", UTCDateTime),
    sa.Column("last_inform", UTCDateTime),
    sa.Column("last_boot", UTCDateTime),
    sa.Column("last_bootstrap", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # What the device authenticates to the ACS with (its ManagementServer.Username/Password);
    # devices without them use the server's shared credentials. The password is sealed: Digest needs it.
    sa.Column("username", sa.Text),
    sa.Column("password", SealedText),
    # The profile server (Profile_Rule resyncs over HTTP/TFTP): the last fetch, and for a phone moved
    # to another provisioning server the URL it is sent to, with 301 or 302.
    sa.Column("last_profile_fetch", UTCDateTime),
    sa.Column("profile_redirect", sa.Text),
    sa.Column("profile_redirect_status", sa.Integer),
    # How many names a discovery GetParameterValues may ask of this device at most: halved each time
    # a session died on one (an agent that crashes on long requests); NULL: as its policy says.
    sa.Column("discovery_batch", sa.Integer),
    sa.Index("ix_devices_mac", "mac"),
    sa.Index("ix_devices_serial_number", "serial_number"),
    sa.Index("ix_devices_username", "username", unique=True),
    sa.Index("ix_devices_last_inform", "last_inform"),
)

device_tags = sa.Table(
    "device_tags",
    metadata,
    sa.Column("device_id", sa.Text, _device_fk(), primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    # The PK serves "tags of a device"; this serves "devices with a tag".
    sa.Index("ix_device_tags_tag", "tag"),
)

parameters = sa.Table(
    "parameters",
    metadata,
    sa.Column("device_id", sa.Text, _device_fk(), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
    # xsi:type local name (string, int, unsignedInt, boolean, dateTime, base64, ...).
    sa.Column("type", sa.Text),
    sa.Column("writable", sa.Boolean),
    # True for object paths (ending in "."), which carry no value.
    sa.Column("object", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notification", sa.Integer),
    # Comma-separated AccessList entries ("Subscriber"), as GetParameterAttributes gives them.
    sa.Column("access_list", sa.Text),
    sa.Column("read_at", UTCDateTime),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # The session cookie's token: any worker can continue a session from it.
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, _device_fk()),
    sa.Column("started_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("last_message_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("status", sa.Text, nullable=False, server_default=SessionStatus.OPEN),
    sa.Column("remote_addr", sa.Text),
    # The exact cwmp-1-N namespace the CPE used; the ACS answers in it.
    sa.Column("cwmp_ns", sa.Text),
    # Opaque to the store: what the session layer needs to continue on another worker.
    sa.Column("state", JSONDoc),
    # One session per device across workers: a worker holds the device until then.
    sa.Column("lease_until", UTCDateTime),
    _status_check(SESSION_STATUSES),
    sa.Index("ix_sessions_device_id_status", "device_id", "status"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, _device_fk(), nullable=False),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="SET NULL")),
    # EventCode as it came ("0 BOOTSTRAP", "M Reboot", "X 00000C CUSTOM").
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("command_key", sa.Text),
    sa.Column("received_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Index("ix_events_device_id_received_at", "device_id", "received_at"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, _device_fk(), nullable=False),
    # The RPC's name (Reboot, SetParameterValues, ...); args are its arguments by element name.
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("args", JSONDoc, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=TaskStatus.PENDING),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="SET NULL")),
    # When the CPE answered. A sent task with an answer waits for its event
    # (M Reboot, TRANSFER COMPLETE) and is not sent again if its session dies.
    sa.Column("answered_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("result", JSONDoc),
    sa.Column("fault_code", sa.Integer),
    sa.Column("fault_string", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("command_key", sa.Text),
    sa.Column("job_id", sa.Text),
    # Who queued the task, as text for people (``acs task show``): derived from the origin columns
    # below for tasks that have them; code reads those, never this.
    sa.Column("created_by", sa.Text),
    # Where the task comes from: ``origin_kind`` (policy, api, cli, soap, refresh, profile) and its
    # ``origin_name`` (the policy's name, the API token's); why: ``purpose`` (discover, values,
    # credentials; NULL for a plain task) and ``step`` (a discovery's batch size).
    sa.Column("origin_kind", sa.Text),
    sa.Column("origin_name", sa.Text),
    sa.Column("purpose", sa.Text),
    sa.Column("step", sa.Integer),
    # When an operator cleared the task's fault: it stays on the task, off the list of open faults.
    sa.Column("cleared_at", UTCDateTime),
    # For a task whose outcome comes in a later event (Reboot: 1 BOOT, Download: TransferComplete...):
    # seconds it may take after its response (NULL: the kind's default), and the resulting deadline,
    # set when the response comes. The server's sweep makes a task still waiting then a fault.
    sa.Column("complete_within", sa.Integer),
    sa.Column("deadline_at", UTCDateTime),
    _status_check(TASK_STATUSES),
    # The queue's hot path: "the oldest pending task of this device".
    sa.Index("ix_tasks_device_id_status_id", "device_id", "status", "id"),
    sa.Index("ix_tasks_job_id", "job_id"),
    # A policy's "is a task of mine still open on this device".
    sa.Index("ix_tasks_device_id_origin", "device_id", "origin_kind", "origin_name"),
    # The sweep's: "sent tasks whose deadline has passed".
    sa.Index("ix_tasks_status_deadline_at", "status", "deadline_at"),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # Event codes that trigger the policy: ["0 BOOTSTRAP", "1 BOOT", "2 PERIODIC"], or ["*"].
    sa.Column("events", JSONDoc, nullable=False),
    # NULL matches any device.
    sa.Column("match_product_class", sa.Text),
    sa.Column("match_oui", sa.Text),
    sa.Column("match_software_version", sa.Text),
    sa.Column("match_tag", sa.Text),
    # Tasks to queue: [{"kind": "GetParameterNames", "args": {...}}, ...].
    sa.Column("tasks", JSONDoc, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

#: A counter per thing that server processes cache, bumped in the transaction that changes it:
#: ``policies`` (``acs.jobs.policies``), read with every Inform's device upsert, so that the
#: enabled policies are fetched again only when they changed; ``credentials`` (devices' own CPE
#: credentials, ``acs.store.inventory.credentials_changed``), read with each lookup of a CPE user
#: name, so that the names no device has are remembered until one may have them.
revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

#: HTTP Digest nonces in use (``acs.store.nonces``): the highest nonce count each was answered with,
#: so that a replayed answer is refused by every worker and node; ``expires`` (seconds since the
#: epoch) is when the nonce goes stale and its row may go.
digest_nonces = sa.Table(
    "digest_nonces",
    metadata,
    sa.Column("nonce", sa.Text, primary_key=True),
    sa.Column("nc", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False),
)

connection_requests = sa.Table(
    "connection_requests",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text, _device_fk(), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False, default=utcnow),
    # "http" or "udp"; NULL when the device reported no address to try
    sa.Column("method", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False),
    # In words: the HTTP status, the socket error, how many datagrams left...
    sa.Column("detail", sa.Text),
    # Seconds from the first byte sent to the outcome.
    sa.Column("elapsed", sa.Float),
    _status_check(CONNECTION_REQUEST_OUTCOMES, "outcome"),
    # "a device's latest requests": the history, and the per-device rate limit across processes
    sa.Index("ix_connection_requests_device_id_requested_at", "device_id", "requested_at"),
)

PROFILE_LEVELS = ("default", "model", "tag", "device")
KEY_SCOPES = ("device", "tag")
CBC_DIGESTS = ("md5", "sha256")

# Cisco flat profiles (acs/provisioning/store.py): the XML as the operator gave it, validated.
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

# Where profiles apply; a device's effective profile composes default -> model -> tag -> device.
profile_assignments = sa.Table(
    "profile_assignments",
    metadata,
    sa.Column("profile_id", sa.Integer, sa.ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("level", sa.Text, primary_key=True),
    # "" for default, a ProductClass for model, a tag, or a device id.
    sa.Column("match", sa.Text, primary_key=True),
    # Within a level, higher priority is applied later and wins.
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    _status_check(PROFILE_LEVELS, "level"),
    sa.Index("ix_profile_assignments_level_match", "level", "match"),
)

# Profile encryption keys, per device or per tag; secrets: sealed, never shown, never logged.
profile_keys = sa.Table(
    "profile_keys",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("match", sa.Text, primary_key=True),
    # openssl enc -k passphrase: AES-256-CBC, what the phone's Profile_Rule [--key ...] holds.
    sa.Column("passphrase", SealedText),
    # RFC 8188 input keying material: the phone's IKM_HTTP_Encrypt_Content.
    sa.Column("ikm", SealedText),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    _status_check(KEY_SCOPES, "scope"),
)

# Which EVP_BytesToKey digest a model/firmware expects for AES-256-CBC; "" matches any.
profile_key_digests = sa.Table(
    "profile_key_digests",
    metadata,
    sa.Column("product_class", sa.Text, primary_key=True),
    # a prefix of SoftwareVersion (sip88xx.11-2); the longest matching prefix wins
    sa.Column("software_prefix", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    _status_check(CBC_DIGESTS, "digest"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("role", sa.Text, nullable=False),
    # SHA-256 of the token, hex: the token itself is shown once and never stored.
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("last_used_at", UTCDateTime),
    sa.CheckConstraint(f"role IN ({', '.join(repr(r) for r in TOKEN_ROLES)})", name="role"),
)

#: Server settings (``acs.store.settings``), by name: what every ``acs serve`` process and every start
#: must agree on, such as the shared CPE credentials. A NULL value is a setting switched off. Secret
#: settings (the shared CPE password, the check of the secrets key) are kept sealed in ``secret``.
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("secret", SealedText),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

#: A device that reported a MAC another device has (its Inform, a GetParameterValues, a profile fetch's
#: User-Agent): the MAC stays with the device that had it (``holder_id``), so that the profile server goes
#: on serving that phone's profile to that phone; an operator settles it (``acs device mac-conflict``).
#: One row per MAC and claimant; ``resolved_at`` is set when an operator kept another device: the
#: claimant's later reports are refused without another alarm.
mac_conflicts = sa.Table(
    "mac_conflicts",
    metadata,
    sa.Column("mac", sa.Text, primary_key=True),
    sa.Column("claimant_id", sa.Text, _device_fk(), primary_key=True),
    sa.Column("holder_id", sa.Text, _device_fk(), nullable=False),
    # what reported it: inform, parameters (a GetParameterValues), profile fetch, upgrade (shared before 0012)
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    # how many times the claimant reported it
    sa.Column("reports", sa.Integer, nullable=False, server_default="1"),
    sa.Column("resolved_at", UTCDateTime),
    sa.Index("ix_mac_conflicts_claimant_id", "claimant_id"),
    sa.Index("ix_mac_conflicts_holder_id", "holder_id"),
)
