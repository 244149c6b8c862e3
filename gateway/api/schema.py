"""One set of pydantic models that validates what an API endpoint receives and documents it.

An endpoint declares its schemas once::

    @bp.route("/deals", methods=["POST"])
    @endpoint(body=DealCreate, response=Deal, status=201)
    def deals_create(body: DealCreate) -> Any:
        return remote("deals", "create_deal", body.sent(), user_id=g.user.id)

``body``/``query`` models are validated before the view runs (the view gets the model
instances as keyword arguments); a wrong input is a 422 with every wrong field at once in
the same ``field``/``key``/``params`` form services use.  The view returns plain data (or
``(data, status)``), which is sent as JSON.  The OpenAPI document (``openapi.py``) is built
from the same models, so what is documented is what is checked.

The field types below (``Id``, ``Text``, ``Money``...) call ``services.kit.parse``, so the
edge refuses exactly what the services would, before any RPC.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from flask import jsonify, request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    RootModel,
    Strict,
    WithJsonSchema,
)
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError, core_schema

from services.kit import parse
from services.kit.errors import ValidationError

T = TypeVar("T")


def _kit(parser: Callable[..., Any], **kwargs: Any) -> Callable[[Any], Any]:
    """A pydantic validator that runs a kit parser and keeps its key and params."""

    def run(value: Any, info: Any = None) -> Any:
        try:
            return parser(value, "", **kwargs)
        except ValidationError as exc:
            raise PydanticCustomError(exc.key or "field.invalid", exc.message,
                                      exc.params) from None

    return run


# --- field types -------------------------------------------------------------------------

Id = Annotated[int, BeforeValidator(_kit(parse.identifier)),
               WithJsonSchema({"type": "integer", "minimum": 1, "maximum": parse.MAX_ID})]
# JSON true/false only (pydantic would otherwise take 0, 1, "yes" for a flag)
Bool = Annotated[bool, Strict()]
# a key of a small reference table (users, statuses, stages, types, reasons): INTEGER
SmallId = Annotated[int, BeforeValidator(_kit(parse.identifier, limit=parse.MAX_SMALL_ID)),
                    WithJsonSchema({"type": "integer", "minimum": 1,
                                    "maximum": parse.MAX_SMALL_ID})]
Version = Annotated[int, BeforeValidator(_kit(parse.version, required=True)),
                    WithJsonSchema({"type": "integer", "minimum": 1,
                                    "maximum": parse.MAX_ID,
                                    "description": "the version you read (optimistic lock)"})]
Money = Annotated[Decimal, BeforeValidator(_kit(parse.money)),
                  PlainSerializer(lambda d: parse.money_str(d), return_type=str),
                  # a whole number is taken too (parse.money): the document says so, so
                  # that a caller sending 0 is not told it broke the contract
                  WithJsonSchema({"anyOf": [
                      {"type": "string", "pattern": r"^\d{1,12}([.,]\d{1,2})?$"},
                      {"type": "integer", "minimum": 0,
                       "maximum": int(parse.MAX_AMOUNT)}],
                      "description": "amount as a decimal string (≤ 2 decimals) or a whole "
                                     "number; answers always carry a string"})]
Day = Annotated[date, BeforeValidator(_kit(parse.day)),
                WithJsonSchema({"type": "string", "format": "date"})]
Moment = Annotated[datetime, BeforeValidator(_kit(parse.moment)),
                   WithJsonSchema({"type": "string", "format": "date-time"})]


@dataclass(frozen=True)
class Limit:
    """Text of at most ``max`` characters, stripped, without NUL or lone surrogates:
    ``name: Annotated[str, Limit(200)]``; ``required=False`` lets it be blank."""

    max: int = parse.TEXT_LIMIT
    required: bool = True

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return core_schema.no_info_before_validator_function(
            _kit(parse.text, limit=self.max, required=self.required), handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "maxLength": self.max}
        if self.required:
            out["pattern"] = r"\S"
        else:  # null is taken as blank (clears the field)
            out["type"] = ["string", "null"]
        return out


Text = Annotated[str, Limit()]


class Input(BaseModel):
    """Base of request models: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    def sent(self) -> dict[str, Any]:
        """What the caller sent, JSON-safe (money as strings): the RPC's input."""
        return self.model_dump(mode="json", exclude_unset=True)


class Query(BaseModel):
    """Base of query-string models: parameters of the whole site (``lang``) pass by."""

    model_config = ConfigDict(extra="ignore")


class Output(BaseModel):
    """Base of response models: the fields named are promised; services may add more."""

    model_config = ConfigDict(extra="allow")


class Items(RootModel[list[T]], Generic[T]):
    """A JSON array of ``T``."""


# --- pydantic's own errors in our form ----------------------------------------------------

