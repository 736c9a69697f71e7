"""The grammar of the expression language (Lark, LALR).

Kept as a Python string so it ships inside the package with no package-data entry.
Precedence, loosest first: ``or``, ``and``, ``not``, a predicate (comparison, ``in``,
``between``, ``is null``, string matching), ``+``/``-``, a value.
"""

GRAMMAR = r"""
?start: expr

?expr: or_expr
?or_expr: and_expr
        | or_expr OR and_expr                   -> or_
?and_expr: not_expr
         | and_expr AND not_expr                -> and_
?not_expr: predicate
         | NOT not_expr                         -> not_
?predicate: sum
          | sum COMP_OP sum                     -> compare
          | sum IN tuple                        -> in_
          | sum NOT IN tuple                    -> not_in
          | sum BETWEEN sum AND sum             -> between
          | sum NOT BETWEEN sum AND sum         -> not_between
          | sum IS NULL                         -> is_null
          | sum IS NOT NULL                     -> is_not_null
          | sum MATCH_OP sum                    -> match
          | sum NOT MATCH_OP sum                -> not_match
?sum: atom
    | sum PLUS atom                             -> arith
    | sum MINUS atom                            -> arith
?atom: NUMBER                                   -> number
     | MINUS NUMBER                             -> number
     | STRING                                   -> string
     | TRUE                                     -> true
     | FALSE                                    -> false
     | DURATION                                 -> duration
     | TODAY                                    -> today
     | NOW                                      -> now
     | name
     | call
     | LPAR expr RPAR                           -> group
name: _ident (DOT _ident)?
_ident: NAME | QUOTED_NAME
call: NAME LPAR [arg (COMMA arg)*] RPAR
?arg: expr
    | expr WHERE expr                           -> where
tuple: LPAR sum (COMMA sum)* COMMA? RPAR

OR: "or"i
AND: "and"i
NOT: "not"i
IN: "in"i
BETWEEN: "between"i
IS: "is"i
NULL: "null"i
TRUE: "true"i
FALSE: "false"i
TODAY: "today"i
NOW: "now"i
WHERE: "where"i
MATCH_OP: "contains"i | "startswith"i | "endswith"i | "matches"i | "like"i

COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
PLUS: "+"
MINUS: "-"
LPAR: "("
RPAR: ")"
COMMA: ","
DOT: "."

DURATION.2: /\d+[hdwmy](?!\w)/
NUMBER: /\d+(\.\d+)?([eE][+-]?\d+)?/
STRING: /"(?:[^"\\]|\\.)*"/s | /'(?:[^'\\]|\\.)*'/s
NAME: /[^\W\d]\w*/
QUOTED_NAME: /`[^`]+`/

%ignore /\s+/
"""
