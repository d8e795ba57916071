// The campaign page, progressively enhanced: the server renders every number, and this
// script keeps them live (polling progress.json every two seconds), draws the funnel
// chart with the vendored Chart.js, asks before destructive actions, and fills the
// schedule form's UTC offset from the browser. Without it the page still works.
(function () {
  "use strict";

  var COLORS = { completed: "#0b6e4f", failed: "#b42318", skipped: "#a15c07", pending: "#c3c9d4" };
  var ORDER = ["completed", "failed", "skipped", "pending"];
  var FINAL = ["ended", "aborted"];
  var fmt = new Intl.NumberFormat("en");

  // Ask before the buttons that cannot be undone (the server does not depend on it).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // The browser's own UTC offset, as +05:30.
  document.querySelectorAll("[data-local-offset]").forEach(function (input) {
    var minutes = -new Date().getTimezoneOffset();
    var sign = minutes < 0 ? "-" : "+";
    var abs = Math.abs(minutes);
    input.value = sign + String(Math.floor(abs / 60)).padStart(2, "0") + ":" + String(abs % 60).padStart(2, "0");
  });

  var root = document.getElementById("progress");
  if (!root) return;
  var chart = drawFunnel();

  function setText(selector, text) {
    document.querySelectorAll(selector).forEach(function (el) { el.textContent = text; });
  }

  function percent(fraction) {
    return (fraction * 100).toFixed(1) + "%";
  }

  // The same wording as the server's duration filter.
  function duration(seconds) {
    if (seconds < 90) return seconds + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function moveBar(data) {
    var x = 0;
    var total = data.total || 0;
    ORDER.forEach(function (group) {
      var width = total ? (100 * data.progress[group]) / total : 0;
      document.querySelectorAll("[data-bar] [data-seg='" + group + "']").forEach(function (rect) {
        rect.setAttribute("x", x.toFixed(2));
        rect.setAttribute("width", width.toFixed(2));
      });
      x += width;
      setText("[data-count='" + group + "']", fmt.format(data.progress[group]));
      setText("[data-pct='" + group + "']", data.percent[group].toFixed(1) + "%");
    });
    var label = ORDER.map(function (g) { return data.progress[g] + " " + g; }).join(", ") + " of " + total;
    document.querySelectorAll("[data-bar]").forEach(function (svg) { svg.setAttribute("aria-label", label); });
  }

  function fillReasons(kind, counts) {
    var body = document.querySelector("[data-reasons='" + kind + "']");
    if (!body) return;
    var codes = Object.keys(counts).sort();
    body.replaceChildren();
    if (!codes.length) {
      var none = document.createElement("tr");
      none.innerHTML = '<td class="hint">none</td>';
      body.appendChild(none);
      return;
    }
    codes.forEach(function (code) {
      var row = body.insertRow();
      var name = row.insertCell();
      name.className = "mono";
      name.textContent = code;
      var n = row.insertCell();
      n.className = "num";
      n.textContent = fmt.format(counts[code]);
    });
  }

  function fillFunnel(funnel) {
    var body = document.querySelector("[data-funnel]");
    if (body) {
      body.replaceChildren();
      funnel.forEach(function (f) {
        var row = body.insertRow();
        row.insertCell().textContent = f.step;
        var n = row.insertCell();
        n.className = "num";
        n.textContent = fmt.format(f.count);
      });
    }
    if (chart) {
      chart.data.labels = funnel.map(function (f) { return f.step; });
      chart.data.datasets[0].data = funnel.map(function (f) { return f.count; });
      chart.update("none");
    }
  }

  function showStatus(status) {
    var rendered = root.getAttribute("data-status");
    document.querySelectorAll("[data-status-badge]").forEach(function (badge) {
      badge.textContent = status;
      badge.className = "badge " + status;
    });
    var notice = document.querySelector("[data-status-changed]");
    if (notice && status !== rendered) {
      notice.hidden = false;
      notice.innerHTML = "";
      notice.append("The campaign is " + status + " now. ");
      var link = document.createElement("a");
      link.href = window.location.pathname;
      link.textContent = "Reload for its actions.";
      notice.appendChild(link);
    }
  }

  function update(data) {
    setText("[data-total]", fmt.format(data.total));
    moveBar(data);
    ["received", "read", "replied"].forEach(function (r) {
      setText("[data-rate='" + r + "']", percent(data.rates[r]));
    });
    setText("[data-replied]", fmt.format(data.replied));
    setText("[data-flows-completed]", fmt.format(data.flows_completed));
    if (data.spend) {
      Object.keys(data.spend.by_channel).forEach(function (channel) {
        setText("[data-spent='" + channel + "']", data.spend.by_channel[channel].spent);
      });
      setText("[data-spent='total']", data.spend.spent);
    }
    fillReasons("skipped", data.not_sent.skipped);
    fillReasons("failed", data.not_sent.failed);
    fillFunnel(data.funnel);
    setText("[data-eta]", data.status === "active" && data.seconds_left
      ? "about " + duration(data.seconds_left) + " left at this pace, inside the send windows ·" : "");
    document.querySelectorAll("[data-eta-warning]").forEach(function (el) {
      el.textContent = data.eta_warning || "";
      el.hidden = !data.eta_warning;
    });
    setText("[data-updated]", "updated " + new Date().toLocaleTimeString());
    showStatus(data.status);
    return FINAL.indexOf(data.status) < 0;
  }

  function drawFunnel() {
    var holder = document.querySelector("[data-chart]");
    var body = document.querySelector("[data-funnel]");
    if (!holder || !body || typeof window.Chart !== "function") return null;
    var rows = Array.prototype.slice.call(body.rows);
    holder.hidden = false;
    // A fixed height per step: the canvas fills its holder (maintainAspectRatio off).
    holder.style.height = 48 + 34 * rows.length + "px";
    return new window.Chart(document.getElementById("funnel-chart"), {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.cells[0].textContent; }),
        datasets: [{
          label: "voters",
          data: rows.map(function (r) { return Number(r.cells[1].textContent.replace(/,/g, "")); }),
          backgroundColor: COLORS.completed,
          borderRadius: 3,
          maxBarThickness: 26,
        }],
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { beginAtZero: true, ticks: { precision: 0, color: "#3b4352" }, grid: { color: "#e6e9ef" } },
          y: { ticks: { color: "#1d2433", font: { size: 13 } }, grid: { display: false } },
        },
      },
    });
  }

  if (root.hasAttribute("data-final")) return;
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 2000;
  var url = root.getAttribute("data-progress-url");

  function poll() {
    if (document.hidden) {
      window.setTimeout(poll, every);
      return;
    }
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (update(data)) window.setTimeout(poll, every);
      })
      .catch(function () {
        // Signed out or the server is away: say so and try again a little later.
        setText("[data-updated]", "live numbers paused (reload the page)");
        window.setTimeout(poll, every * 5);
      });
  }
  window.setTimeout(poll, every);
})();
