"""The template checker and the sandboxed renderer."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.documents import templating
from services.kit.errors import ValidationError

DEFAULTS = Path(templating.__file__).parent / "default_templates"


def test_unknown_placeholders_fields_and_filters_are_reported_with_their_lines():
    body = "{{ client.inn }}\n{{ bogus }}\n{{ company.nope }}\n{{ deal.name|evil }}"
    problems = templating.check(body)
    assert [(p["line"], p["placeholder"], p["key"]) for p in problems] == [
        (2, "bogus", "template.unknown_placeholder"),
        (3, "company.nope", "template.unknown_field"),
        (4, "evil", "template.unknown_filter")]


def test_loop_variables_are_not_unknown_placeholders():
    assert templating.check("{% for line in lines %}{{ line.name }}{% endfor %}") == []


def test_a_syntax_error_is_reported_with_its_line():
    [problem] = templating.check("ok\n{% if %}")
    assert problem["line"] == 2 and problem["key"] == "template.syntax"


def test_saving_a_bad_template_raises_a_validation_error_naming_body():
    with pytest.raises(ValidationError) as caught:
        templating.ensure_valid("{{ bogus }}")
    assert caught.value.details["field"] == "body"
    assert caught.value.details["params"]["placeholder"] == "bogus"


@pytest.mark.parametrize("path", sorted(DEFAULTS.glob("*.html")), ids=lambda p: p.stem)
def test_the_default_templates_pass_the_checker(path):
    assert templating.check(path.read_text(encoding="utf-8")) == []


def test_a_render_that_fails_names_the_line_and_the_placeholder():
    with pytest.raises(ValidationError) as caught:
        templating.render_html("a\nb\n{{ deal.missing }}", {"deal": {}})
    assert caught.value.details["params"] == {"line": 3, "placeholder": "missing"}
    assert "строка 3" in str(caught.value)


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(ValidationError) as caught:
        templating.render_html("{{ deal.__class__.__mro__ }}", {"deal": {}})
    assert caught.value.details["key"] == "template.forbidden"


def test_values_are_escaped():
    assert templating.render_html("{{ deal.name }}", {"deal": {"name": "<script>"}}) == \
        "&lt;script&gt;"


def test_a_template_has_no_globals_to_call():
    with pytest.raises(ValidationError):
        templating.render_html("{{ range(3) }}", {})


def test_the_pdf_fetches_nothing_from_outside():
    pdf = templating.render_pdf('<p>Счёт</p><img src="http://127.0.0.1:9/x.png">')
    assert pdf.startswith(b"%PDF")
