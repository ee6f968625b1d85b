"""The base of every request and response body, and the value types every service's input uses.

`CamelModel` reads a field by its camelCase alias or its Python name and writes it by its
alias (FastAPI serialises responses by alias). `from_attributes` lets a response schema be
built from a repository row (`UserOut.model_validate(row)`), so no service writes a mapper
field by field; where a schema or a statement also needs values the row does not hold,
`row_fields(row)` gives the row's fields to add them to (not `dataclasses.asdict`, which
deep-copies every value only for the model or the driver to copy it again).

`RequestModel` is the base of every request body: a field the model does not declare is
refused with a 422 naming it, so a misspelt field (a status change's `note` for `notes`) is
never silently lost and a client cannot smuggle fields it should not set (`role`, `price`).

Input types. Whatever a client sends must be refused as a 422 before it reaches PostgreSQL,
which answers some values with an error that would otherwise be a 500:

- `Text` (one line) and `MultilineText` (also tab, LF and CR) refuse NUL, which PostgreSQL's
  text and JSONB cannot hold, the other C0 controls and DEL (they have no business in a name or
  an address, and a CR or LF in a one-line field could split a header or a mail subject built
  from it later), and lone UTF-16 surrogates (JSON's `"\\ud800"`), which cannot be encoded as
  UTF-8. Use them for every free-text field, body or query parameter. A field with length or
  stripping constraints puts the check after them, `Annotated[str, StringConstraints(...),
  NoControls]`: constraints written around `Text` (`Annotated[Text, StringConstraints(...)]`)
  are no longer pushed into the string schema, and pydantic then silently skips stripping.
- `Int4` / `Version` / `PageOffset`: integers within PostgreSQL's `integer`, so an overflowing
  number is a 422, not `integer out of range`.
"""

from __future__ import annotations

import re
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

INT4_MAX = 2**31 - 1
MAX_PAGE_OFFSET = 100_000
"""The deepest offset a page may start at; deeper reads go through filters or cursors."""

_CONTROLS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROLS_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def refuse_controls(value: str) -> str:
    """`value`, unless it holds a control character or a lone surrogate (then `ValueError`)."""
    if _CONTROLS.search(value):
        raise ValueError("must not contain control characters (such as NUL, tab or newline)")
    return value


def refuse_controls_but_whitespace(value: str) -> str:
    """`value`, unless it holds a control character other than tab, LF and CR."""
    if _CONTROLS_BUT_WHITESPACE.search(value):
        raise ValueError("must not contain control characters such as NUL")
    return value


NoControls = AfterValidator(refuse_controls)
NoControlsButWhitespace = AfterValidator(refuse_controls_but_whitespace)
Text = Annotated[str, NoControls]
"""One line of text: no NUL, no other C0 control, no DEL, no lone surrogate."""
MultilineText = Annotated[str, NoControlsButWhitespace]
"""Text that may span lines (tab, LF, CR); otherwise as `Text`."""
Int4 = Annotated[int, Field(ge=-INT4_MAX - 1, le=INT4_MAX)]
"""An integer PostgreSQL's `integer` can hold."""
Version = Annotated[int, Field(ge=1, le=INT4_MAX)]
"""A row's version, as in an `expectedVersion` or `If-Match`."""
PageOffset = Annotated[int, Field(ge=0, le=MAX_PAGE_OFFSET)]
"""Where an offset page starts."""


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )


class RequestModel(CamelModel):
    """A request body: unknown fields are refused with a 422 naming them."""

    model_config = ConfigDict(extra="forbid")


@cache
def _field_names(row_type: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(row_type))


def row_fields(row: DataclassInstance) -> dict[str, Any]:
    """A dataclass row's fields by name, each value as it is (see the module docstring)."""
    return {name: getattr(row, name) for name in _field_names(type(row))}
