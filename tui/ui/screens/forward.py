"""`a` on the Tunnels pane: forward a port of an instance — the ports its VM listens on to pick from (read over
SSH while the dialog is open), the remote port, a label and the local port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.core.forwards import Listener, default_label, label_problem, port_problem
from tui.ui.screens.form import FormDialog


@dataclass(frozen=True)
class ForwardRequest:
    remote_port: int
    label: str
    local_port: int | None
    remote_host: str = "127.0.0.1"


class _Suggested(Message):
    def __init__(self, listeners: list[Listener] | None, problem: str = "") -> None:
        super().__init__()
        self.listeners = listeners
        self.problem = problem


class ForwardDialog(FormDialog[ForwardRequest | None]):
    """Dismisses with what to forward, or None when cancelled. `suggest()` reads the VM's listening ports."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="forward.cancel")]

    def __init__(self, name: str, suggest: Callable[[], Awaitable[list[Listener]]]) -> None:
        super().__init__(classes="dialog-screen", id="forward-dialog")
        self.instance_name = name
        self._suggest = suggest
        self.listeners: list[Listener] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Forward a port of {self.instance_name} to 127.0.0.1", classes="dialog-title")
            yield Static("Ports it listens on (enter picks one):", classes="dialog-body")
            yield OptionList(Option("reading them over SSH…", disabled=True), id="forward-suggestions")
            with Horizontal(id="forward-fields"):
                yield Input(type="integer", placeholder="remote port", id="forward-port")
                yield Input(placeholder="label", id="forward-label")
                yield Input(type="integer", placeholder="local port", id="forward-local")
            yield Static("Local port: the remote port's number when free here, else any free one. Kept: the app "
                         "opens it on every start.", id="forward-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Forward", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#forward-port", Input).focus()
        self.run_worker(self._read(), exit_on_error=False, name=f"read the ports {self.instance_name} listens on")

    async def _read(self) -> None:
        try:
            found = await self._suggest()
        except Exception as exc:  # ManagerError, CloudError: said in the list, the dialog stays usable
            self.post_message(_Suggested(None, str(exc) or type(exc).__name__))
        else:
            self.post_message(_Suggested(found))

    def on__suggested(self, message: _Suggested) -> None:
        options = self.query_one("#forward-suggestions", OptionList)
        options.clear_options()
        if message.listeners is None:
            options.add_option(Option(Text(f"could not read them: {message.problem}", style="red"), disabled=True))
            return
        self.listeners = message.listeners
        if not self.listeners:
            options.add_option(Option("nothing listens there but sshd", disabled=True))
        for x in self.listeners:
            options.add_option(Option(f"{x.port:>5}  {x.process or '?':<14} {x.address}", id=str(x.port)))

    @on(OptionList.OptionSelected, "#forward-suggestions")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        picked = next((x for x in self.listeners if str(x.port) == event.option.id), None)
        if picked is None:
            return
        self.query_one("#forward-port", Input).value = str(picked.port)
        label = self.query_one("#forward-label", Input)
        if not label.value and picked.process and not label_problem(picked.process):
            label.value = picked.process
        self.query_one("#forward-port", Input).focus()

    def request(self) -> ForwardRequest | str:
        """What the fields ask for, or why not (one line)."""
        port_text = self.query_one("#forward-port", Input).value.strip()
        local_text = self.query_one("#forward-local", Input).value.strip()
        if not port_text:
            return "Give the remote port (or pick one above)."
        port = int(port_text)
        local = int(local_text) if local_text else None
        label = self.query_one("#forward-label", Input).value.strip() or default_label(port)
        problem = (port_problem(port, "remote port") or (port_problem(local, "local port") if local else None)
                   or label_problem(label))
        if problem:
            return problem[0].upper() + problem[1:] + "."
        host = next((x.remote_host for x in self.listeners if x.port == port), "127.0.0.1")
        return ForwardRequest(port, label, local, host)

    def submit(self) -> None:
        request = self.request()
        if isinstance(request, str):
            self.say_problem("#forward-note", request)
        else:
            self.dismiss(request)
