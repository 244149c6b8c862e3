"""The pages carry no inline script or handler (the Content-Security-Policy would block
them, and an attribute is where a quote in a user's text breaks out)."""
from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[3] / "gateway" / "templates"
HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def test_no_template_has_an_inline_event_handler_or_javascript_url():
    found = [f"{path.relative_to(TEMPLATES)}:{n}" for path in TEMPLATES.rglob("*.html")
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if HANDLER.search(line) or "javascript:" in line.lower()]
    assert found == []


def test_every_script_tag_is_a_file_or_json_data():
    inline = [f"{path.relative_to(TEMPLATES)}: {attrs}" for path in TEMPLATES.rglob("*.html")
              for attrs in SCRIPT.findall(path.read_text())
              if "src=" not in attrs and 'type="application/json"' not in attrs]
    assert inline == []
