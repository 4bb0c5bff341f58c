"""An HTTP error from the terminal client is printed once: its message, and only the field problems that say
something the message does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.terminal.client import ApiError
from tests.support.cli import LiveServer, run_cli


def test_field_problems_already_in_the_message_are_not_repeated() -> None:
    same = ApiError("Malformed CSV: no header row.", 422, {"file": ["Malformed CSV: no header row."]})
    assert str(same) == "HTTP 422: Malformed CSV: no header row."
    more = ApiError("Unprocessable Entity", 422, {"json": {"name": ["Missing data."], "picos": ["Missing data."]}})
    assert str(more) == "HTTP 422: Unprocessable Entity\n  json.name: Missing data.\n  json.picos: Missing data."


@pytest.mark.process
def test_an_import_error_is_printed_once(live_server: LiveServer, make_token, project_id: int,
                                         tmp_path: Path) -> None:
    token = make_token("alice")
    garbage = tmp_path / "notes.txt"
    garbage.write_text("this is not a bibliographic export\n")
    result = run_cli("import", str(project_id), str(garbage), url=live_server.url, token=token)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: HTTP 4")
