"""Reading datasets in Amazon Personalize's own formats: CSV files plus Avro-style schemas.

A schema is the JSON Personalize's CreateSchema takes::

    {"type": "record", "name": "Interactions",
     "namespace": "com.amazonaws.personalize.schema",
     "fields": [{"name": "USER_ID", "type": "string"}, ...,
                {"name": "GENRES", "type": ["null", "string"], "categorical": true}],
     "version": "1.0"}

The CSV's header names the columns. Every bad row is reported with its file, line and
column — never dropped silently — and ``LoadReport`` counts rows read, kept and
rejected. A file that cannot be read as UTF-8 text raises ``DatasetFileError`` naming
it. With ``strict=True`` (the default) any rejected row makes ``load_dataset``
raise ``DatasetError`` listing the problems; with ``strict=False`` the good rows are
kept and the problems are returned in the reports.

The result is the same ``Dataset`` container the engine fits on. Items that appear in
interactions but not in the Items file join the catalogue with empty metadata, as in
Personalize, where the item catalogue is the union of both datasets.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from .data import Column, Dataset, Interactions, Table

PathLike = str | Path

_NUMERIC = {"int", "long", "float", "double"}
_INTEGRAL = {"int", "long"}
_TYPES = _NUMERIC | {"string", "boolean"}
_REQUIRED: Mapping[str, Mapping[str, set[str]]] = {
    "interactions": {"USER_ID": {"string"}, "ITEM_ID": {"string"}, "TIMESTAMP": {"long", "int"}},
    "items": {"ITEM_ID": {"string"}},
    "users": {"USER_ID": {"string"}},
}
MAX_REPORTED_ERRORS = 1000
"""Per file; beyond this only the count grows, so a broken file cannot exhaust memory."""


class SchemaError(ValueError):
    """A schema file that is not a valid Personalize schema for its dataset type."""


class DatasetFileError(ValueError):
    """A CSV or schema file that cannot be read as UTF-8 text; the message names it."""


@dataclass(frozen=True)
class RowError:
    """One rejected row: where it is and what is wrong with it."""

    file: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        col = f" column {self.column}:" if self.column else ""
        return f"{self.file}:{self.line}:{col} {self.message}"


class DatasetError(ValueError):
    """Rows were rejected while loading strictly; ``errors`` lists them."""

    def __init__(self, errors: Sequence[RowError], rejected: int) -> None:
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {rejected - 20} more" if rejected > 20 else ""
        super().__init__(f"{rejected} row(s) rejected:\n{shown}{more}")
        self.errors = tuple(errors)
        self.rejected = rejected

    @property
    def summary(self) -> str:
        """The first problem, and how many more rows were rejected, on one line."""
        if not self.errors:
            return f"{self.rejected} row(s) rejected"
        more = f" (and {self.rejected - 1} more row(s) rejected)" if self.rejected > 1 else ""
        return f"{self.errors[0]}{more}"


@dataclass(frozen=True)
class FieldSpec:
    """One schema field: Avro type, whether it may be null, and Personalize's flags."""

    name: str
    type: str
    nullable: bool
    categorical: bool = False
    textual: bool = False


@dataclass(frozen=True)
class Schema:
    """A parsed Personalize schema, fields by upper-case name in declaration order."""

    name: str
    fields: Mapping[str, FieldSpec]


@dataclass
class LoadReport:
    """What happened to one file's rows."""

    file: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def reject(self, line: int, column: str | None, message: str) -> None:
        self.rows_rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(self.file, line, column, message))


@dataclass(frozen=True)
class LoadedDataset:
    """The dataset and one report per file read (interactions, then items, then users)."""

    dataset: Dataset
    reports: Mapping[str, LoadReport]


