// The dashboard's chart: campaigns by status, stacked by channel, drawn with the vendored
// Chart.js from the table the server rendered (which stays, for screen readers and for
// browsers without JavaScript).
(function () {
  "use strict";

  var CHANNEL_COLORS = { whatsapp: "#0b6e4f", sms: "#1d4f91", voice: "#8a4b00" };
  var table = document.querySelector("[data-status-table]");
  var holder = document.querySelector("[data-status-chart]");
  if (!table || !holder || typeof window.Chart !== "function") return;

  var channels = Array.prototype.map.call(table.querySelectorAll("th[data-channel]"), function (th) {
    return th.getAttribute("data-channel");
  });
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var statuses = rows.map(function (row) { return row.getAttribute("data-status"); });
  var datasets = channels.map(function (channel, i) {
    return {
      label: channel,
      data: rows.map(function (row) { return Number(row.cells[i + 1].textContent.replace(/,/g, "")); }),
      backgroundColor: CHANNEL_COLORS[channel] || "#5b6475",
      borderRadius: 2,
      maxBarThickness: 34,
    };
  });

  holder.hidden = false;
  holder.style.height = "260px";
  new window.Chart(document.getElementById("status-chart"), {
    type: "bar",
    data: { labels: statuses, datasets: datasets },
    options: {
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { position: "bottom", labels: { color: "#1d2433", boxWidth: 14 } } },
      scales: {
        x: { stacked: true, ticks: { color: "#1d2433" }, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: "#3b4352" }, grid: { color: "#e6e9ef" } },
      },
    },
  });
})();
