"""Entrypoints of questionnaires: the administrator's templates, a deal's questionnaire
sent by link, and the client's draft and answers through that link."""
from __future__ import annotations

from typing import Any

from services.documents import domain, questionnaires, store
from services.documents.models import Questionnaire, QuestionnaireTemplate
from services.documents.schemas import (
    questionnaire_dict,
    questionnaire_page,
    questionnaire_template_dict,
)
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError


class QuestionnairesEntrypoints:
    db: Any
    deals: Any

    @rpc
    def list_questionnaire_templates(self, include_inactive: bool = False
                                     ) -> list[dict[str, Any]]:
        return [questionnaire_template_dict(t)
                for t in store.questionnaire_templates(self.db, include_inactive)]

    @rpc
    def get_questionnaire_template(self, template_id: int) -> dict[str, Any]:
        return questionnaire_template_dict(store.questionnaire_template(self.db, template_id))

    @rpc
    def save_questionnaire_template(self, data: dict[str, Any],
                                    user_id: int | None = None) -> dict[str, Any]:
        """Create (no `id`) or change a questionnaire template: `name`, `fields`, `active`."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        if data.get("id"):
            found = store.questionnaire_template(self.db, data["id"], field="id", lock=True)
        else:
            found = QuestionnaireTemplate(version=0)
            self.db.add(found)
        found.name = domain.text(data, "name", 200, required=True) or ""
        found.fields = questionnaires.clean_fields(data.get("fields"))
        found.active = bool(data.get("active", True))
        found.version = (found.version or 0) + 1
        found.updated_by, found.updated_at = user_id, clock.now()
        self.db.flush()
        return questionnaire_template_dict(found)

    @rpc
    def create_questionnaire(self, deal_id: int, template_id: int,
                             user_id: int | None = None) -> dict[str, Any]:
        """A questionnaire for the deal from a template, with its own link."""
        deal_id = domain.ident(deal_id, "deal_id")
        found = store.questionnaire_template_or_none(self.db, template_id)
        if found is None or not found.active:
            raise ValidationError("Шаблон анкеты не найден.", field="template_id",
                                  key="template.not_found")
        deal = self.deals.get_deal(deal_id)
        made = Questionnaire(template_id=found.id, name=found.name, fields=found.fields,
                             deal_id=deal_id, deal_name=deal.get("name"),
                             client_id=deal.get("client_id"),
                             manager_id=deal.get("manager_id"), token=domain.new_token(),
                             status="new", draft={}, created_by=user_id)
        self.db.add(made)
        self.db.flush()
        return questionnaire_dict(made)

    @rpc
    def list_questionnaires(self, deal_id: int) -> list[dict[str, Any]]:
        return [questionnaire_dict(q) for q in
                store.questionnaires_of(self.db, domain.ident(deal_id, "deal_id"))]

    @rpc
    def open_questionnaire(self, token: str) -> dict[str, Any]:
        """The client's page: the questions and the draft, or the answers once sent."""
        return questionnaire_page(store.questionnaire_by_token(self.db, token))

    @rpc
    def save_questionnaire_draft(self, token: str, answers: dict[str, Any]) -> dict[str, Any]:
        """What the client has typed so far (saved as they type: a closed tab loses
        nothing); what is not valid yet is simply not kept."""
        found = store.questionnaire_by_token(self.db, token, lock=True)
        if found.status == "submitted":
            raise Conflict("Анкета уже отправлена.", field="token", key="questionnaire.sent")
        found.draft = questionnaires.clean_answers(found.fields, answers, final=False)
        found.status, found.draft_saved_at = "draft", clock.now()
        return {"saved_at": found.draft_saved_at}

    @rpc
    def submit_questionnaire(self, token: str, answers: dict[str, Any]) -> dict[str, Any]:
        """The answers, checked against every question; stored on the deal's questionnaire
        and published (deals' feed, the manager's notice).  Read-only afterwards."""
        found = store.questionnaire_by_token(self.db, token, lock=True)
        if found.status == "submitted":
            raise Conflict("Анкета уже отправлена.", field="token", key="questionnaire.sent")
        found.answers = questionnaires.clean_answers(found.fields, answers, final=True)
        found.status, found.submitted_at, found.draft = "submitted", clock.now(), {}
        self.db.flush()
        self.db.emit("questionnaire_filled", {
            "questionnaire_id": found.id, "deal_id": found.deal_id,
            "deal_name": found.deal_name, "client_id": found.client_id,
            "manager_id": found.manager_id, "name": found.name, "title": found.name,
            "answers": questionnaires.summary(found.fields, found.answers)})
        return questionnaire_dict(found)

    @rpc
    def questionnaire_file(self, questionnaire_id: int | None = None,
                           token: str | None = None, key: str = "") -> dict[str, Any]:
        """The metadata of a file answer, only through its questionnaire (by id for the
        manager, by token for the client)."""
        found = (store.questionnaire_by_token(self.db, token) if token else
                 store.questionnaire(self.db, questionnaire_id))
        if found is None:
            raise NotFound("no such questionnaire", entity="questionnaire")
        for value in list((found.answers or {}).values()) + list((found.draft or {}).values()):
            if isinstance(value, dict) and value.get("key") == key:
                return value
        raise NotFound("no such file", entity="file")