def parse_schema(text: str, dataset_type: str, source: str = "<schema>") -> Schema:
    """Parse and check a schema for ``dataset_type`` (interactions, items or users)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "record":
        raise SchemaError(f'{source}: a schema is a JSON object with "type": "record"')
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise SchemaError(f"{source}: fields must be a non-empty list")
    fields: dict[str, FieldSpec] = {}
    for i, raw in enumerate(raw_fields):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SchemaError(f"{source}: fields[{i}] needs a name")
        name = raw["name"].upper()
        kind, nullable = _field_type(raw.get("type"), f"{source}: field {name}")
        if name in fields:
            raise SchemaError(f"{source}: field {name} declared twice")
        categorical, textual = bool(raw.get("categorical")), bool(raw.get("textual"))
        if (categorical or textual) and kind != "string":
            raise SchemaError(f"{source}: field {name} is {kind}; only strings are categorical")
        fields[name] = FieldSpec(name, kind, nullable, categorical, textual)
    for name, kinds in _REQUIRED[dataset_type].items():
        spec = fields.get(name)
        if spec is None or spec.type not in kinds or spec.nullable:
            want = " or ".join(sorted(kinds))
            raise SchemaError(f"{source}: {dataset_type} need a non-null {want} field {name}")
    return Schema(str(doc.get("name", dataset_type)), fields)


def _field_type(raw: Any, where: str) -> tuple[str, bool]:
    options = raw if isinstance(raw, list) else [raw]
    nullable = "null" in options
    kinds = [o for o in options if o != "null"]
    if len(kinds) != 1 or kinds[0] not in _TYPES:
        raise SchemaError(f"{where}: type {raw!r} is not one of {sorted(_TYPES)} (or null)")
    return str(kinds[0]), nullable


def load_dataset(
    interactions: tuple[PathLike, PathLike],
    *,
    items: tuple[PathLike, PathLike] | None = None,
    users: tuple[PathLike, PathLike] | None = None,
    strict: bool = True,
) -> LoadedDataset:
    """Load (csv, schema) pairs into a ``Dataset``; see the module docstring for errors."""
    reports: dict[str, LoadReport] = {}
    item_rows = (
        _read("items", *items, reports, unique="ITEM_ID") if items is not None else ([], None)
    )
    user_rows = (
        _read("users", *users, reports, unique="USER_ID") if users is not None else ([], None)
    )
    inter_rows = _read("interactions", *interactions, reports)
    if strict:
        problems = [e for r in reports.values() for e in r.errors]
        rejected = sum(r.rows_rejected for r in reports.values())
        if rejected:
            raise DatasetError(problems, rejected)

    rows, schema = inter_rows
    assert schema is not None
    item_ids = [str(r["ITEM_ID"]) for r in item_rows[0]]
    item_index = {i: n for n, i in enumerate(item_ids)}
    user_ids = [str(r["USER_ID"]) for r in user_rows[0]]
    user_index = {u: n for n, u in enumerate(user_ids)}
    n_rows = len(rows)
    user = np.empty(n_rows, dtype=np.int32)
    item = np.empty(n_rows, dtype=np.int32)
    ts = np.empty(n_rows, dtype=np.int64)
    event = np.zeros(n_rows, dtype=np.int8)
    event_types: dict[str, int] = {}
    for n, r in enumerate(rows):
        user[n] = user_index.setdefault(str(r["USER_ID"]), len(user_index))
        item[n] = item_index.setdefault(str(r["ITEM_ID"]), len(item_index))
        ts[n] = int(r["TIMESTAMP"])
        if "EVENT_TYPE" in schema.fields:
            code = event_types.setdefault(str(r["EVENT_TYPE"] or ""), len(event_types))
            if code > 127:
                raise DatasetError(
                    [RowError(reports["interactions"].file, 0, "EVENT_TYPE", "over 128 types")],
                    1,
                )
            event[n] = code
    # A dataset without EVENT_TYPE has one anonymous event type, as in Personalize.
    types = tuple(event_types) if event_types else ("",)
    extra: dict[str, NDArray[Any]] = {}
    for name, spec in schema.fields.items():
        if name in _REQUIRED["interactions"] or name == "EVENT_TYPE":
            continue
        if spec.type in _NUMERIC:
            extra[name] = np.array(
                [np.nan if r[name] is None else r[name] for r in rows], dtype=np.float64
            )
        else:
            extra[name] = np.array([r[name] or "" for r in rows], dtype=object)
    all_user_ids = [""] * len(user_index)
    for u, n in user_index.items():
        all_user_ids[n] = u
    all_item_ids = [""] * len(item_index)
    for i, n in item_index.items():
        all_item_ids[n] = i
    dataset = Dataset(
        _table("ITEM_ID", all_item_ids, item_rows[0], item_rows[1]),
        _table("USER_ID", user_ids, user_rows[0], user_rows[1]),
        Interactions.build(all_user_ids, user, item, ts, event, types, extra),
    )
    return LoadedDataset(dataset, reports)


def _read(
    dataset_type: str,
    csv_path: PathLike,
    schema_path: PathLike,
    reports: dict[str, LoadReport],
    *,
    unique: str | None = None,
) -> tuple[list[dict[str, Any]], Schema | None]:
    try:
        text = Path(schema_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFileError(_unreadable(schema_path, exc)) from None
    schema = parse_schema(text, dataset_type, str(schema_path))
    report = LoadReport(str(csv_path))
    reports[dataset_type] = report
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with _open_text(csv_path) as handle:
        reader = csv.reader(_text_lines(handle, csv_path))
        header = next(reader, None)
        if header is None:
            raise SchemaError(f"{csv_path}: empty file (a header row is required)")
        names = [h.strip().upper() for h in header]
        unknown = [n for n in names if n not in schema.fields]
        if unknown:
            raise SchemaError(f"{csv_path}:1: columns not in the schema: {', '.join(unknown)}")
        missing = [f.name for f in schema.fields.values() if f.name not in names and not f.nullable]
        if missing:
            raise SchemaError(f"{csv_path}:1: missing non-null columns: {', '.join(missing)}")
        absent = [f for f in schema.fields if f not in names]
        for cells in reader:
            line = reader.line_num
            if not cells:  # csv yields [] for a blank line; it holds no row to lose
                continue
            report.rows_read += 1
            row = _parse_row(cells, names, schema, report, line)
            if row is None:
                continue
            for name in absent:
                row[name] = None
            if unique is not None:
                key = str(row[unique])
                if key in seen:
                    report.reject(line, unique, f"duplicate {unique} {key!r}")
                    continue
                seen.add(key)
            out.append(row)
            report.rows_kept += 1
    return out, schema


def _unreadable(path: PathLike, exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"{path}: not UTF-8 text: {exc.reason}"
    return f"cannot read {path}: {exc.strerror or exc}"


def _open_text(path: PathLike) -> TextIO:
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetFileError(_unreadable(path, exc)) from None


def _text_lines(handle: Iterator[str], path: PathLike) -> Iterator[str]:
    # The file is decoded a block at a time as the reader asks for lines, so a bad byte
    # anywhere surfaces here; its line is not known (the block holds many).
    try:
        yield from handle
    except UnicodeDecodeError as exc:
        raise DatasetFileError(_unreadable(path, exc)) from None


def _parse_row(
    cells: list[str], names: list[str], schema: Schema, report: LoadReport, line: int
) -> dict[str, Any] | None:
    if len(cells) != len(names):
        report.reject(line, None, f"has {len(cells)} cells, the header has {len(names)}")
        return None
    row: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=True):
        spec = schema.fields[name]
        if cell == "":
            if not spec.nullable:
                report.reject(line, name, "is empty but the schema does not allow null")
                return None
            row[name] = None
            continue
        if spec.type in _NUMERIC:
            try:
                value: Any = int(cell) if spec.type in _INTEGRAL else float(cell)
            except ValueError:
                report.reject(line, name, f"{cell!r} is not a valid {spec.type}")
                return None
            row[name] = value
        elif spec.type == "boolean":
            if cell.lower() not in ("true", "false"):
                report.reject(line, name, f"{cell!r} is not true or false")
                return None
            row[name] = cell.lower()
        else:
            if len(cell) > 256 and name.endswith("_ID"):
                report.reject(line, name, "ids are at most 256 characters")
                return None
            row[name] = cell
    return row


def _table(
    id_column: str, ids: Sequence[str], rows: list[dict[str, Any]], schema: Schema | None
) -> Table:
    """A metadata table over ``ids`` (file rows first, then ids only seen in interactions)."""
    columns: list[Column] = []
    if schema is not None:
        padding = len(ids) - len(rows)
        for spec in schema.fields.values():
            if spec.name == id_column:
                continue
            if spec.type in _NUMERIC:
                numbers = np.array(
                    [np.nan if r[spec.name] is None else r[spec.name] for r in rows]
                    + [np.nan] * padding,
                    dtype=np.float64,
                )
                columns.append(Column.numeric(spec.name, numbers, integer=spec.type in _INTEGRAL))
                continue
            values = [r[spec.name] or "" for r in rows] + [""] * padding
            if spec.categorical or spec.type == "boolean":
                # Cells keep their "a|b" text; filters split multi-values per vocabulary entry.
                columns.append(Column.categorical(spec.name, values))
            else:
                columns.append(Column.text(spec.name, values))
    return Table.build(id_column, ids, columns)
