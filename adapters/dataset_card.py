"""`DATASET.card.toml`, beside a dataset: the checkable format of its replies and the prompted baseline.

[format]
regex = '''...'''                 # a reply must match it whole (optional)
json_schema = "reply.schema.json" # a reply must be JSON valid against it (optional; a path or a table)

[prompting]
instructions = "..."              # the house style, written as instructions, for the baselines
few_shot = 3                      # examples from the training split shown in the few-shot baseline
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragserve.errors import DatasetError, validation_problems
from ragserve.files import read_toml

__all__ = ["DatasetCard", "FormatSpec", "card_path_for"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Format(_Strict):
    regex: str | None = None
    json_schema: str | dict[str, Any] | None = None


class _Prompting(_Strict):
    instructions: str = ""
    few_shot: Annotated[int, Field(ge=0, le=20)] = 3


class _CardFile(_Strict):
    format: _Format = _Format()
    prompting: _Prompting = _Prompting()


@dataclass(frozen=True)
class FormatSpec:
    regex: re.Pattern[str] | None
    schema: dict[str, Any] | None

    @property
    def defined(self) -> bool:
        return self.regex is not None or self.schema is not None

    def matches(self, reply: str) -> bool:
        text = reply.strip()
        if self.regex is not None and not self.regex.fullmatch(text):
            return False
        if self.schema is not None:
            import jsonschema

            try:
                jsonschema.validate(json.loads(text), self.schema)
            except (ValueError, jsonschema.ValidationError):
                return False
        return True


@dataclass(frozen=True)
class DatasetCard:
    path: Path | None
    format: FormatSpec
    instructions: str
    few_shot: int

    @classmethod
    def empty(cls) -> "DatasetCard":
        return cls(None, FormatSpec(None, None), "", 3)

    @classmethod
    def for_dataset(cls, dataset: Path) -> "DatasetCard":
        path = card_path_for(dataset)
        return cls.read(path) if path.is_file() else cls.empty()

    @classmethod
    def read(cls, path: Path) -> "DatasetCard":
        try:
            card = _CardFile.model_validate(read_toml(path, DatasetError))
        except ValidationError as exc:
            raise DatasetError(f"{path}: {validation_problems(exc)}") from None
        return cls(path, _format(path, card.format), card.prompting.instructions, card.prompting.few_shot)


def card_path_for(dataset: Path) -> Path:
    return dataset.with_name(f"{dataset.stem}.card.toml")


def _format(path: Path, spec: _Format) -> FormatSpec:
    try:
        regex = re.compile(spec.regex, re.DOTALL) if spec.regex else None
    except re.error as exc:
        raise DatasetError(f"{path}: format.regex does not compile: {exc}") from exc
    schema = spec.json_schema
    if isinstance(schema, str):
        schema_path = path.parent / schema
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: format.json_schema {schema_path} is unreadable: {exc}") from exc
    if schema is not None:
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise DatasetError(f"{path}: format.json_schema is not a valid schema: {exc.message}") from exc
    return FormatSpec(regex, schema if isinstance(schema, dict) else None)
