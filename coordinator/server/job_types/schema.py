"""A small settings schema: validates job settings and describes them.

The same description is served to the add-on and the dashboard, which draw
their forms from it, so a new job type needs no client change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


class SettingsError(ValueError):
    """Job settings that do not fit the job type; names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.fields = [field]  # every bad field, when validate() found several
        super().__init__(f"setting '{field}': {message}")

    @classmethod
    def several(cls, errors: Sequence[SettingsError]) -> SettingsError:
        """One error naming every bad field, so a form can be fixed in one go.

        `field` stays the first one, for callers that mark a single field.
        """
        if len(errors) == 1:
            return errors[0]
        combined = cls(errors[0].field, "")
        combined.fields = [e.field for e in errors]
        combined.args = ("; ".join(str(e) for e in errors),)
        return combined


@dataclass(frozen=True)
class Setting:
    name: str  # key in the settings dict
    type: str  # "int", "float", "str", "bool", "choice"
    label: str  # what a form shows
    description: str = ""  # a tooltip: what it does, in an artist's words
    default: Any = None  # used when absent; None with required=False means "unset"
    required: bool = False  # must be given (default ignored)
    minimum: float | None = None  # for int/float
    maximum: float | None = None  # for int/float
    choices: tuple[str, ...] = ()  # for "choice"
    max_length: int = 4096  # for str
    check: Callable[[Any], Any] | None = None  # extra validation; returns the value to store

    def describe(self) -> JSON:
        out: JSON = {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "description": self.description,
            "required": self.required,
        }
        if not self.required:
            out["default"] = self.default
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def coerce(self, value: Any) -> Any:
        """Check one value's type and range; the CLI's strings are parsed first."""
        if value is None:
            if self.required:
                raise SettingsError(self.name, "is required")
            return None
        value = self._typed(value)
        if self.type in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise SettingsError(self.name, f"{value} is below the minimum {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise SettingsError(self.name, f"{value} is above the maximum {self.maximum:g}")
        if self.check is not None:
            try:
                value = self.check(value)
            except ValueError as ex:
                raise SettingsError(self.name, str(ex)) from ex
        return value

    def _typed(self, value: Any) -> Any:
        kind = self.type
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
                return False
            raise SettingsError(self.name, f"expected true or false, got {value!r}")
        if kind == "int":
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise SettingsError(
                        self.name, f"expected a whole number, got {value!r}"
                    ) from None
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(self.name, f"expected a whole number, got {value!r}")
            return value
        if kind == "float":
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise SettingsError(self.name, f"expected a number, got {value!r}") from None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(self.name, f"expected a number, got {value!r}")
            if not math.isfinite(value):
                raise SettingsError(self.name, f"expected a finite number, got {value!r}")
            return float(value)
        if not isinstance(value, str):
            raise SettingsError(self.name, f"expected text, got {value!r}")
        if len(value) > self.max_length or "\x00" in value:
            raise SettingsError(
                self.name, f"text is too long or has a NUL byte ({len(value)} chars)"
            )
        if kind == "choice" and value not in self.choices:
            if self.check is not None:
                # The check may know why a value is not offered (a movie format
                # for a frame render) and say so better than the list can.
                try:
                    self.check(value)
                except ValueError as ex:
                    raise SettingsError(self.name, str(ex)) from ex
            raise SettingsError(self.name, f"{value!r} is not one of {', '.join(self.choices)}")
        return value


def validate(schema: Sequence[Setting], settings: Mapping[str, Any]) -> JSON:
    """Settings with defaults filled in; unknown or bad fields raise SettingsError."""
    if not isinstance(settings, Mapping):
        raise SettingsError("settings", "expected an object of setting names to values")
    known = {s.name: s for s in schema}
    # Collect every problem before refusing (it used to stop at the first).
    errors: list[SettingsError] = []
    for key in settings:
        if key not in known:
            names = ", ".join(sorted(known))
            errors.append(
                SettingsError(str(key), f"unknown setting for this job type (known: {names})")
            )
    out: JSON = {}
    for setting in schema:
        value = settings.get(setting.name)
        if value is None and not setting.required:
            value = setting.default  # null or absent: the type's default
        try:
            out[setting.name] = setting.coerce(value)
        except SettingsError as ex:
            errors.append(ex)
    if errors:
        raise SettingsError.several(errors)
    return out


MAX_TASKS_PER_JOB = 100_000


def check_task_count(count: int) -> None:
    """Refuse a job of too many tasks; job types call it before building them."""
    if count > MAX_TASKS_PER_JOB:
        raise SettingsError(
            "settings",
            f"this job would have {count} tasks; the limit is {MAX_TASKS_PER_JOB}."
            " Use a larger chunk size.",
        )
