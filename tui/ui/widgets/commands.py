"""The command palette's entries: one per key binding of the app (same words as the footer and help)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.ui.keys import binding_rows


class ActionsProvider(Provider):
    """Every action of the app, found by its name (or, ranked lower, by its explanation)."""

    def _commands(self) -> list[tuple[str, str, str]]:
        return [(f"{description} ({keys})", tooltip, action)
                for keys, description, tooltip, action in binding_rows(self.app)]

    async def discover(self) -> Hits:
        for name, help_text, action in self._commands():
            yield DiscoveryHit(name, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._commands():
            score = matcher.match(name) or matcher.match(help_text) / 2  # names first, then explanations
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.run_action, action), help=help_text)
