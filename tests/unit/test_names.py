"""The one folding of names and kana that search and duplicate detection share."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.names import VARIANT_KANJI, fold
from services.intake.person import duplicate_key

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("typed", "registered"),
    [
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "やまだ　たろう"),  # half-width katakana, ideographic space
        ("ヤマダタロウ", "やまだたろう"),  # katakana and hiragana
        ("ＡＢＣ　１２３", "abc123"),  # full-width letters and digits, case
        ("髙橋", "高橋"),
        ("山﨑", "山崎"),
        ("齋藤", "斉藤"),
        ("斎藤", "齊藤"),
        ("渡邊", "渡辺"),
        ("渡邉", "渡辺"),
        ("濱田", "浜田"),
        ("小澤", "小沢"),
    ],
)
def test_spellings_of_one_name_fold_alike(typed: str, registered: str) -> None:
    assert fold(typed) == fold(registered)


def test_different_names_stay_apart() -> None:
    assert fold("高橋") != fold("高梨")
    assert fold("やまだ") != fold("やまた")  # a voiced mark is part of the name


def test_every_variant_folds_to_a_form_that_is_not_itself_a_variant() -> None:
    assert not set(VARIANT_KANJI.values()) & set(VARIANT_KANJI)


@given(st.text(alphabet=st.sampled_from("ｱｲｳｶﾞキャあいう髙高﨑崎 　ＡａA1１")))
def test_folding_twice_changes_nothing(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_the_duplicate_key_folds_variant_kanji_as_search_does() -> None:
    born = date(1960, 1, 2)
    assert duplicate_key("髙橋", "花子", born, None) == duplicate_key("高橋", "花子", born, None)
