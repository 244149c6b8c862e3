// The cash-flow forecast chart: expected receipts per period (bars), overdue apart (red
// bar), received per period (green bars) and the received-to-date line.  Data comes from
// the page itself (#forecast-data), the table beside it shows the same figures.
(function () {
  "use strict";
  var source = document.getElementById("forecast-data");
  var canvas = document.getElementById("forecast-chart");
  if (!source || !canvas || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var number = function (v) { return v === null || v === undefined ? null : Number(v); };
  var money = new Intl.NumberFormat(data.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { type: "bar", label: data.names.overdue, data: data.overdue.map(number), backgroundColor: "#dc2626", stack: "plan" },
        { type: "bar", label: data.names.expected, data: data.expected.map(number), backgroundColor: "#2563eb", stack: "plan" },
        { type: "bar", label: data.names.received, data: data.received.map(number), backgroundColor: "#16a34a", stack: "fact" },
        { type: "line", label: data.names.cumulative, data: data.cumulative.map(number), borderColor: "#15803d", backgroundColor: "#15803d", spanGaps: false, tension: 0.2 }
      ]
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return money.format(v); } } } },
      plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + money.format(ctx.parsed.y); } } } }
    }
  });
  canvas.dataset.ready = "1";
  window.forecastChart = chart;
}());
