"""A dialog of input fields: Enter in a field or the `confirm` button submits (the dialog's `submit`), any other
button cancels (dismissed with None); a problem is said in red under the fields."""

from __future__ import annotations

from typing import TypeVar

from rich.text import Text
from textual import on
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

T = TypeVar("T")


class FormDialog(ModalScreen[T]):
    def submit(self) -> None:
        """Check the fields: dismiss with the answer, or `say_problem`."""
        raise NotImplementedError

    def say_problem(self, where: str, problem: str) -> None:
        self.query_one(where, Static).update(Text(problem, style="bold red"))

    @on(Input.Submitted)
    def _entered(self, _event: Input.Submitted) -> None:
        self.submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.submit()
        else:
            self.dismiss(None)
