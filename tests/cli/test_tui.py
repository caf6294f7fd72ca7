"""``cryptoki-shim tui`` headless, driven by Textual's pilot (issue 21 item 5).

The app runs the admin commands against a real store (tests/cli/conftest.py's config), so
what the screens show is what the library holds; actions are checked afterwards with
``cryptoki-shim list --json``. Never a secret on screen: every rendered screen is searched
for the PINs typed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

textual = pytest.importorskip("textual", reason="the tui extra (textual) is not installed")

from cryptoki_shim.cli.tui_backend import Backend  # noqa: E402
from cryptoki_shim.cli.tui_app import ConfirmScreen, FormScreen, ObjectScreen, ShimApp  # noqa: E402
from textual.widgets import DataTable, Input, Static  # noqa: E402

SIZE = (110, 34)


def screen_text(app: ShimApp) -> str:
    """Everything on screen, as an SVG screenshot holds it (the text a user sees)."""
    return app.export_screenshot()


def rows(app: ShimApp, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def fill(pilot, app: ShimApp, values: dict[str, str]) -> None:
    assert isinstance(app.screen, FormScreen)
    for fid, value in values.items():
        app.screen.query_one(f"#f-{fid}", Input).value = value
    await pilot.click("#ok")
    await pilot.pause()


@pytest.fixture
def audited(new_cli, tmp_path):
    cli = new_cli(extra=f'[audit]\nfile = "{tmp_path / "audit.jsonl"}"\n')
    cli.conf.write_text(cli.conf.read_text() + '[[slots]]\nid = 1\nkdf_cost = "test"\n')
    cli.run("init-token", "--label", "tui-test", "--so-pin-env", "SO", "--pin-env", "UP")
    key = tmp_path / "k.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cli.run("import", str(key), "--label", "web", "--pin-env", "UP")
    os.environ["CRYPTOKI_SHIM_CONF"] = str(cli.conf)
    yield cli
    os.environ.pop("CRYPTOKI_SHIM_CONF", None)


def run(coro):
    return asyncio.run(coro)


def test_browse_slots_objects_and_audit(audited):
    cli = audited

    async def go():
        app = ShimApp(Backend(str(cli.conf)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            slots = rows(app, "slots")
            assert slots[0][:3] == ["0", "cryptoki-shim software slot", "tui-test"] and slots[0][4] == "set"
            assert slots[1][2] == "(not initialized)"
            public = rows(app, "objects")
            assert [r[1:3] for r in public] == [["PUBLIC_KEY", "web"]]  # no login: public objects only
            # log in: the private key appears, with its backend and its uses from the audit log
            await pilot.press("l")
            await fill(pilot, app, {"pin": cli.USER_PIN})
            objs = {(r[1], r[2]): r for r in rows(app, "objects")}
            assert objs[("PRIVATE_KEY", "web")][5] == "software"
            assert "all objects (logged in)" in str(app.query_one("#objects-title", Static).render())
            table = app.query_one("#objects", DataTable)
            table.move_cursor(row=[i for i, r in enumerate(rows(app, "objects")) if r[1] == "PRIVATE_KEY"][0])
            table.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ObjectScreen)
            attrs = dict((r[0], r[1]) for r in rows(app, "attributes"))
            assert attrs["backend"] == "software" and attrs["extractable"] == "False"
            assert attrs["uses (audit key.use)"] == "0" and len(attrs["unique_id"]) > 8
            shown = screen_text(app)
            assert cli.USER_PIN not in shown and cli.SO_PIN not in shown
            await pilot.press("escape")
            # the audit tab: verified, with the records of the import and the logins
            await pilot.press("a")
            await pilot.pause()
            assert app.query_one("TabbedContent").active == "audit"
            status = str(app.query_one("#audit-status", Static).render())
            assert status.startswith("verified:"), status
            events = [r[1] for r in rows(app, "audit-records")]
            assert "object.create" in events and "login.ok" in events

    run(go())


def test_admin_action_asks_and_cancel_changes_nothing(audited):
    cli = audited

    async def go():
        app = ShimApp(Backend(str(cli.conf)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("i")  # slot 0 holds a token: the confirmation says it wipes it
            await fill(pilot, app, {"label": "again", "so-pin": cli.SO_PIN, "pin": cli.USER_PIN})
            assert isinstance(app.screen, ConfirmScreen)
            assert "WIPES the token 'tui-test'" in app.screen.message
            await pilot.click("#cancel")
            await pilot.pause()
            assert "cancelled: nothing was changed" in str(app.query_one("#status", Static).render())

    run(go())
    assert cli.json("list", "--slot", "0")["slots"][0]["token"]["label"] == "tui-test"


def test_init_token_and_set_pin_through_the_tui(audited):
    cli = audited

    async def go():
        app = ShimApp(Backend(str(cli.conf)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.query_one("#slots", DataTable).move_cursor(row=1)
            await pilot.pause()
            await pilot.press("i")
            await fill(pilot, app, {"label": "second", "so-pin": "so-0001", "pin": "user-0001"})
            assert isinstance(app.screen, ConfirmScreen) and "slot 1" in app.screen.message
            await pilot.click("#confirm")
            await pilot.pause()
            assert rows(app, "slots")[1][2] == "second"
            await pilot.press("p")
            await fill(pilot, app, {"old-pin": "user-0001", "new-pin": "user-0002"})
            await pilot.click("#confirm")
            await pilot.pause()
            assert "set-pin: done" in str(app.query_one("#status", Static).render())
            shown = screen_text(app)
            assert "user-0001" not in shown and "user-0002" not in shown and "so-0001" not in shown

    run(go())
    assert cli.json("list", "--slot", "1")["slots"][0]["token"]["label"] == "second"
    cli.run("list", "--slot", "1", "--pin-env", "P", P="user-0002")  # the new PIN opens it
    cli.run("list", "--slot", "1", "--pin-env", "P", P="user-0001", rc=1)


def test_a_required_field_missing_is_said_not_run(audited):
    async def go():
        app = ShimApp(Backend(str(audited.conf)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("b")
            await fill(pilot, app, {"output": "x.age"})
            assert isinstance(app.screen, FormScreen)
            assert "needed: age recipient" in str(app.screen.query_one("#form-error", Static).render())

    run(go())


SCREENS = ("slots", "object", "audit", "confirm")


def test_screenshots_are_committed_and_shown():
    docs = Path(__file__).resolve().parents[2] / "docs"
    page = (docs / "tui.md").read_text()
    for name in SCREENS:
        svg = docs / "tui" / f"{name}.svg"
        assert svg.exists() and svg.read_text().lstrip().startswith("<svg"), svg
        assert f"(tui/{name}.svg)" in page


def test_import_and_backup_through_the_tui(audited, tmp_path):
    import pyrage
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    import datetime

    cli = audited
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "tui-import")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    p12 = tmp_path / "in.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"x", key, cert, None, serialization.BestAvailableEncryption(b"p12-pass")))
    identity = pyrage.x25519.Identity.generate()
    out = tmp_path / "tui-backup.age"

    async def go():
        app = ShimApp(Backend(str(cli.conf)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("m")
            await fill(pilot, app, {"file": str(p12), "password": "p12-pass", "pin": cli.USER_PIN})
            assert isinstance(app.screen, ConfirmScreen) and "non-extractable" in app.screen.message
            await pilot.click("#confirm")
            await pilot.pause()
            assert "import: done" in str(app.query_one("#status", Static).render())
            assert ["CERTIFICATE", "tui-import"] in [r[1:3] for r in rows(app, "objects")]
            await pilot.press("b")
            await fill(pilot, app, {"output": str(out), "recipient": str(identity.to_public()),
                                    "pin": cli.USER_PIN})
            await pilot.click("#confirm")
            await pilot.pause()
            assert "backup: done" in str(app.query_one("#status", Static).render())
            shown = screen_text(app)
            assert "p12-pass" not in shown and cli.USER_PIN not in shown

    run(go())
    labels = {o["label"] for o in cli.objects()}
    assert "tui-import" in labels
    assert out.stat().st_mode & 0o777 == 0o600 and pyrage.decrypt(out.read_bytes(), [identity])
