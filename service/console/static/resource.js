// A resource's page: logs that follow, and telemetry charts (uPlot). Both read the
// API with the page's session (GET only), as the CLI reads it with a token.
"use strict";

(function () {
  const root = document.getElementById("resource");
  if (!root) return;
  const base = "/api/v1/resources/" + encodeURIComponent(root.dataset.type) + "/" +
    encodeURIComponent(root.dataset.name);
  const owner = "owner=" + encodeURIComponent(root.dataset.owner);

  // -- logs ------------------------------------------------------------------------
  const pre = document.getElementById("logs");
  const picker = document.getElementById("log-process");
  const follow = document.getElementById("log-follow");
  let offset = null, run = null, process = picker ? picker.value : "";

  let reading = false;  // one read at a time, or a slow answer's lines show twice

  async function readLogs() {
    if (!process || reading) return;
    reading = true;
    try { await readChunk(); } finally { reading = false; }
  }

  async function readChunk() {
    const part = offset === null ? "tail=1000" : "offset=" + offset;
    const answer = await fetch(`${base}/logs?${owner}&process=${encodeURIComponent(process)}&${part}`,
      { credentials: "same-origin" });
    if (!answer.ok) return;
    const chunk = (await answer.json()).processes[process];
    if (!chunk) return;
    if (offset === null || chunk.run !== run) {
      pre.textContent = offset !== null && chunk.run !== run ? "— restarted —\n" : "";
      if (offset !== null && chunk.run !== run) { offset = 0; run = chunk.run; return readChunk(); }
    }
    run = chunk.run;
    offset = chunk.offset;
    if (chunk.text) {
      pre.append(document.createTextNode(chunk.text));
      if (follow.checked) pre.scrollTop = pre.scrollHeight;
    }
  }

  function addProcesses() {
    // The live part lists the processes; those that started after the page loaded join
    // the picker, and the first one's logs show if none did before.
    for (const th of document.querySelectorAll("#processes tbody th")) {
      const name = th.textContent.trim();
      if (![...picker.options].some((o) => o.value === name)) picker.append(new Option(name, name));
    }
    if (!process && picker.value) { process = picker.value; readLogs(); }
  }

  if (picker) {
    picker.addEventListener("change", () => {
      process = picker.value; offset = null; run = null; pre.textContent = ""; readLogs();
    });
    document.addEventListener("htmx:afterSwap", addProcesses);
  }
  readLogs();
  setInterval(() => { if (follow.checked) readLogs(); }, 2000);

  // -- charts ----------------------------------------------------------------------
  const range = document.getElementById("chart-range");
  const resolution = document.getElementById("chart-resolution");
  const plots = new Map();

  function emptyChart(figure, empty) {
    figure.querySelector(".empty-chart").hidden = !empty;
    figure.querySelector(".plot").hidden = empty;
  }

  function inBytes(value) {
    // 1536 → "1.5 KiB": byte axes readable at a glance.
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return `${+value.toFixed(1)} ${units[i]}`;
  }

  async function drawChart(figure) {
    const metric = figure.dataset.metric;
    const answer = await fetch(`${base}/telemetry?${owner}&metric=${metric}&from=${range.value}`,
      { credentials: "same-origin" });
    if (!answer.ok) { emptyChart(figure, true); return; }
    const body = await answer.json();
    resolution.textContent = `${body.resolution} samples, one point per ${Math.round(body.step)} s`;
    const series = body.series.filter((s) => s.points.length);
    if (plots.has(metric)) { plots.get(metric).destroy(); plots.delete(metric); }
    if (!series.length) { emptyChart(figure, true); return; }
    emptyChart(figure, false);
    const tables = series.map((s) => [s.points.map((p) => p[0]), s.points.map((p) => p[1])]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const palette = ["#0a58ca", "#b42318", "#1a7f37", "#9a6700", "#6f42c1", "#0e7490"];
    const options = {
      width: figure.clientWidth || 360, height: 180,
      series: [{}].concat(series.map((s, i) => ({
        label: s.source, stroke: palette[i % palette.length], width: 2,
        dash: i % 2 ? [6, 3] : undefined,  // told apart without colour too
      }))),
      axes: [{}, figure.dataset.unit === "bytes"
        ? { label: "bytes", size: 70, values: (u, ticks) => ticks.map(inBytes) }
        : { label: figure.dataset.unit }],
    };
    plots.set(metric, new uPlot(options, data, figure.querySelector(".plot")));
  }

  function drawCharts() {
    for (const figure of document.querySelectorAll("#charts figure")) drawChart(figure);
  }
  range.addEventListener("change", drawCharts);
  drawCharts();
  setInterval(drawCharts, 30000);
})();
