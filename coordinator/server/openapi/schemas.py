"""JSON Schemas from the wire models of `coordinator.core.models` and from the
job types' settings.

A small converter for the typing forms the models use: TypedDicts (each a
component, referenced by `$ref`), `Annotated[T, "description", Limits(...)]`,
`NotRequired`, `Literal`, str enums, `list`, `dict`, unions with None and
`NewType` (a component supplied from elsewhere, such as JobSettings). Every
object the models describe is closed (`additionalProperties: false`): a
field the server sends that the models do not name is drift, and the API
tests fail on it.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Sequence
from typing import Any, NotRequired, Required

from coordinator.core.models import UNSET, Limits
from coordinator.server.job_types import REGISTRY, JobType
from coordinator.server.job_types.schema import Setting

JSON = dict[str, Any]
REF = "#/components/schemas/"

_PLAIN: dict[Any, JSON] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
}
_JSON_TYPE = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Keywords that apply to values of one JSON type only, so a union may carry them.
_TYPE_BOUND = {"minimum", "maximum", "maxLength", "pattern"}


def ref(name: str) -> JSON:
    return {"$ref": REF + name}


class Components:
    """The schemas a document's operations reach, collected as they are converted.

    `supplied` holds components made elsewhere (job settings), which a NewType
    of the same name refers to.
    """

    def __init__(self, supplied: dict[str, JSON] | None = None) -> None:
        self.supplied = dict(supplied or {})
        self.schemas: dict[str, JSON] = {}  # of the models, in the order they were reached
        self.models: dict[str, type] = {}  # component name -> the TypedDict it came from

    def all(self) -> dict[str, JSON]:
        """The models' schemas, then the supplied ones."""
        return {**self.schemas, **self.supplied}

    def of(self, tp: Any) -> JSON:
        """The schema of a type; a TypedDict becomes a component and a `$ref` to it."""
        tp, description, limits = _unwrap(tp)
        schema = self._type(tp)
        return _annotate(schema, description, limits)

    def _type(self, tp: Any) -> JSON:
        if typing.is_typeddict(tp):
            return self._model(tp)
        if isinstance(tp, typing.NewType):
            if tp.__name__ not in self.supplied:
                raise ValueError(f"{tp.__name__}: no component supplied for this NewType")
            return ref(tp.__name__)
        if tp in _PLAIN:
            return dict(_PLAIN[tp])
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum([member.value for member in tp])
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Literal:
            return _enum(list(args))
        if origin is list:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return self._mapping(args[0], args[1])
        if origin in (typing.Union, types.UnionType):
            return self._union(args)
        raise TypeError(f"no JSON Schema for {tp!r}")

    def _model(self, model: Any) -> JSON:
        name = model.__name__
        known = self.models.get(name)
        if (known is not None and known is not model) or name in self.supplied:
            raise ValueError(f"two schemas are called {name}")
        if known is None:
            self.models[name] = model
            self.schemas[name] = {}  # taken: a model may refer to itself
            self.schemas[name] = self._object(model)
        return ref(name)

    def _object(self, model: Any) -> JSON:
        hints = typing.get_type_hints(model, include_extras=True)
        required = [name for name in hints if name in model.__required_keys__]
        schema: JSON = {"type": "object", "description": _docstring(model)}
        schema["properties"] = {name: self.of(hint) for name, hint in hints.items()}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def _mapping(self, key: Any, value: Any) -> JSON:
        schema: JSON = {"type": "object"}
        key_schema = self.of(key)
        if "enum" in key_schema:
            schema["propertyNames"] = {"enum": key_schema["enum"]}
        if value is not Any:
            schema["additionalProperties"] = self.of(value)
        return schema

    def _union(self, args: Sequence[Any]) -> JSON:
        """`str | None` -> {"type": ["string", "null"]}; unions of objects -> anyOf."""
        options = [self.of(arg) for arg in args]
        merged: JSON = {"type": []}
        for option in options:
            kind, rest = option.get("type"), {k: v for k, v in option.items() if k != "type"}
            if not isinstance(kind, str) or set(rest) - _TYPE_BOUND or set(rest) & set(merged):
                return {"anyOf": options}
            merged["type"].append(kind)
            merged.update(rest)
        return merged


def _unwrap(tp: Any) -> tuple[Any, str, list[Limits]]:
    """The type inside NotRequired/Required/Annotated, its description and its limits."""
    description, limits = "", []
    while True:
        origin = typing.get_origin(tp)
        if origin in (NotRequired, Required):
            tp = typing.get_args(tp)[0]
        elif origin is typing.Annotated:
            for extra in tp.__metadata__:
                if isinstance(extra, str):
                    description = description or extra
                elif isinstance(extra, Limits):
                    limits.append(extra)
            tp = tp.__origin__
        else:
            return tp, description, limits


def _annotate(schema: JSON, description: str, limits: list[Limits]) -> JSON:
    out = dict(schema)
    if description:
        out["description"] = description
    for limit in limits:
        for key, value in (
            ("minimum", limit.minimum),
            ("maximum", limit.maximum),
            ("maxLength", limit.max_length),
            ("pattern", limit.pattern),
        ):
            if value is not None:
                out[key] = value
        if limit.default is not UNSET:
            out["default"] = limit.default
        if limit.example is not UNSET:
            out["examples"] = [limit.example]
    return out


def _enum(values: list[Any]) -> JSON:
    kinds = {_JSON_TYPE.get(type(v)) for v in values}
    schema: JSON = {"enum": values}
    if len(kinds) == 1 and None not in kinds:
        schema = {"type": kinds.pop(), "enum": values}
    return schema


def _docstring(model: Any) -> str:
    return " ".join((model.__doc__ or "").split())


# ------------------------------------------------------------ job settings
def job_settings_components(registry: dict[str, JobType] = REGISTRY) -> dict[str, JSON]:
    """One closed schema per job type's settings, and JobSettings: any of them."""
    out: dict[str, JSON] = {}
    for job_type in registry.values():
        out[settings_name(job_type.name)] = _settings_schema(job_type)
    out["JobSettings"] = {
        "type": "object",
        "description": "A job's settings: those of its job type, one of the schemas below"
        " (GET /job-types describes them for forms). A request may leave out any"
        " setting that is not required; answers carry every one, defaults filled in.",
        "anyOf": [ref(name) for name in out],
    }
    return out


def settings_name(job_type: str) -> str:
    """'blender-render' -> 'BlenderRenderSettings'."""
    return "".join(part.capitalize() for part in job_type.split("-")) + "Settings"


def _settings_schema(job_type: JobType) -> JSON:
    schema: JSON = {
        "type": "object",
        "description": f"Settings of a `{job_type.name}` job ({job_type.label}):"
        f" {job_type.description}",
        "properties": {s.name: _setting_schema(s) for s in job_type.schema},
    }
    required = [s.name for s in job_type.schema if s.required]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


_SETTING_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}


def _setting_schema(setting: Setting) -> JSON:
    kind = _SETTING_TYPES.get(setting.type, "string")
    # A setting that is not required may be unset: null.
    out: JSON = {"type": kind if setting.required else [kind, "null"]}
    out["description"] = " ".join(t for t in (f"{setting.label}:", setting.description) if t)
    if setting.choices:
        out["enum"] = [*setting.choices, *([] if setting.required else [None])]
    if setting.minimum is not None:
        out["minimum"] = setting.minimum
    if setting.maximum is not None:
        out["maximum"] = setting.maximum
    if setting.type in ("str", "choice"):
        out["maxLength"] = setting.max_length
    if not setting.required:
        out["default"] = setting.default
    return out
