"""Name keys for matching: Chinese characters and pinyin written either way compare equal.

``name_key("王伟民") == name_key("Weimin Wang") == name_key("WANG Weimin") == "wangweimin"``:
Chinese characters become toneless pinyin (the surname is the first character, the given
name the rest), Latin names lose accents, case and punctuation, and the name parts are
sorted so that the family-name-first and given-name-first orders agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from loupe.identity._pinyin import PINYIN_TABLE

#: Surnames whose reading differs from the character's most common reading.
SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "查": "zha",
    "朴": "piao",
    "盖": "ge",
    "覃": "qin",
    "翟": "zhai",
    "缪": "miao",
    "乐": "yue",
    "尉": "yu",
    "长": "chang",
    "重": "chong",
    "种": "chong",
    "秘": "bi",
    "黑": "he",
    "员": "yun",
    "繁": "po",
}

_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _pinyin() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in PINYIN_TABLE.splitlines():
        syllable, _, chars = line.partition(" ")
        for ch in chars:
            table[ch] = syllable
    return table


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _latin_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return _WORD.findall(plain)


def name_key(name: str | None) -> str | None:
    """A comparable key for a person's name, or ``None`` when there is no name."""
    if name is None:
        return None
    name = unicodedata.normalize("NFKC", str(name)).strip()
    han = [ch for ch in name if _is_han(ch)]
    if han:
        table = _pinyin()
        surname = SURNAME_READINGS.get(han[0]) or table.get(han[0], han[0])
        given = "".join(table.get(ch, ch) for ch in han[1:])
        parts = [p for p in (surname, given) if p]
    else:
        parts = _latin_words(name)
    return "".join(sorted(parts)) or None
