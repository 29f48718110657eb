"""Chinese names for streets, rivers, compounds, schools, hospitals and parks.

Names are handed out in order from seeded permutations of fixed pools, so the same seed names the same
places; a pool that runs out goes round again with a numbered suffix, so names stay unique.
"""

from __future__ import annotations

import numpy as np

_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1..999 in Chinese numerals (十一, 二十, 一百零五)."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    head = _DIGITS[n // 100] + "百"
    if rest == 0:
        return head
    return head + ("零" + _DIGITS[rest] if rest < 10 else ("一" if rest < 20 else "") + cn_number(rest))


# Arterials nearest the district centre get the real names first.
ARTERIALS_NS = [
    "解放大道",
    "开源大道",
    "文明大道",
    "中华大道",
    "乐山大道",
    "铜山大道",
    "练江大道",
    "置地大道",
]
ARTERIALS_EW = [
    "天中山大道",
    "雪松大道",
    "驿城大道",
    "前进大道",
    "淮河大道",
    "金山大道",
    "骏马大道",
    "橡林大道",
]
SECONDARY_NS = ["中华路", "交通路", "健康路", "风光路", "正阳路", "光明路", "人民路", "通达路"]
SECONDARY_EW = ["骏马路", "团结路", "园林路", "溱水路", "板桥路", "西平路", "汝南路", "上蔡路"]
RIVERS = ["练江河", "小清河", "冷水河", "骏马河", "柳堰河", "溱头河", "橡林河", "杨岗河"]

_LOCAL_PREFIX = [
    "金桂",
    "银杏",
    "翠竹",
    "顺河",
    "文化",
    "育才",
    "幸福",
    "和平",
    "友谊",
    "团结",
    "建设",
    "胜利",
    "光明",
    "朝阳",
    "永安",
    "长安",
    "新华",
    "东风",
    "红旗",
    "民主",
    "劳动",
    "工农",
    "青年",
    "南海",
    "月季",
    "紫薇",
    "石榴",
    "玉兰",
    "丁香",
    "海棠",
    "芙蓉",
    "凤鸣",
    "龙湖",
    "天湖",
    "明珠",
    "锦华",
    "嘉禾",
    "瑞祥",
    "福寿",
    "安康",
    "棠溪",
    "梨园",
    "花园",
    "顺达",
    "兴业",
    "富强",
    "康乐",
    "平安",
]
_COMPOUND_PREFIX = [
    "天中",
    "驿城",
    "雪松",
    "练江",
    "金桂",
    "幸福",
    "铜山",
    "嵖岈",
    "梨园",
    "风光",
    "龙城",
    "翠竹",
    "银杏",
    "阳光",
    "锦绣",
    "开源",
    "明珠",
    "东湖",
    "中原",
    "天湖",
    "凤凰",
    "御景",
    "香榭",
    "盛世",
    "学府",
    "书香",
    "橡树",
    "滨河",
    "紫御",
    "观澜",
    "溪岸",
    "汇景",
    "澜庭",
    "嘉和",
    "华府",
    "世纪",
    "泰和",
    "康桥",
    "君悦",
    "丽景",
    "富华",
    "鑫苑",
    "鸿福",
    "金色",
    "水岸",
    "星河",
    "怡和",
    "南湖",
    "西园",
    "北辰",
]
_COMPOUND_SUFFIX = ["花园", "家园", "小区", "华庭", "名苑", "新城", "公馆", "嘉园"]
# Pre-2000 compounds: work-unit housing (单位家属院) and early estates.
_WORK_UNITS = [
    "棉纺厂",
    "化肥厂",
    "粮食局",
    "供电局",
    "二建公司",
    "运输公司",
    "面粉厂",
    "机械厂",
    "卷烟厂",
    "农机厂",
    "教育局",
    "卫生局",
    "邮电局",
    "水利局",
    "铁路",
    "物资局",
    "建设银行",
    "工商局",
    "税务局",
    "酒厂",
    "纺织厂",
    "印刷厂",
    "食品厂",
    "汽修厂",
    "水泥厂",
    "化工厂",
    "针织厂",
    "木材公司",
    "百货公司",
    "电机厂",
]
_OLD_SUFFIX = ["家属院", "家属楼", "宿舍"]
_SURNAMES = [
    "刘",
    "王",
    "张",
    "李",
    "陈",
    "杨",
    "赵",
    "黄",
    "周",
    "吴",
    "徐",
    "孙",
    "胡",
    "朱",
    "高",
    "郭",
    "马",
    "罗",
]
_HOSPITALS = [
    "驻马店市中心医院",
    "驻马店市中医院",
    "驿城区人民医院",
    "驻马店市妇幼保健院",
    "驻马店市第一人民医院",
    "驻马店市第二人民医院",
]


class Namer:
    """Unique names per kind, in call order, from seeded permutations of the pools above."""

    def __init__(self, seed: int):
        self._seed = seed
        self._pools: dict[str, list[str]] = {}
        self._next: dict[str, int] = {}

    def _take(self, kind: str, pool: list[str]) -> str:
        if kind not in self._pools:
            rng = np.random.default_rng([self._seed, 97, sum(map(ord, kind))])
            self._pools[kind] = [pool[k] for k in rng.permutation(len(pool))]
            self._next[kind] = 0
        n = self._next[kind]
        self._next[kind] = n + 1
        names = self._pools[kind]
        base = names[n % len(names)]
        return base if n < len(names) else f"{base}{cn_number(n // len(names) + 1)}期"

    def local_street(self) -> str:
        return self._take("street", [p + s for s in ("路", "街", "巷") for p in _LOCAL_PREFIX])

    def compound(self, old: bool) -> str:
        if old:
            pool = [u + s for u in _WORK_UNITS for s in _OLD_SUFFIX] + [p + "新村" for p in _COMPOUND_PREFIX]
            return self._take("old_compound", pool)
        return self._take("compound", [p + s for p in _COMPOUND_PREFIX for s in _COMPOUND_SUFFIX])

    def village(self) -> str:
        return self._take(
            "village", [f + p + "村" for f in _SURNAMES for p in ("庄", "营", "寨", "店", "湾", "岗")]
        )

    def school(self) -> str:
        n = self._next.get("school", 0) + 1
        self._next["school"] = n
        return f"驻马店市第{cn_number((n + 1) // 2)}{'小学' if n % 2 else '中学'}"

    def hospital(self) -> str:
        n = self._next.get("hospital", 0)
        self._next["hospital"] = n + 1
        return _HOSPITALS[n] if n < len(_HOSPITALS) else f"驻马店市第{cn_number(n - 3)}人民医院"

    def park(self) -> str:
        return self._take("park", [p + "公园" for p in _COMPOUND_PREFIX])

    def industrial(self) -> str:
        return self._take(
            "industrial",
            [u for u in _WORK_UNITS if u.endswith("厂")] + [p + "工业园" for p in _COMPOUND_PREFIX],
        )

    def commercial(self) -> str:
        return self._take("commercial", [p + s for p in _COMPOUND_PREFIX for s in ("广场", "商业街", "商厦")])

    def fire_station(self) -> str:
        return self._take("fire", [p + "消防救援站" for p in _COMPOUND_PREFIX])


def major_name(table: list[str], fallback: str, rank: int) -> str:
    """The rank-th name of a road table (rank 0 nearest the centre), else a numbered fallback.

    fallback is a prefix and a suffix ('经路' gives 经一路, 经二路, ...).
    """
    return (
        table[rank] if rank < len(table) else f"{fallback[0]}{cn_number(rank - len(table) + 1)}{fallback[1]}"
    )
