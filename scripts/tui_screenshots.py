"""Make docs/tui/*.svg: each screen of ``cryptoki-shim tui`` on a demo store (docs/tui.md).

    .venv/bin/python scripts/tui_screenshots.py

A temporary store with two slots, a token with an imported EC key and an audit log; the app
is driven headless by Textual's pilot, as tests/cli/test_tui.py does, and each screen saved
as SVG. Re-run after changing the TUI; the test checks the files exist and are shown.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "tui"
PIN, SO_PIN = "demo-user-pin", "demo-so-pin"


def cli(conf: Path, *args: str) -> None:
    env = {**os.environ, "CRYPTOKI_SHIM_CONF": str(conf), "P": PIN, "S": SO_PIN}
    subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *args], env=env, check=True, capture_output=True)


async def shoot(conf: Path) -> None:
    from textual.widgets import DataTable, Input

    from cryptoki_shim.cli.tui_backend import Backend
    from cryptoki_shim.cli.tui_app import ShimApp

    app = ShimApp(Backend(str(conf)))
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.pause()
        await pilot.press("l")
        app.screen.query_one("#f-pin", Input).value = PIN
        await pilot.click("#ok")
        await pilot.pause()
        app.save_screenshot("slots.svg", str(OUT))
        table = app.query_one("#objects", DataTable)
        table.move_cursor(row=[i for i in range(table.row_count) if "PRIVATE" in str(table.get_row_at(i)[1])][0])
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        app.save_screenshot("object.svg", str(OUT))
        await pilot.press("escape")
        await pilot.press("i")
        await pilot.pause()
        for fid, value in (("label", "mytoken"), ("so-pin", SO_PIN), ("pin", PIN)):
            app.screen.query_one(f"#f-{fid}", Input).value = value
        await pilot.click("#ok")
        await pilot.pause()
        app.save_screenshot("confirm.svg", str(OUT))
        await pilot.click("#cancel")
        await pilot.pause(0.5)
        await pilot.press("a")
        await pilot.pause(0.5)
        app.save_screenshot("audit.svg", str(OUT))


def main() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        conf = d / "config.toml"
        conf.write_text(f'[store]\nurl = "sqlite:///{d / "store.db"}"\n[audit]\nfile = "{d / "audit.jsonl"}"\n'
                        '[[slots]]\nid = 0\nkdf_cost = "test"\n[[slots]]\nid = 1\nkdf_cost = "test"\n')
        cli(conf, "init-token", "--label", "mytoken", "--so-pin-env", "S", "--pin-env", "P")
        key = d / "web.pem"
        key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        cli(conf, "import", str(key), "--label", "web", "--pin-env", "P")
        (d / "data").write_bytes(b"hello")
        for _ in range(3):  # uses, for the counters and the audit log
            subprocess.run(["pkcs11-tool", "--module", str(ROOT / "build" / "libcryptoki_shim.so"), "--login",
                            "--pin", PIN, "--sign", "-m", "ECDSA-SHA256", "--label", "web", "-i", str(d / "data"),
                            "-o", str(d / "sig")], env={**os.environ, "CRYPTOKI_SHIM_CONF": str(conf)},
                           check=True, capture_output=True)
        asyncio.run(shoot(conf))
    for f in sorted(OUT.glob("*.svg")):
        print(f"wrote {f.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