# pydantic error type -> our message key (and which of its ctx values are the params)
PYDANTIC_KEYS: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "field.unknown",
    "int_type": "number.int", "int_parsing": "number.int", "int_from_float": "number.int",
    "int_parsing_size": "id.too_large",
    "string_type": "text.invalid", "string_too_long": "text.too_long",
    "bool_type": "bool.invalid", "bool_parsing": "bool.invalid",
    "literal_error": "choice.invalid", "enum": "choice.invalid",
    "list_type": "list.invalid", "too_long": "list.too_long", "too_short": "list.too_short",
    "dict_type": "object.invalid", "model_type": "object.invalid",
    "model_attributes_type": "object.invalid",
    "greater_than_equal": "number.min", "greater_than": "number.min",
    "less_than_equal": "number.max", "less_than": "number.max",
    "date_type": "date.invalid", "date_parsing": "date.invalid",
    "date_from_datetime_parsing": "date.invalid",
    "datetime_type": "datetime.invalid", "datetime_parsing": "datetime.invalid",
    "datetime_from_date_parsing": "datetime.invalid",
}
FALLBACK_KEY = "field.invalid"
# the keys pydantic's context calls differently
_PARAMS = {"max_length": "max", "min_length": "min", "ge": "min", "gt": "min", "le": "max",
           "lt": "max", "expected": "options"}


def from_pydantic(exc: PydanticError, prefix: str = "") -> ValidationError:
    """All of pydantic's errors as one kit ValidationError (``errors``: one per field)."""
    items: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        field_name = ".".join(p for p in (prefix, loc) if p) or prefix or "body"
        kind = error["type"]
        key = kind if "." in kind or kind == "required" else PYDANTIC_KEYS.get(kind,
                                                                                FALLBACK_KEY)
        ctx = error.get("ctx") or {}
        params = {_PARAMS.get(k, k): v if isinstance(v, (int, str, float)) else str(v)
                  for k, v in ctx.items() if k != "error"}
        if isinstance(params.get("options"), str):  # "'a', 'b' or 'c'" -> "a, b, c"
            params["options"] = str(params["options"]).replace("' or '", "', '").replace("'", "")
        if key == "choice.invalid" and "input" in error:
            params.setdefault("value", parse.shown(error["input"]))
        items.append({"field": field_name, "key": key, "params": params,
                      "message": error["msg"]})
    return ValidationError.many(items)


# --- the decorator ----------------------------------------------------------------------

@dataclass
class Spec:
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    statuses: dict[int, str] = field(default_factory=dict)
    content_type: str = "application/json"
    body_required: bool = True
    section: str | None = None
    content_types: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    upload: bool = False
    form: type[BaseModel] | None = None


SPECS: dict[Callable[..., Any], Spec] = {}


def endpoint(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: Any = None, status: int = 200, statuses: dict[int, str] | None = None,
             content_type: str = "application/json", body_required: bool = True,
             section: str | None = None, content_types: tuple[str, ...] = (),
             headers: dict[str, str] | None = None, upload: bool = False,
             form: type[BaseModel] | None = None,
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate ``body``/``query`` with these models and document the operation.

    ``section`` (e.g. ``"deals"``): the caller must be signed in with a role of it, checked
    before the input, so a stranger learns nothing about what a valid body looks like.

    ``response`` is the model (or ``Items[Model]``) of the ``status`` reply; ``None`` with
    204 means no content.  ``statuses`` adds other documented replies ``{409: "why"}``.
    A view that returns a Flask response (a file) is passed through unchanged: its
    ``content_types`` (all it may answer) and ``headers`` (name -> meaning) are documented.
    ``upload``: the body is a file (multipart field ``file``, or the raw body); ``form``:
    a url-encoded form validated by that model (webhooks)."""
    spec = Spec(body, query, response, status, dict(statuses or {}), content_type,
                body_required, section, tuple(content_types), dict(headers or {}), upload,
                form)

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def run(**path: Any) -> Any:
            if section is not None:
                from gateway.api import need  # the blueprint module imports this one

                need(section)
            kwargs = dict(path)
            if query is not None:
                kwargs["query"] = validate(query, request.args.to_dict(), "")
            if body is not None:
                kwargs["body"] = validate(body, request_body(body_required), "")
            if form is not None:
                kwargs["form"] = validate(form, request.form.to_dict(), "")
            result = view(**kwargs)
            code = status
            if isinstance(result, tuple):
                result, code = result[0], result[1]
                if hasattr(result, "status_code"):  # (a response, its status)
                    result.status_code = code
            if hasattr(result, "status_code"):  # a response made by the view (a file)
                return result
            if code == 204:
                return "", 204
            return jsonify(_plain(result)), code

        SPECS[run] = spec
        return run

    return wrap


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, prefix: str) -> M:
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise from_pydantic(exc, prefix) from None


def request_body(required: bool) -> Any:
    data = request.get_json(silent=True)
    if data is None and not required and not request.get_data(cache=True):
        return {}
    if not isinstance(data, dict):
        raise ValidationError("Тело запроса должно быть объектом JSON.", "body",
                              key="body.invalid")
    return data


def _plain(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result
