"""Questionnaire templates and answers: drafts keep what is valid so far, a submission
must satisfy every question."""
from __future__ import annotations

import pytest

from services.documents import questionnaires as q
from services.kit.errors import ValidationError

FIELDS = q.clean_fields([
    {"key": "company", "label": "Компания", "kind": "text", "required": True},
    {"key": "users", "label": "Сотрудников", "kind": "number"},
    {"key": "start", "label": "Старт", "kind": "date"},
    {"key": "plan", "label": "Тариф", "kind": "choice", "options": ["Старт", "Про"]},
    {"key": "channels", "label": "Каналы", "kind": "multi_choice",
     "options": ["Телефон", "E-mail", "Сайт"]},
    {"key": "card", "label": "Карточка", "kind": "file"},
])


def test_a_submission_needs_every_required_answer():
    with pytest.raises(ValidationError) as caught:
        q.clean_answers(FIELDS, {"users": "12"}, final=True)
    assert caught.value.details["field"] == "answers.company"


def test_a_submission_checks_each_kind():
    answers = q.clean_answers(FIELDS, {
        "company": " Ромашка ", "users": "1 200,5", "start": "2027-01-15", "plan": "Про",
        "channels": ["Сайт", "Телефон"], "card": {"key": "a" * 32, "name": "c.pdf",
                                               "size": 10, "content_type": "x"}},
        final=True)
    assert answers["company"] == "Ромашка" and answers["users"] == "1200.5"
    assert answers["channels"] == ["Телефон", "Сайт"]  # the template's order
    with pytest.raises(ValidationError) as caught:
        q.clean_answers(FIELDS, {"company": "x", "plan": "Люкс"}, final=True)
    assert caught.value.details["field"] == "answers.plan"


def test_a_draft_keeps_what_is_valid_so_far():
    draft = q.clean_answers(FIELDS, {"users": "много", "start": "2027-02-30",
                                     "company": "Ром", "unknown": "x"}, final=False)
    assert draft == {"company": "Ром"}


def test_a_template_needs_unique_keys_and_options_for_choices():
    with pytest.raises(ValidationError) as caught:
        q.clean_fields([{"key": "a", "label": "A", "kind": "text"},
                        {"key": "a", "label": "B", "kind": "text"}])
    assert caught.value.details["field"] == "fields.1.key"
    with pytest.raises(ValidationError) as caught:
        q.clean_fields([{"key": "a", "label": "A", "kind": "choice", "options": ["один"]}])
    assert caught.value.details["field"] == "fields.0.options"


def test_the_admin_editor_lines_round_trip():
    lines = q.as_lines(FIELDS)
    assert q.clean_fields(q.parse_lines(lines)) == FIELDS
    assert q.parse_lines("text | company | Компания | да")[0]["required"] is True


def test_the_summary_lists_questions_in_order_with_text_answers():
    rows = q.summary(FIELDS, {"company": "Ромашка", "channels": ["Сайт"]})
    assert [(r["label"], r["text"]) for r in rows][:2] == [("Компания", "Ромашка"),
                                                          ("Сотрудников", "")]
    assert rows[4]["text"] == "Сайт"
