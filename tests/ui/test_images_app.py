"""`i` makes an image of the selected instance (name dialog, progress in the Setup log, a notification), and the
launch wizard lists the project's own images first — against the sandbox."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, OptionList, Static

from tui.ui.screens.image import ImageName
from tui.ui.screens.wizard import LaunchWizard
from tui.ui.widgets.tables import InstancesTable


async def _ready(ui: Any, pilot: Any, app: Any) -> None:
    def loaded() -> bool:
        """the first poll listing alpha"""
        return app.fleet.quota is not None and len(app.query_one(InstancesTable).instances) >= 1
    await ui.wait_for(pilot, loaded)


async def test_i_makes_an_image_with_progress_then_the_wizard_lists_it_first(ui: Any, sb: Any, cloud: Any,
                                                                             make_app: Any) -> None:
    alpha = await ui.in_thread(ui.launch, cloud, "alpha", "m1.small")
    await ui.in_thread(cloud.create_image, alpha.id, "taken-name")
    watch = ui.Watch()
    app = make_app()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await _ready(ui, pilot, app)
        await pilot.press("i")
        dialog = await ui.screen(pilot, ImageName)
        name = dialog.query_one("#image-name", Input)
        assert name.value.startswith("alpha-")  # a suggested name
        advice = str(dialog.query_one(".advice", Static).render())
        assert "Cinder" in advice and "taken off its disk for the snapshot" in advice  # volume-backed, running
        name.value = "taken-name"
        await pilot.press("enter")
        assert isinstance(app.screen, ImageName)
        assert "one of your images" in str(dialog.query_one("#image-error", Static).render())  # no API call
        name.value = "alpha-env"
        await pilot.press("enter")

        def done() -> bool:
            """the image made"""
            return bool(watch.of("ImageDone"))
        await ui.wait_for(pilot, done, timeout=30)
        (result,) = watch.of("ImageDone")
        assert result.ok and "Image alpha-env of alpha is active; 1 volume snapshot(s), 16 GB" in result.text
        lines = [m.line for m in watch.of("ImageProgress")]
        assert lines[0].startswith("Cannot log in to alpha")  # the test's launch has no key the app holds
        assert lines[1] == "Creating image alpha-env of alpha (volume-backed: Cinder snapshots of its volumes)"
        assert any(line.startswith("volume snapshot snapshot for alpha-env") for line in lines)
        assert any(note.startswith("Image alpha-env of alpha is active") for note in watch.notes("information"))
        made = await ui.in_thread(cloud.get_image, "alpha-env")
        assert made.status == "active" and made.own and len(made.snapshot_ids) == 1

        await pilot.press("n")
        wizard = await ui.screen(pilot, LaunchWizard)
        wizard.query_one("#name", Input).value = "beta"
        await pilot.press("enter")
        assert wizard.step == "image"
        images = wizard.query_one("#image", OptionList)
        prompts = [str(images.get_option_at_index(i).prompt) for i in range(images.option_count)]
        assert [p.split()[0] for p in prompts[:2]] == ["alpha-env", "taken-name"]  # own images first, newest first
        assert "your image" in prompts[0] and prompts[2].startswith("Ubuntu")
        # The default stays the cloud's newest Ubuntu, not a frozen image.
        assert str(images.get_option_at_index(images.highlighted or 0).prompt).startswith("Ubuntu 24.04")
