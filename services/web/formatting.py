"""How the desk writes dates, times and codes: as Japanese forms write them, never raw.

Dates read 令和7年4月1日 with the Western year at hand; times are shown in the municipality's
zone (JST). Codes go through the message catalogue, so ``route_in.minsei_volunteer`` reads
民生委員; a code the catalogue lacks is a defect a unit test catches, not something to print.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from japanera import EraDate

JST = timezone(timedelta(hours=9), "JST")


def parse_instant(value: str | datetime | date | None) -> datetime | date | None:
    """An API value as a date or an aware datetime; RFC 3339 strings with or without a time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime | date):
        return value
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def wareki(value: str | datetime | date | None) -> str:
    """令和7年4月1日 (the first year of an era as 元年, as forms write it)."""
    moment = parse_instant(value)
    if moment is None:
        return ""
    day = moment.astimezone(JST).date() if isinstance(moment, datetime) else moment
    era = EraDate.from_date(day)
    relative = day.year - era.era.since.year + 1
    year = "元" if relative == 1 else str(relative)
    return f"{era.era.kanji}{year}年{day.month}月{day.day}日"


def wareki_with_year(value: str | datetime | date | None) -> str:
    """令和7年（2025年）4月1日: the Western year beside the era year, for forms and slips."""
    moment = parse_instant(value)
    if moment is None:
        return ""
    text = wareki(moment)
    western = (moment.astimezone(JST) if isinstance(moment, datetime) else moment).year
    era_year, _, rest = text.partition("年")
    return f"{era_year}年（{western}年）{rest}"


def jst_time(value: str | datetime | None) -> str:
    """令和7年4月1日 14:05 in JST."""
    moment = parse_instant(value)
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return wareki(moment)
    local = moment.astimezone(JST)
    return f"{wareki(local)} {local:%H:%M}"


def iso_date(value: str | datetime | date | None) -> str:
    """The value as YYYY-MM-DD in JST, for a date input's ``value``."""
    moment = parse_instant(value)
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.astimezone(JST).date().isoformat()
    return moment.isoformat()


def business_time(day: str, clock: str = "") -> str | None:
    """A date (and time) a person typed, as the RFC 3339 instant the APIs take, in JST."""
    if not day:
        return None
    return f"{day}T{clock or '00:00'}:00+09:00"


def today() -> date:
    """Today in the municipality's zone (a desk's "today" is JST, whatever the server's)."""
    return datetime.now(JST).date()
