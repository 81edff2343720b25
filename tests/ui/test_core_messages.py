"""The core's events as messages: declared one class per event in tui/ui/core_messages.py (where go-to-definition
finds them), each named after its event, so its handler is on_<snake name>; the bridge posts the event's own."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from tui.core import events
from tui.ui import core_messages as cm
from tui.ui.bridge import message_for


def test_every_core_event_has_its_message_class_and_every_class_its_event() -> None:
    """Signals (`events.SIGNALS`) may go without one: the panes read them from the live state, so adding one stays
    a change of three files (README, "How to add a remote signal")."""
    event_types = set(typing.get_args(events.Event))
    declared = {cls for _, cls in inspect.getmembers(cm, inspect.isclass)
                if issubclass(cls, cm.CoreMessage) and cls is not cm.CoreMessage}
    assert set(cm.MESSAGES) == declared  # none declared but left out of the table
    kinds = {cls.kind for cls in cm.MESSAGES}
    assert kinds <= event_types and event_types - kinds <= set(events.SIGNALS)
    for cls in cm.MESSAGES:
        assert cls.__name__ == cls.kind.__name__ + "Message" and cls.__module__ == "tui.ui.core_messages"
        name = cls.kind.__name__
        assert cls.handler_name == "on_" + "".join(f"_{c.lower()}" if c.isupper() else c for c in name)[1:]
    assert len(cm.FOR_EVENT) == len(cm.MESSAGES)


def test_the_bridge_posts_each_event_as_its_own_message_and_state_messages_coalesce() -> None:
    first = events.JupyterState("i-1", "starting")
    message = message_for(first)
    assert type(message) is cm.JupyterStateMessage and message.event is first
    assert message.can_replace(cm.JupyterStateMessage(events.JupyterState("i-1", "running")))
    assert not message.can_replace(cm.JupyterStateMessage(events.JupyterState("i-2", "running")))
    lines = cm.LogLinesMessage(events.LogLines("i-1", ("a",)))
    assert not lines.can_replace(cm.LogLinesMessage(events.LogLines("i-1", ("b",))))  # log lines are never dropped
    assert message_for(object()) is None  # a type without a class: logged, not posted


def test_a_new_signal_without_a_message_class_is_folded_in_and_not_posted(caplog: Any) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class DiskFree:  # a newcomer's signal: the table reads it from the live state
        instance_id: str
        gb: float

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events, "SIGNALS", (*events.SIGNALS, DiskFree))
        assert message_for(DiskFree("i-1", 3.5)) is None
    assert "DiskFree" not in caplog.text
    assert message_for(DiskFree("i-1", 3.5)) is None and "no message class for the core's DiskFree" in caplog.text
