// Interface strings; Chinese is the default language. Keys are looked up by t() and by the
// data-i18n / data-i18n-placeholder attributes in index.html.
import { $, state } from "./state.js";

export const STRINGS = {
  zh: {
    title: "城市信息模型 CIM",
    search: "搜索",
    searchPlaceholder: "名称或编号",
    noResults: "没有找到结果",
    layers: "图层",
    buildings: "建筑",
    bim: "BIM 构件",
    pipes: "地下管线",
    pipeNodes: "管线节点（检查井、阀门）",
    locked: "需要有效的访问密钥",
    underground: "地下模式",
    undergroundMode: "地表半透明，可进入地下",
    groundOpacity: "地表不透明度",
    apiKey: "访问密钥",
    keyPlaceholder: "API 密钥",
    apply: "应用",
    clear: "清除",
    keyNone: "未输入密钥：受限图层已锁定",
    keySet: "已使用密钥",
    keyRejected: "密钥无效或无权访问管线",
    tileProperties: "瓦片属性",
    record: "完整记录",
    loading: "加载中…",
    loadFailed: "加载失败",
    notAllowed: "无权访问此记录",
    bimTree: "楼层与构件",
    allStoreys: "显示全部楼层",
    storeyShown: "仅显示楼层：",
    elements: "构件",
    loadingScene: "正在加载场景…",
    sceneReady: "场景已加载",
    noTiles: "没有可显示的瓦片：请先导入数据并生成瓦片",
    layerFailed: "图层加载失败：",
    liveAlarms: "实时报警",
    noAlarms: "无未关闭的报警",
    acknowledge: "确认",
    alarmsNeedKey: "查看报警需要值班员密钥",
  },
  en: {
    title: "City Information Model",
    search: "Search",
    searchPlaceholder: "name or id",
    noResults: "no results",
    layers: "Layers",
    buildings: "Buildings",
    bim: "BIM elements",
    pipes: "Underground pipes",
    pipeNodes: "Pipe nodes (manholes, valves)",
    locked: "needs a valid API key",
    underground: "Underground",
    undergroundMode: "translucent ground, camera may go below",
    groundOpacity: "Ground opacity",
    apiKey: "API key",
    keyPlaceholder: "API key",
    apply: "Apply",
    clear: "Clear",
    keyNone: "no key: restricted layers are locked",
    keySet: "using a key",
    keyRejected: "key invalid or not allowed to read pipes",
    tileProperties: "Tile properties",
    record: "Full record",
    loading: "loading…",
    loadFailed: "could not load",
    notAllowed: "not allowed to read this record",
    bimTree: "Storeys and elements",
    allStoreys: "Show all storeys",
    storeyShown: "Showing storey only: ",
    elements: "elements",
    loadingScene: "loading the scene…",
    sceneReady: "scene loaded",
    noTiles: "nothing to show: import data and build the tiles first",
    layerFailed: "layer failed to load: ",
    liveAlarms: "Live alarms",
    noAlarms: "no open alarms",
    acknowledge: "Acknowledge",
    alarmsNeedKey: "alarms need an operator's key",
  },
};

export const t = (k) => (STRINGS[state.lang] && STRINGS[state.lang][k]) || STRINGS.zh[k] || k;

// The static texts of the page in the current language.
export function translatePage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  document.querySelectorAll("[data-i18n-placeholder]")
    .forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
  $("lang").textContent = state.lang === "zh" ? "English" : "中文";
}
