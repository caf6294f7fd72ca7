"""The Textual application of ``cryptoki-shim tui`` (cli/tui.py holds what it runs)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static, TabbedContent, TabPane

from .tui_backend import Backend

#: (field id, label, masked, required) of each action's form
FORMS: dict[str, tuple[str, list[tuple[str, str, bool, bool]]]] = {
    "login": ("Log in to see private objects", [("pin", "user PIN", True, True)]),
    "init": ("Initialize the token", [("label", "token label", False, True), ("so-pin", "SO PIN", True, True),
                                      ("pin", "user PIN", True, True)]),
    "set_pin": ("Change the user PIN", [("old-pin", "current user PIN", True, True),
                                        ("new-pin", "new user PIN", True, True)]),
    "import": ("Import a key or certificate", [("file", "file (PEM, DER, PKCS#12)", False, True),
                                               ("label", "label (optional)", False, False),
                                               ("password", "file password (optional)", True, False),
                                               ("pin", "user PIN", True, True)]),
    "backup": ("Back up the token", [("output", "output file", False, True),
                                     ("recipient", "age recipient (age1...)", False, True),
                                     ("pin", "user PIN", True, True)]),
}
SECRET_FIELDS = {"so-pin", "pin", "old-pin", "new-pin", "password"}


class FormScreen(ModalScreen[dict[str, str] | None]):
    """A small form; PIN fields are masked. Dismisses with the values, or None."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, kind: str, slot: int) -> None:
        super().__init__()
        self.kind, self.slot = kind, slot
        self.title_text, self.fields = FORMS[kind]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"{self.title_text} (slot {self.slot})", id="form-title")
            for fid, label, masked, _ in self.fields:
                yield Label(label)
                yield Input(password=masked, id=f"f-{fid}")
            yield Static("", id="form-error")
            with Horizontal():
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        self._submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def _submit(self) -> None:
        values = {fid: self.query_one(f"#f-{fid}", Input).value for fid, *_ in self.fields}
        missing = [label for fid, label, _, required in self.fields if required and not values[fid]]
        if missing:
            self.query_one("#form-error", Static).update(f"needed: {', '.join(missing)}")
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Every admin action asks first, saying what it will do."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.message, id="confirm-message")
            with Horizontal():
                yield Button("Confirm", variant="error", id="confirm")
                yield Button("Cancel", variant="primary", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


class ObjectScreen(ModalScreen[None]):
    """One object: what ``list`` says of it (never a value) and its uses in the audit log."""

    BINDINGS = [Binding("escape", "close", "close")]

    def __init__(self, obj: dict[str, Any], uses: int | None) -> None:
        super().__init__()
        self.obj, self.uses = obj, uses

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"object {self.obj.get('label') or ''} ({self.obj.get('class')})", id="object-title")
            yield DataTable(id="attributes", cursor_type="none")
            yield Button("Close", id="close")

    def on_mount(self) -> None:
        table = self.query_one("#attributes", DataTable)
        table.add_columns("attribute", "value")
        for key in ("handle", "class", "label", "id", "key_type", "backend", "unique_id", "private", "extractable"):
            if key in self.obj:
                table.add_row(key, "" if self.obj[key] is None else str(self.obj[key]))
        table.add_row("uses (audit key.use)", "no audit log" if self.uses is None else str(self.uses))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ShimApp(App[None]):
    TITLE = "cryptoki-shim"
    CSS = """
    #dialog { width: 72; height: auto; border: thick $accent; padding: 1 2; background: $surface; }
    FormScreen, ConfirmScreen, ObjectScreen { align: center middle; }
    #status { height: 1; color: $text-muted; }
    #objects-title, #audit-status { height: 1; margin-top: 1; }
    #slots { height: auto; max-height: 10; }
    #form-error { color: $error; }
    #confirm-message { width: 100%; margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("t", "show_tab('tokens')", "slots"),
        Binding("a", "show_tab('audit')", "audit"),
        Binding("r", "refresh", "refresh"),
        Binding("l", "login", "login"),
        Binding("i", "init", "init token"),
        Binding("p", "set_pin", "set PIN"),
        Binding("m", "import", "import"),
        Binding("b", "backup", "backup"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.slot_rows: list[dict[str, Any]] = []
        self.pins: dict[int, str] = {}      # user PINs typed this session (kept in memory only)
        self.objects: list[dict[str, Any]] = []
        self.uses: Counter[str] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="tokens"):
            with TabPane("Slots and objects", id="tokens"):
                yield DataTable(id="slots", cursor_type="row")
                yield Static("", id="objects-title")
                yield DataTable(id="objects", cursor_type="row")
            with TabPane("Audit log", id="audit"):
                yield Static("", id="audit-status")
                yield DataTable(id="audit-records", cursor_type="row")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#slots", DataTable).add_columns("slot", "description", "token", "serial", "user PIN")
        self.query_one("#objects", DataTable).add_columns("handle", "class", "label", "id", "key type", "backend",
                                                          "uses")
        self.query_one("#audit-records", DataTable).add_columns("time", "event", "slot", "operation", "mechanism",
                                                                "key", "outcome")
        self.action_refresh()

    # ------------------------------------------------------------------ data

    @property
    def slot(self) -> int:
        table = self.query_one("#slots", DataTable)
        if not self.slot_rows:
            return 0
        return int(self.slot_rows[min(table.cursor_row, len(self.slot_rows) - 1)]["slot"])

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def action_refresh(self) -> None:
        keep = self.query_one("#slots", DataTable).cursor_row
        try:
            self.slot_rows = self.backend.slots()
        except RuntimeError as exc:
            self.status(f"list failed: {exc}")
            return
        table = self.query_one("#slots", DataTable)
        table.clear()
        for e in self.slot_rows:
            t = e["token"]
            pin = "-" if t is None else ("LOCKED" if t["user_pin_locked"] else "set" if t["user_pin_set"] else "none")
            table.add_row(str(e["slot"]), e["description"], "(not initialized)" if t is None else t["label"],
                          "" if t is None else t["serial"], pin)
        if self.slot_rows:
            table.move_cursor(row=min(keep, len(self.slot_rows) - 1))
        self.refresh_audit()
        self.refresh_objects()

    def refresh_objects(self) -> None:
        slot = self.slot
        pin = self.pins.get(slot)
        try:
            entry = self.backend.slots(pin, slot)[0] if self.slot_rows else None
        except RuntimeError as exc:
            self.pins.pop(slot, None)
            self.status(f"slot {slot}: {exc}")
            entry = None
        self.objects = entry["objects"] if entry else []
        table = self.query_one("#objects", DataTable)
        table.clear()
        for o in self.objects:
            uses = "" if self.uses is None or not o.get("backend") else str(self.uses.get(o["unique_id"], 0))
            table.add_row(str(o["handle"]), o["class"], o["label"] or "", o["id"] or "", o["key_type"] or "",
                          o["backend"] or "", uses)
        seen = "all objects (logged in)" if entry and entry.get("logged_in") else "public objects (l: log in)"
        title = f"slot {slot}: {seen}" if entry and entry["token"] else f"slot {slot}: no token (i: initialize)"
        self.query_one("#objects-title", Static).update(title)

    def refresh_audit(self) -> None:
        status, records, uses = self.backend.audit()
        self.uses = uses if records or uses else (None if status.startswith("no audit") else uses)
        self.query_one("#audit-status", Static).update(status)
        table = self.query_one("#audit-records", DataTable)
        table.clear()
        for r in reversed(records):
            table.add_row(str(r.get("time", ""))[:23], r.get("event", ""), str(r.get("slot", "")),
                          r.get("operation") or r.get("user") or "", r.get("mechanism") or "",
                          r.get("key_label") or "", r.get("outcome") or "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "slots" and self.slot_rows:
            self.refresh_objects()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "objects" and self.objects:
            obj = self.objects[event.cursor_row]
            uses = None if self.uses is None else self.uses.get(obj["unique_id"], 0)
            self.push_screen(ObjectScreen(obj, uses))

    # ------------------------------------------------------------------ actions

    def action_show_tab(self, tab: str) -> None:
        """The tab, and the focus into it (a focused table in the other pane would take the
        TabbedContent back to its own tab)."""
        self.query_one(TabbedContent).active = tab
        self.query_one("#audit-records" if tab == "audit" else "#slots", DataTable).focus()

    def action_login(self) -> None:
        slot = self.slot

        def done(values: dict[str, str] | None) -> None:
            if values:
                self.pins[slot] = values["pin"]
                self.refresh_objects()

        self.push_screen(FormScreen("login", slot), done)

    def _action(self, kind: str) -> None:
        slot = self.slot
        row = next((e for e in self.slot_rows if e["slot"] == slot), None)

        def confirmed(ok: bool | None, values: dict[str, str]) -> None:
            if not ok:
                self.status("cancelled: nothing was changed")
                return
            self._run(kind, slot, values)

        def filled(values: dict[str, str] | None) -> None:
            if values is None:
                self.status("cancelled: nothing was changed")
                return
            self.push_screen(ConfirmScreen(self._describe(kind, slot, row, values)),
                             lambda ok: confirmed(ok, values))

        self.push_screen(FormScreen(kind, slot), filled)

    def _describe(self, kind: str, slot: int, row: dict[str, Any] | None, v: dict[str, str]) -> str:
        token = row["token"]["label"] if row and row["token"] else None
        if kind == "init":
            wipe = f" This WIPES the token {token!r} and every key in it." if token else ""
            return f"Initialize the token of slot {slot} with the label {v['label']!r}?{wipe}"
        if kind == "set_pin":
            return f"Change the user PIN of the token {token!r} (slot {slot})?"
        if kind == "import":
            return f"Import {v['file']} into the token {token!r} (slot {slot}), non-extractable?"
        return f"Write a backup of the token {token!r} (slot {slot}) to {v['output']} for {v['recipient'][:24]}...?"

    def _run(self, kind: str, slot: int, v: dict[str, str]) -> None:
        secrets = {k: val for k, val in v.items() if k in SECRET_FIELDS and val}
        s = ["--slot", str(slot)]
        if kind == "init":
            argv = ["init-token", *s, "--label", v["label"]]
        elif kind == "set_pin":
            argv = ["set-pin", *s]
        elif kind == "import":
            argv = ["import", v["file"], *s, *(["--label", v["label"]] if v.get("label") else [])]
        else:
            argv = ["backup", *s, "-o", v["output"], "-r", v["recipient"]]
        code, data = self.backend.command(*argv, secrets=secrets)
        if code:
            self.status(f"{argv[0]} failed: {data.get('error')}")
            self.notify(f"{argv[0]} failed: {data.get('error')}", severity="error")
        else:
            self.status(f"{argv[0]}: done")
            self.notify(f"{argv[0]}: done")
            if kind == "set_pin":
                self.pins.pop(slot, None)
        self.action_refresh()

    def action_init(self) -> None:
        self._action("init")

    def action_set_pin(self) -> None:
        self._action("set_pin")

    def action_import(self) -> None:
        self._action("import")

    def action_backup(self) -> None:
        self._action("backup")
