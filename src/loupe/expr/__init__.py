"""The one expression language of Loupe: tags, segments, campaign audiences and API filters.

``parse`` turns text into a typed syntax tree, ``check`` type-checks it against a schema,
``compile_filter`` / ``compile_predicate`` turn it into Ibis over a table of one row per
customer, and ``unparse`` prints a tree back as canonical text.  See docs/expressions.md.
"""

from loupe.expr.compiler import CompileContext, Predicate, compile_filter, compile_predicate
from loupe.expr.errors import ExprError
from loupe.expr.nodes import Expr, fields, unparse
from loupe.expr.parser import parse
from loupe.expr.types import Kind, check

__all__ = [
    "CompileContext",
    "Expr",
    "ExprError",
    "Kind",
    "Predicate",
    "check",
    "compile_filter",
    "compile_predicate",
    "fields",
    "parse",
    "unparse",
]
