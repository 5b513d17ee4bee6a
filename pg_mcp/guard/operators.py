"""PostgreSQL's built-in operators: the only ones a query may use."""

from __future__ import annotations

#: PostgreSQL's built-in operator names (pg_operator in pg_catalog) and `!=`, its spelling of `<>`.
_BUILTIN_OPERATOR_NAMES = """
    !! != !~ !~* !~~ !~~* # ## #- #> #>> % & && &< &<| &> * *< *<= *<> *= *> *>= + - -> ->> -|- / < <->
    << <<= <<| <= <> <@ <^ = > >= >> >>= >^ ? ?# ?& ?- ?-| ?| ?|| @ @-@ @> @? @@ @@@ ^ ^@ | |&> |/ |>> ||
    ||/ ~ ~* ~<=~ ~<~ ~= ~>=~ ~>~ ~~ ~~*
"""
BUILTIN_OPERATORS = frozenset(_BUILTIN_OPERATOR_NAMES.split())
