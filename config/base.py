"""Shared base for every configuration model."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Unknown keys are errors: a typo must never silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)
