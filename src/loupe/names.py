"""Name and place keys: Chinese characters and pinyin written either way compare equal.

Shared by quality (place names written one way, :func:`place_key`) and identity (the
probabilistic comparisons, ``customers find``), so it sits beside the stages, not in one.

``name_key("王伟民") == name_key("Weimin Wang") == name_key("WANG Weimin") == "wangweimin"``:
Chinese characters become toneless pinyin (the surname is the first character, the given
name the rest), Latin names lose accents, case and punctuation, and the name parts are
sorted so that the family-name-first and given-name-first orders agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

from loupe._pinyin import PINYIN_TABLE

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
def _syllables() -> dict[str, str]:
    """The table as read: each toneless syllable and its characters."""
    return dict(line.partition(" ")[::2] for line in PINYIN_TABLE.splitlines())


@lru_cache(maxsize=1)
def _pinyin() -> dict[str, str]:
    table: dict[str, str] = {}
    for syllable, chars in _syllables().items():
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


#: Characters read otherwise in place names than most often (重庆 Chongqing, 成都 Chengdu,
#: 长沙 Changsha, 厦门 Xiamen, 蚌埠 Bengbu, 六安 Lu'an, 番禺 Panyu, 西藏 Xizang, 单县 Shanxian).
PLACE_READINGS: dict[str, str] = {
    "重": "chong",
    "都": "du",
    "长": "chang",
    "厦": "xia",
    "蚌": "beng",
    "六": "lu",
    "番": "pan",
    "藏": "zang",
    "单": "shan",
}
#: Names in Latin letters that are not the pinyin of the place (Cantonese, Portuguese, Wade-
#: Giles or English usage), as their letters → the pinyin key: Hong Kong is 香港 (xianggang).
PLACE_EXONYMS: dict[str, str] = {
    "hongkong": "xianggang",
    "kowloon": "jiulong",
    "macau": "aomen",
    "macao": "aomen",
    "taipei": "taibei",
    "kaohsiung": "gaoxiong",
    "taichung": "taizhong",
    "hsinchu": "xinzhu",
    "keelung": "jilong",
    "canton": "guangzhou",
    "peking": "beijing",
    "amoy": "xiamen",
    "tientsin": "tianjin",
    "tibet": "xizang",
    "innermongolia": "neimenggu",
    "hohhot": "huhehaote",
    "urumqi": "wulumuqi",
    "harbin": "haerbin",
    "lhasa": "lasa",
}
#: Endings of a Chinese place name that its pinyin or English name leaves out (上海市: Shanghai).
_PLACE_ENDINGS = ("特别行政区", "自治区", "市", "省", "区", "县")


def place_key(place: str | None) -> str | None:
    """A comparable key for a place: ``place_key("上海市") == place_key(" Shanghai ") ==
    "shanghai"``.  Chinese characters become toneless pinyin, in order, after the ending of
    the administrative unit (市, 省, 区, 县…) is left out; Latin text loses accents, case,
    spaces and punctuation, and a name that is not pinyin is read as the place's pinyin
    (``Hong Kong``: ``xianggang``, :data:`PLACE_EXONYMS`)."""
    if place is None:
        return None
    text = unicodedata.normalize("NFKC", str(place)).strip()
    name = place_core(text)
    if name:
        table = _pinyin()
        return "".join(PLACE_READINGS.get(ch) or table.get(ch, ch) for ch in name)
    latin = "".join(_latin_words(text))
    return PLACE_EXONYMS.get(latin, latin) or None


def place_core(place: str) -> str:
    """The Chinese characters of a place name without the ending of its administrative unit
    (``上海市`` → ``上海``; ``沙市``, two characters, keeps it); ``""`` when it has none."""
    name = "".join(ch for ch in unicodedata.normalize("NFKC", place) if _is_han(ch))
    for ending in _PLACE_ENDINGS:
        if name.endswith(ending) and len(name) > len(ending) + 1:
            return name[: -len(ending)]
    return name


#: How ü is typed without it ("lv" for 吕): the table writes it u.
_V_SYLLABLES = {"lv": "lu", "nv": "nu", "lve": "lue", "nve": "nue"}
#: Readings of one word looked for at most (``xian`` is 先 or 西安; long words have more).
MAX_READINGS = 8
_PINYIN_WORD = re.compile(r"[a-z]{2,}")
_VOWEL = re.compile(r"[aeiouv]")


@lru_cache(maxsize=1)
def _characters() -> dict[str, str]:
    """The characters of each toneless syllable, the surname readings included."""
    chars = dict(_syllables())
    for ch, syllable in SURNAME_READINGS.items():
        if ch not in chars.get(syllable, ""):
            chars[syllable] = chars.get(syllable, "") + ch
    for typed, syllable in _V_SYLLABLES.items():
        chars[typed] = chars[syllable]
    return chars


def _readings(word: str) -> list[list[str]]:
    """The ways ``word`` splits into whole syllables, fewest syllables first."""
    chars = _characters()

    @cache
    def split(i: int) -> tuple[tuple[str, ...], ...]:
        if i == len(word):
            return ((),)
        out: list[tuple[str, ...]] = []
        for j in range(i + 1, min(i + 6, len(word)) + 1):  # "zhuang" has six letters
            if word[i:j] in chars and _VOWEL.search(word[i:j]):  # not 嗯 (n) in "xian"
                out += [(word[i:j], *rest) for rest in split(j)]
        return tuple(out)

    return sorted((list(r) for r in split(0)), key=len)


def pinyin_pattern(word: str, whole: bool = False) -> str | None:
    """A regular expression for the Chinese names ``word`` is the pinyin of, or None.

    ``wangwei`` gives ``[王网往…][伟为位…]``: a character class per syllable, of every
    character with that toneless reading (its most common one; ``SURNAME_READINGS`` too).  A
    word that splits more than one way (``xian``: 先, or 西安) gives each reading, up to
    ``MAX_READINGS``.  ``whole`` anchors it to the whole name.  A word of fewer than two
    letters, or one that is not all whole syllables, is not pinyin: None.
    """
    if not _PINYIN_WORD.fullmatch(word):
        return None
    readings = _readings(word)[:MAX_READINGS]
    if not readings:
        return None
    chars = _characters()
    body = "|".join("".join(f"[{chars[s]}]" for s in r) for r in readings)
    return f"^(?:{body})$" if whole else f"(?:{body})"


def place_pattern(word: str) -> str | None:
    """A regular expression for a Chinese place name ``word`` is the whole pinyin of, its
    administrative ending allowed (``shanghai``: 上海 and 上海市), or None.  A usual name
    that is not pinyin counts as the place's (``macau``: 澳门)."""
    body = pinyin_pattern(PLACE_EXONYMS.get(word, word))
    if body is None:
        return None
    return f"^{body}(?:{'|'.join(_PLACE_ENDINGS)})?$"
