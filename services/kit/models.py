"""The base of every request and response body: snake_case in Python, camelCase in JSON.

`CamelModel` reads a field by its camelCase alias or its Python name and writes it by its
alias (FastAPI serialises responses by alias). `from_attributes` lets a response schema be
built from a repository row (`UserOut.model_validate(row)`), so no service writes a mapper
field by field. Unknown fields are ignored, as the seed's clients expect; a service that must
refuse them (a misspelt field silently lost) sets `extra="forbid"` on its request bodies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )
