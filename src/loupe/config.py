"""``loupe.toml`` → validated settings.

This is the only module that reads settings.  Every section is a pydantic model with
``extra="forbid"``; a misspelt key gets a "did you mean …?" hint and every error names the
file and the dotted key, ready for the CLI to print.
"""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loupe.errors import ConfigError
from loupe.models.settings import ModelsSettings
from loupe.profile.settings import ProfileSettings
from loupe.segments.settings import SegmentSettings

CONFIG_NAME = "loupe.toml"

CanonicalTable = Literal[
    "contacts",
    "orders",
    "order_items",
    "products",
    "events",
    "marketing_spend",
    "consents",
    "feedback",
]
SourceFormat = Literal["csv", "tsv", "excel", "jsonl", "parquet", "sql", "segment"]
Backend = Literal["duckdb", "pyspark"]

#: The identifier types of the identity graph (``loupe.identity.graph.ID_TYPES``).
ID_TYPES: tuple[str, ...] = ("user_id", "email", "phone", "anonymous_id")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _time_zone(v: str) -> str:
    """An IANA time zone name that Python knows as well as the engines: the project's zone is
    also read by ``zoneinfo`` (profile snapshots, retention periods)."""
    if v.upper() in ("UTC", "Z", "ETC/UTC"):
        return "UTC"  # as zoneinfo spells it ("utc" is not found on a case-sensitive disk)
    try:
        ZoneInfo(v)
        return v
    except (KeyError, ValueError, OSError):  # not found; a path; a folder such as "Asia"
        pass
    by_lower = {z.lower(): z for z in available_timezones()}
    close = by_lower.get(v.lower()) or next(
        iter(difflib.get_close_matches(v, list(by_lower.values()), n=1)), None
    )
    raise ValueError(
        f"unknown time zone {v!r}"
        + (f" (did you mean {close!r}?)" if close else "")
        + "; use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC"
    )


#: A size DuckDB reads for ``memory_limit``: ``4GB``, ``512 MiB``, ``1.5gb``, ``80%``.
_SIZE = re.compile(
    r"\s*\d+(\.\d+)?\s*(%|(b|bytes?|[kmgt]i?b?|(kilo|mega|giga|tera)bytes?))\s*",
    re.IGNORECASE,
)


