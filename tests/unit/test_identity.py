"""Real-name identity rules: ID numbers, names, phones, and their masks."""

from __future__ import annotations

import datetime as dt

import pytest
from stdnum.cn import ric

from fairslot.domain.errors import InvalidInput
from fairslot.domain.identity import (
    Identity,
    is_valid_id_number,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_name,
    normalize_phone,
)


def _with_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")  # the digit is ignored


def test_a_valid_id_number_is_kept_and_a_lower_case_x_is_upper_cased() -> None:
    number = _with_check("11010519491231002")
    assert normalize_id_number(f"  {number} ") == number
    with_x = next(_with_check(f"1101051949123100{d}") for d in range(10)
                  if _with_check(f"1101051949123100{d}").endswith("X"))
    assert normalize_id_number(with_x.lower()) == with_x


@pytest.mark.parametrize("bad", ["", "12345", "11010519491231002" + "Z",
                                 "A1010519491231002X", "1101051949123100234"])
def test_malformed_id_numbers_are_refused_with_one_code(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_id_number(bad)
    assert refused.value.code == "invalid_id_number"


def test_a_wrong_check_digit_an_impossible_birth_date_and_an_unknown_region_are_refused() -> None:
    good = _with_check("11010519491231002")
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert not is_valid_id_number(wrong)
    assert not is_valid_id_number(_with_check("11010519491331002"))  # month 13
    assert not is_valid_id_number(_with_check("99999919491231002"))  # no such county
    assert is_valid_id_number(good)


def test_an_elderly_residents_number_under_a_county_code_younger_than_them_is_valid() -> None:
    # Xuanwu district's 320102 dates from 1983; people born in 1950 hold numbers with it.
    assert is_valid_id_number(_with_check("32010219500101001"))


@pytest.mark.parametrize("name", ["张伟", "欧阳娜娜", "买买提·艾力", "Anna Muller", "O'Brien"])
def test_chinese_minority_and_latin_names_are_accepted(name: str) -> None:
    assert normalize_name(name) == name


@pytest.mark.parametrize("name", ["561", "张", "张3", "", "x" * 61, "<script>"])
def test_nonsense_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_name(name)
    assert refused.value.code == "invalid_name"


def test_mobile_phones_are_normalised_to_e164_and_landlines_refused() -> None:
    assert normalize_phone("138 0013 8000") == "+8613800138000"
    assert normalize_phone("+86 138-0013-8000") == "+8613800138000"
    assert normalize_phone("17012345678").startswith("+86170")  # virtual operators too
    for bad in ("010 6552 9988", "12345", "+1 202 555 0100", "not a phone"):
        with pytest.raises(InvalidInput) as refused:
            normalize_phone(bad)
        assert refused.value.code == "invalid_phone"


def test_masks_keep_only_a_glimpse() -> None:
    assert mask_id_number("110105194912310021") == "1101**********0021"
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_name("欧阳娜娜") == "欧***" and mask_name("张伟") == "张*"
    assert mask_id_number("abc") == "***"


def test_an_identity_is_validated_when_made() -> None:
    number = _with_check("11010519491231002")
    identity = Identity.parse(number.lower(), " 张伟 ")
    assert identity == Identity(number, "张伟")
    assert identity.birth_date.isoformat() == "1949-12-31"
    with pytest.raises(InvalidInput):
        Identity.parse(number, "561")


def test_a_newborns_number_is_valid_on_their_birthday_in_beijing_at_any_hour() -> None:
    # From 00:00 to 08:00 in Beijing it is still the day before in UTC.
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    assert is_valid_id_number(_with_check(f"110105{today:%Y%m%d}002"))
    assert not is_valid_id_number(_with_check(f"110105{today + dt.timedelta(days=2):%Y%m%d}002"))
