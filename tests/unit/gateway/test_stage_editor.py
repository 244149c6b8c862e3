"""The deal type editor posts stages, their tasks, rules and documents as rows of fields;
the gateway turns them into the deals service's deal type."""
from __future__ import annotations

from werkzeug.datastructures import MultiDict

from gateway.sections.admin import deal_type_from_form


def test_blocks_become_stages_with_their_rows_and_blank_rows_are_dropped() -> None:
    form = MultiDict([
        ("name", "Поставка"), ("simple", "1"), ("active", "1"), ("description", ""),
        ("doc_title", "Регламент"), ("doc_url", "https://example.org/r"),
        ("doc_title", ""), ("doc_url", ""),
        ("stage_index", "0"), ("stage_0_id", "5"), ("stage_0_name", "Новая"),
        ("stage_0_code", "new"), ("stage_0_status_id", "1"),
        ("stage_0_task_hours", "2"), ("stage_0_task_assignee", "role:head"),
        ("stage_0_task_text", "Позвонить"),
        ("stage_0_task_hours", ""), ("stage_0_task_assignee", "manager"),
        ("stage_0_task_text", ""),
        ("stage_0_rule_on", "fully_paid"), ("stage_0_rule_to", "done"),
        ("stage_0_rule_on", ""), ("stage_0_rule_to", ""),
        ("stage_index", "3"), ("stage_3_id", ""), ("stage_3_name", ""),
        ("stage_3_code", ""), ("stage_3_status_id", "1"),
        ("stage_3_task_assignee", "manager"),
        ("stage_index", "4"), ("stage_4_id", ""), ("stage_4_name", "Готово"),
        ("stage_4_code", ""), ("stage_4_status_id", "2"),
        ("stage_4_task_hours", ""), ("stage_4_task_assignee", "user:7"),
        ("stage_4_task_text", "Отправить акт"),
    ])
    data, indexes = deal_type_from_form(form)
    assert indexes == ["0", "4"]  # the blank block 3 is no stage
    assert data["documents"] == [{"title": "Регламент", "url": "https://example.org/r"}]
    first, second = data["stages"]
    assert first == {"id": "5", "code": "new", "name": "Новая", "status_id": "1",
                     "tasks": [{"due_hours": "2", "assignee": "role:head",
                                "text": "Позвонить"}],
                     "rules": [{"on": "fully_paid", "to_stage": "done"}], "documents": []}
    assert second["id"] is None and second["code"] is None
    assert second["tasks"] == [{"due_hours": "24", "assignee": "user:7",
                                "text": "Отправить акт"}]
    assert data["simple"] is True and data["active"] is True and "id" not in data