class ProjectSettings(StrictModel):
    name: str = "loupe"
    timezone: str = "Asia/Shanghai"
    """Time zone of naive timestamps in sources (overridable per source)."""
    base_currency: str = "CNY"
    default_region: str = "CN"
    """Region used by phonenumbers for numbers written without a country code."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return _time_zone(v)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, v: str) -> str:
        import phonenumbers  # (46 ms to import, once; not at module load)

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"phonenumbers knows no region {v!r}; use a two-letter country code such as "
                "CN, HK, US or DE"
            )
        return v.upper()


class WarehouseSettings(StrictModel):
    backend: Backend = "duckdb"
    path: str = "loupe.duckdb"
    """DuckDB file, relative to the project folder."""
    spark_master: str = "local[2]"
    spark_dir: str = "spark"
    """Folder (under the project) where the PySpark backend keeps its Parquet tables."""
    threads: int | None = Field(default=None, ge=0)
    """DuckDB's worker threads; unset (or 0) leaves DuckDB's default, one per core."""
    memory_limit: str | None = "4GB"
    """DuckDB's memory limit (it spills to disk beyond it); None leaves DuckDB's default."""

    @field_validator("memory_limit")
    @classmethod
    def _a_size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE.fullmatch(v):
            raise ValueError(f"{v!r} is not a size; write it as 4GB, 512MB, 2GiB or 50%")
        return v


class SourceSettings(StrictModel):
    name: str
    table: CanonicalTable = "events"
    format: SourceFormat
    path: str | None = None
    """File or glob, relative to the project folder (csv, tsv, jsonl, parquet, segment)."""
    encoding: str = "utf-8"
    delimiter: str | None = None
    sheet: str | None = None
    """For ``format = "excel"``: the sheet to read (default: the first)."""
    header_row: int | None = Field(default=None, ge=1)
    """For ``format = "excel"``: the row that names the columns, when title rows come first
    (default: the sheet's first row with a value)."""
    timezone: str | None = None
    decimal: Literal[".", ","] = "."
    """For csv and tsv: the decimal mark of the source's numbers.  With ``","`` (Excel in a
    German, French or Russian locale), a dot or a space groups thousands: ``1.234,50``."""
    date_order: Literal["ymd", "dmy", "mdy"] = "ymd"
    """How a date that does not start with its year is read: ``05/03/2024`` is 5 March with
    ``"dmy"`` and 3 May with ``"mdy"``; with ``"ymd"`` (the default) it is unparseable.
    With ``"dmy"`` or ``"mdy"`` a time on the 12-hour clock (``2:30 PM``) is read too.  Dates
    that start with a four-digit year (ISO 8601) are read the same whatever the order."""
    contact_source: str | None = None
    """For orders/consents/feedback: the contact source whose ``source_key`` the rows carry."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Canonical column → column in the source."""
    constants: dict[str, str] = Field(default_factory=dict)
    """Canonical column → a fixed value for every row (e.g. ``channel = "store"``)."""
    connection: str | None = None
    """For ``format = "sql"``: an Ibis connection URL (``postgres://user@host/db``)."""
    sql_table: str | None = None

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c == "_" for c in v):
            raise ValueError("source names use letters, digits and _ only")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return None if v is None else _time_zone(v)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v in '"\r\n'):
            raise ValueError(
                f"a delimiter is one character other than a quote or a line break, such as "
                f"',', ';', '|' or '\\t'; got {v!r}"
            )
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        """A Python text codec that writes a line break as the byte ``\\n``: files are split
        into lines on that byte before they are decoded, which UTF-16 and UTF-32 would break."""
        try:
            codecs.lookup(v)
            sample = "x\ny".encode(v)
        except LookupError:  # unknown, or a bytes-to-bytes codec such as base64
            raise ValueError(
                f"unknown text encoding {v!r}; use a Python codec name such as utf-8, gbk or "
                "gb18030"
            ) from None
        if not sample.endswith(b"x\ny"):
            raise ValueError(
                f"{v!r} files cannot be read line by line (a line break is not the byte \\n); "
                "convert them to utf-8"
            )
        return v

    @field_validator("date_order", mode="before")
    @classmethod
    def _lower_order(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _needs_location(self) -> SourceSettings:
        if self.format == "sql":
            if not (self.connection and self.sql_table):
                raise ValueError("a sql source needs `connection` and `sql_table`")
        elif not self.path:
            raise ValueError(f"a {self.format} source needs `path`")
        if self.decimal != "." and self.format not in ("csv", "tsv"):
            raise ValueError(
                f'`decimal = "{self.decimal}"` is for csv and tsv sources: {self.format} '
                "sources give their numbers typed (or as JSON numbers), written with a point"
            )
        return self

    @property
    def target_table(self) -> str:
        return "events" if self.format == "segment" else self.table


class QualitySettings(StrictModel):
    outlier_threshold: float = Field(default=5.0, gt=0)
    """Robust z-score (|x - median| / (1.4826 * MAD)) above which a value is flagged."""
    order_total_tolerance: float = Field(default=0.02, ge=0)
    """Relative difference allowed between an order's amount and the sum of its lines."""
    freshness_days: int = Field(default=2, ge=0)
    """A table whose newest row is older than this is flagged as stale (timeliness)."""


class IdentitySettings(StrictModel):
    max_records_per_identifier: dict[str, int] = Field(
        default_factory=lambda: {"email": 5, "phone": 5, "anonymous_id": 1, "user_id": 10}
    )
    """An identifier carried by more distinct records than this is marked shared and does
    not link.  For ``anonymous_id`` it counts distinct identified users (a shared device)."""
    source_priority: list[str] = Field(default_factory=list)
    """Sources in order of trust for the golden record; unlisted sources come last."""
    customers_from_orders: bool = False
    """Also make customers of the people behind orders that point to no contact record: each
    distinct ``user_id`` (else e-mail, else phone) of an order source becomes a record
    ``orders:<source>:<identifier>`` that links like any other (to a contact carrying the
    same identifier, for one).  For projects whose only customer data are orders."""
    probabilistic: bool = True
    match_threshold: float = Field(default=0.99, gt=0, le=1)
    """Splink match probability above which two records are linked."""
    max_iterations: int = Field(default=100, ge=1)

    @field_validator("max_records_per_identifier")
    @classmethod
    def _known_identifiers(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(ID_TYPES))
        if unknown:
            raise ValueError(
                f"unknown identifier type(s) {', '.join(map(repr, unknown))}; "
                f"the types are {', '.join(ID_TYPES)}"
            )
        low = sorted(k for k, n in v.items() if n < 1)
        if low:
            raise ValueError(f"limits are at least 1 (a record); got {low[0]} = {v[low[0]]}")
        return v


class Settings(StrictModel):
    project: ProjectSettings = Field(default_factory=ProjectSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    currency_rates: dict[str, float] = Field(default_factory=dict)
    """Units of base currency per unit of each other currency (``USD = 7.1``)."""
    quality: QualitySettings = Field(default_factory=QualitySettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    segments: list[SegmentSettings] = Field(default_factory=list)
    models: ModelsSettings = Field(default_factory=ModelsSettings)

    root: Path = Field(default=Path("."), exclude=True)
    """Folder of the project (where ``loupe.toml`` lives); paths are relative to it."""

    @field_validator("currency_rates")
    @classmethod
    def _positive_rates(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, rate in v.items() if not rate > 0)
        if bad:
            raise ValueError(
                f"a rate is the units of base currency per unit, above 0; got {bad[0]} = "
                f"{v[bad[0]]}"
            )
        return v

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(
            f"No source named {name!r}",
            where=str(self.root / CONFIG_NAME),
            fix=f"declared sources: {', '.join(s.name for s in self.sources) or 'none'}",
        )

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p


def _describe(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """Dotted key for a pydantic error location, naming sources by their name."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            name = node[item].get("name") if isinstance(node[item], dict) else None
            parts[-1] = f"{parts[-1]}[{name!r}]" if name else f"{parts[-1]}[{item}]"
            node = node[item]
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for item in loc[:-1]:
        if model is None or isinstance(item, int):
            continue
        field = model.model_fields.get(str(item))
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def parse_settings(data: dict[str, Any], root: Path, origin: str) -> Settings:
    """Validate a parsed ``loupe.toml``; raise one :class:`ConfigError` listing every problem."""
    try:
        return Settings.model_validate({**data, "root": root})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _describe(tuple(err["loc"]), data)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                model = _model_for(tuple(err["loc"]))
                known = list(model.model_fields) if model else []
                close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
                msg = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
            lines.append(f"{key}: {msg}")
        raise ConfigError(
            f"{origin} is not valid:\n  - " + "\n  - ".join(lines),
            where=origin,
            fix="correct the keys listed above (`loupe init` writes a commented example)",
        ) from None


def load_settings(path: str | Path = CONFIG_NAME) -> Settings:
    """Read and validate ``loupe.toml`` (or the ``loupe.toml`` inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_NAME
    if not p.exists():
        raise ConfigError(
            f"No {CONFIG_NAME} found at {p}",
            where=str(p.parent.resolve()),
            fix="run `loupe init` to create a project, or pass --project DIR",
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}", where=str(p)) from None
    return parse_settings(data, p.parent.resolve(), str(p))


@lru_cache(maxsize=8)
def get_settings(path: str = CONFIG_NAME) -> Settings:
    """Cached :func:`load_settings` for long-lived processes (server, console)."""
    return load_settings(path)
