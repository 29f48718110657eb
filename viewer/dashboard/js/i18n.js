// Dashboard strings, Chinese first; server strings reach the page only through textContent.
export const STRINGS = {
  zh: {
    title: "城市体检", year: "年度", indicator: "指标", level: "单元", viewer: "三维场景", map: "单元分布",
    trend: "逐年变化", units: "各单元数值", problems: "问题清单", colIndicator: "指标", colProblem: "问题",
    colPlace: "位置", noData: "无数据", target: "目标", pass: "达标", fail: "未达标", straight: "直线距离",
    open3d: "在三维场景中查看", district: "城区", street: "街道", community: "社区", noRuns: "尚无体检结果：请先运行 cim healthcheck run --year 2025",
    loadFailed: "加载失败：", lang: "English", more: "个对象", compound: "小区", serviceArea: "服务范围",
    facilities: "设施", lifeCircle: "十五分钟生活圈", pickCompound: "在地图上点选一个小区（单元选“小区”）",
    colClass: "设施", colRadius: "服务半径", colWalk: "步行距离", colStraight: "直线距离", colWithin: "可达",
    kindergarten: "幼儿园", primary_school: "小学", market: "菜市场", middle_school: "中学",
    health_centre: "社区卫生服务中心", classesReached: "可达设施类别", allIndicators: "全部指标",
    noProblems: "该指标无问题",
  },
  en: {
    title: "City health check", year: "Year", indicator: "Indicator", level: "Units", viewer: "3D scene",
    map: "Units", trend: "Year on year", units: "Values by unit", problems: "Problem list", colIndicator: "Indicator",
    colProblem: "Problem", colPlace: "Place", noData: "no data", target: "target", pass: "passes", fail: "misses",
    straight: "straight line", open3d: "Show in 3D", district: "District", street: "Street", community: "Community",
    noRuns: "No health-check run yet: run cim healthcheck run --year 2025", loadFailed: "Loading failed: ", lang: "中文",
    more: "more objects", compound: "Compound", serviceArea: "Service areas", facilities: "Facilities",
    lifeCircle: "15-minute life circle", pickCompound: "Pick a compound on the map (units: Compound)",
    colClass: "Facility", colRadius: "Radius", colWalk: "Walking", colStraight: "Straight line", colWithin: "Within",
    kindergarten: "Kindergarten", primary_school: "Primary school", market: "Food market",
    middle_school: "Secondary school", health_centre: "Community health centre", classesReached: "classes reached",
    allIndicators: "all indicators", noProblems: "No problems for this indicator",
  },
};

export const ui = { lang: "zh" };

export const t = (key) => STRINGS[ui.lang][key] ?? key;

export function applyStrings() {
  document.documentElement.lang = ui.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = t("lang");
}
