"""What a device's Inform says about the tasks a dead session sent it: done, or to send again.

A session can die between the CPE's answer and the ACS's commit (a crash, a lost
connection). Its unanswered task goes back to the queue at the device's next Inform
(``queue.requeue_orphans``); sent blindly, an AddObject would then make a second
instance, a Download run twice. TR-069 gives the ACS two ways to know first:

- ``ManagementServer.ParameterKey``, a forced Inform parameter, is set by the CPE only
  when a SetParameterValues, AddObject or DeleteObject carrying it is applied. One
  request is in flight per session and every answer is committed with the claim of
  the next task, so only the last keyed task a dead session sent can have been
  applied unrecorded: it was when the Inform reports its key and the key the store
  knew for the device before (reported at the dead session's Inform, or set by a
  keyed task answered since) is another one. A key reused across tasks (a profile
  version sent again) cannot tell: the task is sent again, as SetParameterValues
  may safely be.
- A Download or Upload is reported by ``M Download``/``M Upload`` with its CommandKey
  (and ``7 TRANSFER COMPLETE``); its TransferComplete follows in the same session,
  before the ACS's turn. (Reboot and ScheduleInform are closed by their ``M`` events,
  FactoryReset by ``0 BOOTSTRAP``: ``acs.session.service._complete_by_events``.)

Pure: the session service reads the orphans and the stored key, and records the verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from acs.cwmp import rpc
from acs.jobs.queue import Task

#: the RPCs whose ParameterKey the CPE reports once it has applied them
PARAMETER_KEY_KINDS = ("SetParameterValues", "AddObject", "DeleteObject")
#: the RPCs whose outcome comes in a TransferComplete, announced by their "M" event
TRANSFER_KINDS = ("Download", "Upload")
#: the forced Inform parameter that carries it, under either root
PARAMETER_KEY = ".ManagementServer.ParameterKey"
#: the event of a session that carries TransferCompletes
TRANSFER_COMPLETE = "7 TRANSFER COMPLETE"


def reported_parameter_key(params: Iterable[rpc.ParameterValueStruct]) -> tuple[str, str] | None:
    """The ParameterKey an Inform reports, with its full name; None when it has none."""
    for p in params:
        if p.Name.endswith(PARAMETER_KEY) and p.Name.count(".") == 2:
            return p.Name, p.Value if isinstance(p.Value, str) else str(p.Value)
    return None


@dataclass(slots=True)
class Verdicts:
    """What an Inform tells about a device's orphans; the rest are sent again."""

    #: the keyed task the device reports applied (with the key that says so)
    applied: Task | None = None
    #: transfers the device reports finished: they wait for their TransferComplete, not sent again
    transferred: list[Task] = field(default_factory=list)
    #: transfers whose TransferComplete may come in this session (``7 TRANSFER COMPLETE`` without
    #: their "M" event): kept back from the queue until the device's next Inform
    held: list[Task] = field(default_factory=list)


def judge(
    orphans: Iterable[Task],
    events: Iterable[rpc.EventStruct],
    reported_key: str | None,
    known_key: str | None,
) -> Verdicts:
    """Which of a device's orphans its Inform reports done (see the module's docstring).

    ``reported_key``: the ParameterKey in the Inform (None: not reported); ``known_key``: the one
    the store had for the device before this Inform.
    """
    orphans = list(orphans)
    events = list(events)
    verdicts = Verdicts()
    keyed = [t for t in orphans if t.kind in PARAMETER_KEY_KINDS]
    if keyed and reported_key:
        last = max(keyed, key=_sent_order)
        key = last.args.get("ParameterKey")
        if key and key == reported_key and key != known_key:
            verdicts.applied = last
    reported = {(e.EventCode, e.CommandKey) for e in events if e.CommandKey}
    transfer_session = any(e.EventCode == TRANSFER_COMPLETE for e in events)
    for task in orphans:
        if task.kind not in TRANSFER_KINDS:
            continue
        if task.command_key and (f"M {task.kind}", task.command_key) in reported:
            verdicts.transferred.append(task)
        elif transfer_session:
            verdicts.held.append(task)
    return verdicts


def _sent_order(task: Task) -> tuple[float, int]:
    return (task.sent_at.timestamp() if task.sent_at else 0.0, task.id)


def applied_words(task: Task, key: str) -> str:
    """Why a task with no recorded response is done, for its result."""
    return (
        f"applied: the session it was sent in ended before the device's {task.kind}Response was "
        f"recorded, and the device's next Inform reported its ParameterKey {key!r}"
    )


def transferred_words(task: Task) -> str:
    return (
        f"answered: the session it was sent in ended before the device's {task.kind}Response was "
        f"recorded, and the device's next Inform reported M {task.kind} with its CommandKey "
        f"{task.command_key!r}; its TransferComplete says how the transfer ended"
    )
