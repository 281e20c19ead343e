"""How a person's name or kana is folded before two spellings are compared.

Staff type the same name many ways: katakana or hiragana, full or half width, with or without a
space, and with the registry's variant kanji (髙橋 for 高橋, 山﨑 for 山崎) or without. Every
comparison of names (intake's duplicate key, the views' person search) folds both sides here,
so that the same spellings meet everywhere.
"""

from __future__ import annotations

import jaconv

# Variant (異体字) -> common form, for the variants registers and staff most often disagree on.
# One table, so search and duplicate detection can never fold differently.
VARIANT_KANJI: dict[str, str] = {
    "髙": "高",
    "﨑": "崎",
    "嵜": "崎",
    "碕": "崎",
    "齋": "斎",
    "齊": "斎",
    "斉": "斎",
    "邊": "辺",
    "邉": "辺",
    "濱": "浜",
    "澤": "沢",
    "廣": "広",
    "國": "国",
    "櫻": "桜",
    "嶋": "島",
    "嶌": "島",
    "眞": "真",
    "冨": "富",
    "德": "徳",
    "惠": "恵",
    "藏": "蔵",
    "龍": "竜",
    "瀨": "瀬",
    "槇": "槙",
    "桒": "桑",
    "曻": "昇",
}
_VARIANTS = str.maketrans(VARIANT_KANJI)


def fold(text: str) -> str:
    """The form two spellings of one name share.

    Half-width kana become full width and full-width letters and digits half width (jaconv's
    NFKC normalisation), katakana become hiragana, variant kanji their common form; spaces go
    and letters are lower case. Folding twice changes nothing.
    """
    # Spaces go before normalising too: a sound mark typed after a space (う　ﾞ) composes with
    # the kana before it only once the space is gone.
    normalised = jaconv.kata2hira(jaconv.normalize("".join(text.split())))
    return "".join(normalised.translate(_VARIANTS).split()).lower()
